-- An order is one sale: copies of an unattributed sale or cancellation (any body, any message
-- id) recorded so far are dropped, the first kept. New copies never get here (systeme_orders
-- below); no unique index, since the previous release still inserts here during a rollout.
DELETE FROM unattributed_sales
WHERE order_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM unattributed_sales AS first
    WHERE first.event = unattributed_sales.event
        AND first.order_id = unattributed_sales.order_id
        AND (first.received_at < unattributed_sales.received_at
            OR (first.received_at = unattributed_sales.received_at
                AND first.message_id < unattributed_sales.message_id)));

-- The operator's overrides of the plan's budgets on the shared Systeme.io account; NULL is the
-- plan's default (domain::tenant::Plan::limits).
ALTER TABLE tenants ADD COLUMN budget_held_leads INTEGER;

ALTER TABLE tenants ADD COLUMN budget_tags INTEGER;

ALTER TABLE tenants ADD COLUMN budget_sync_calls INTEGER;

-- The tags a tenant's leads have created in Systeme.io, counted against its tag budget (the
-- built-in volume and default-form tags are never listed). Filled from what earlier syncs
-- assigned.
CREATE TABLE tenant_tags (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    tag TEXT NOT NULL,
    admitted_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, tag)
) WITHOUT ROWID;

INSERT OR IGNORE INTO tenant_tags (tenant_id, tag, admitted_at)
SELECT DISTINCT l.tenant_id, j.value, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
FROM leads AS l, json_each(l.synced_tags) AS j
WHERE l.synced_tags != '[]'
    AND substr(j.value, 13) NOT IN ('high-volume', 'medium-volume', 'low-volume', 'demo-request');

-- A lead's tags that its tenant's tag budget kept back from Systeme.io.
ALTER TABLE leads ADD COLUMN kept_back_tags TEXT NOT NULL DEFAULT '[]';

-- Systeme.io calls each tenant's syncs spent in the current minute (its per-minute budget).
CREATE TABLE sync_budget (
    tenant_id TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id),
    window_start INTEGER NOT NULL,
    calls INTEGER NOT NULL
) WITHOUT ROWID;

-- Every order a sale event named, whichever tenant (if any) it went to, once per event: an
-- order is one sale and one cancellation forever, also after the lead that recorded it is
-- erased and when no tenant held its buyer. `digest` is the first body's content digest, so
-- that body sent again under the other sale event is known as a copy. Filled from what was
-- recorded so far (without digests).
CREATE TABLE systeme_orders (
    order_id INTEGER NOT NULL,
    event TEXT NOT NULL,
    message_id TEXT NOT NULL,
    digest TEXT,
    received_at TEXT NOT NULL,
    PRIMARY KEY (order_id, event)
) WITHOUT ROWID;

INSERT OR IGNORE INTO systeme_orders (order_id, event, message_id, received_at)
SELECT json_extract(detail, '$.order_id'),
    CASE kind WHEN 'sale' THEN 'SALE_NEW' ELSE 'SALE_CANCELED' END,
    COALESCE(message_id, ''), created_at
FROM lead_events
WHERE kind IN ('sale', 'sale_canceled') AND json_extract(detail, '$.order_id') IS NOT NULL;

INSERT OR IGNORE INTO systeme_orders (order_id, event, message_id, received_at)
SELECT order_id, event, message_id, received_at FROM unattributed_sales
WHERE order_id IS NOT NULL;
