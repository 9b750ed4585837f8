-- Lead capture (docs/contract.md): leads, their Systeme.io sync state, daily rollups, idempotency
-- keys, rate-limit windows, and the tenant settings capture reads on every request.

-- Tenant settings (dashboard `PUT /v1/dashboard/settings`). They travel in the tenant's cache
-- entry, so capture reads them with the tenant: no extra storage call.
ALTER TABLE tenants ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';

ALTER TABLE tenants ADD COLUMN thank_you_url TEXT;

ALTER TABLE tenants ADD COLUMN tag_rules TEXT;

-- One row per (tenant, email). `tags` is the JSON array of the lead's prefixed tags.
CREATE TABLE leads (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    email TEXT NOT NULL,
    name TEXT,
    phone TEXT,
    ib_type TEXT,
    monthly_leads TEXT,
    volume TEXT CHECK (volume IN ('high', 'medium', 'low')),
    broker_network TEXT,
    form TEXT NOT NULL,
    utm_source TEXT,
    utm_medium TEXT,
    utm_campaign TEXT,
    page_url TEXT,
    consent INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    source TEXT NOT NULL DEFAULT 'capture' CHECK (source IN ('capture', 'systeme')),
    stage TEXT NOT NULL DEFAULT 'new',
    sync_status TEXT NOT NULL CHECK (sync_status IN ('pending', 'synced', 'failed', 'held')),
    sync_attempts INTEGER NOT NULL DEFAULT 0,
    -- Unix seconds; a pending lead is due once this has passed. Also a short lease while an
    -- inline sync runs, so a concurrent batch does not sync the same lead twice.
    next_sync_at INTEGER NOT NULL DEFAULT 0,
    sync_error TEXT,
    -- Bumped by every update from a form post; a sync only marks the revision it sent synced.
    revision INTEGER NOT NULL DEFAULT 0,
    systeme_contact_id INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE UNIQUE INDEX leads_tenant_email ON leads (tenant_id, email);

CREATE INDEX leads_tenant_created ON leads (tenant_id, created_at, id);

CREATE INDEX leads_sync_due ON leads (next_sync_at) WHERE sync_status = 'pending';

CREATE INDEX leads_systeme_contact ON leads (systeme_contact_id) WHERE systeme_contact_id IS NOT NULL;

-- Per-tenant daily counters, kept up to date as things happen so the dashboard never scans
-- leads. `day` is the UTC date, `YYYY-MM-DD`.
CREATE TABLE daily_rollups (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    day TEXT NOT NULL,
    leads INTEGER NOT NULL DEFAULT 0,
    spam INTEGER NOT NULL DEFAULT 0,
    emails_sent INTEGER NOT NULL DEFAULT 0,
    emails_opened INTEGER NOT NULL DEFAULT 0,
    emails_clicked INTEGER NOT NULL DEFAULT 0,
    conversions INTEGER NOT NULL DEFAULT 0,
    revenue_cents INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
) WITHOUT ROWID;

-- Triggers live in schema/default/triggers/; the runner re-creates them after migrating.

-- `Idempotency-Key` replays: the first answer, kept with a hash of the request it answered.
CREATE TABLE idempotency_keys (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)
) WITHOUT ROWID;

-- Fixed-window capture rate limit per (tenant, client address): one row per client.
CREATE TABLE capture_rate (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    client TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    hits INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, client)
) WITHOUT ROWID;
