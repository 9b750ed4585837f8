-- Alerts (docs/alerts.md): a tenant's rules, its Standard Webhooks signing secret, and the
-- deliveries the rules make, which are at once the outbox and the delivery log. A delivery row
-- is written by the trigger of the statement that stores the change it reports
-- (schema/default/triggers/leads_inserted.sql, event_applications_apply.sql), so a change that
-- was stored never loses its alert.
CREATE TABLE alert_rules (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    -- The tenant's switch.
    enabled INTEGER NOT NULL DEFAULT 1,
    event TEXT NOT NULL CHECK (event IN ('lead.captured', 'lead.stage', 'lead.opened', 'sale', 'digest')),
    -- Conditions; NULL matches anything. Which apply depends on `event`.
    volume TEXT,
    ib_type TEXT,
    utm_source TEXT,
    form TEXT,
    tag TEXT,
    stage TEXT,
    opens INTEGER,
    min_amount_cents INTEGER,
    currency TEXT,
    timezone TEXT,
    url TEXT NOT NULL,
    format TEXT NOT NULL CHECK (format IN ('json', 'slack', 'discord')),
    -- Unix seconds of the first failed attempt since the last success; NULL while healthy.
    failing_since INTEGER,
    -- Set when deliveries failed for three days: the rule fires no more until saved again.
    disabled_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;

-- The key of the tenant's `whsec_` signing secret (base64), one per tenant.
CREATE TABLE alert_secrets (
    tenant_id TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id),
    secret TEXT NOT NULL,
    created_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE alert_deliveries (
    tenant_id TEXT NOT NULL,
    -- The `webhook-id`, the same on every attempt.
    id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    event TEXT NOT NULL,
    lead_id TEXT,
    -- What the event adds to the lead (a sale's amount, a digest's figures), JSON.
    detail TEXT,
    -- The body as first sent; every retry sends it again.
    body TEXT,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'dropped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Unix seconds: when a pending delivery is due (0: now); while an attempt runs, the end of
    -- its lease.
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_attempt_at INTEGER,
    last_status_code INTEGER,
    last_error TEXT,
    -- A digest's tenant-local day; one digest per rule and day.
    day TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_recent ON alert_deliveries (tenant_id, created_at);
CREATE UNIQUE INDEX alert_deliveries_digest ON alert_deliveries (tenant_id, rule_id, day)
    WHERE day IS NOT NULL;

-- Whether a delivery run is under way, and until when (Unix seconds): a capture or callback
-- whose write queued an alert calls the `alerts` component only when no run holds it.
CREATE TABLE alert_runner (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    until INTEGER NOT NULL
);
INSERT INTO alert_runner (id, until) VALUES (1, 0);
