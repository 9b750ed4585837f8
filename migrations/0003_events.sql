-- Systeme.io callbacks (docs/contract.md): each lead's funnel counters and flags, its event
-- timeline, and the message ids already applied.

ALTER TABLE leads ADD COLUMN emails_sent INTEGER NOT NULL DEFAULT 0;

ALTER TABLE leads ADD COLUMN emails_opened INTEGER NOT NULL DEFAULT 0;

ALTER TABLE leads ADD COLUMN emails_clicked INTEGER NOT NULL DEFAULT 0;

ALTER TABLE leads ADD COLUMN converted INTEGER NOT NULL DEFAULT 0;

ALTER TABLE leads ADD COLUMN sales INTEGER NOT NULL DEFAULT 0;

ALTER TABLE leads ADD COLUMN revenue_cents INTEGER NOT NULL DEFAULT 0;

ALTER TABLE leads ADD COLUMN opted_in INTEGER NOT NULL DEFAULT 0;

ALTER TABLE leads ADD COLUMN inactive INTEGER NOT NULL DEFAULT 0;

ALTER TABLE leads ADD COLUMN churned INTEGER NOT NULL DEFAULT 0;

-- Events match leads by Systeme.io contact id within a tenant, and sales by contact id or
-- email across tenants.
CREATE INDEX leads_tenant_contact ON leads (tenant_id, systeme_contact_id) WHERE systeme_contact_id IS NOT NULL;

CREATE INDEX leads_email ON leads (email);

-- A lead's timeline: its capture and every event applied to it. Erasing a lead erases these.
CREATE TABLE lead_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    lead_id TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    message_id TEXT,
    created_at TEXT NOT NULL
);

CREATE INDEX lead_events_lead ON lead_events (tenant_id, lead_id, id);

-- Triggers live in schema/default/triggers/; the runner re-creates them after migrating.

-- `x-webhook-message-id`s applied: a redelivery changes nothing.
CREATE TABLE systeme_messages (
    message_id TEXT PRIMARY KEY NOT NULL,
    event TEXT NOT NULL,
    received_at TEXT NOT NULL
) WITHOUT ROWID;
