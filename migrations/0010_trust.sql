-- Trust: what the public capture key and the shared Systeme.io account must not be
-- able to do.

-- An erased lead leaves a tombstone: a hash of tenant and email (never the email itself), so
-- a later Systeme.io event for that contact does not bring the lead back. Erasing is one
-- statement: writing the tombstone deletes the lead (and, by cascade, its timeline).
CREATE TABLE erased_leads (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    email_hash TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    erased_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, email_hash)
) WITHOUT ROWID;

-- Triggers live in schema/default/triggers/; the runner re-creates them after migrating.

-- A callback is applied once per tenant by message id and also by a digest of its event name
-- and raw body, so the same signed body replayed under a new message id changes nothing.
ALTER TABLE applied_events ADD COLUMN digest TEXT;

CREATE UNIQUE INDEX applied_events_digest ON applied_events (tenant_id, digest)
WHERE digest IS NOT NULL;

ALTER TABLE event_applications ADD COLUMN digest TEXT;

-- Sales: a tenant may register its Systeme.io funnels; a funnel belongs to one tenant at most.
CREATE TABLE tenant_funnels (
    funnel_id INTEGER PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id)
);

CREATE INDEX tenant_funnels_tenant ON tenant_funnels (tenant_id);

-- A sale no single tenant can claim is recorded here, for the operator, and counted for no
-- tenant.
CREATE TABLE unattributed_sales (
    message_id TEXT PRIMARY KEY NOT NULL,
    event TEXT NOT NULL,
    contact_id INTEGER,
    order_id INTEGER,
    funnel_id INTEGER,
    amount_cents INTEGER,
    currency TEXT,
    candidates INTEGER NOT NULL,
    reason TEXT NOT NULL,
    received_at TEXT NOT NULL
) WITHOUT ROWID;

-- The tenant's funnels as its settings show them; a trigger keeps tenant_funnels (the lookup,
-- unique per funnel) in step, so a funnel another tenant registered makes the update fail.
ALTER TABLE tenants ADD COLUMN funnel_ids TEXT NOT NULL DEFAULT '[]';

-- Triggers live in schema/default/triggers/; the runner re-creates them after migrating.

-- The tags the last successful Systeme.io sync gave the contact, so a repeat post assigns
-- only the tags the contact does not have yet.
ALTER TABLE leads ADD COLUMN synced_tags TEXT NOT NULL DEFAULT '[]';

-- A cancellation finds the tenant whose lead recorded its order.
CREATE INDEX lead_events_sale_order ON lead_events (json_extract(detail, '$.order_id'))
WHERE kind = 'sale';
