-- Callbacks in one statement (no interactive transaction). A callback reads the lead, computes
-- its next state in Rust (domain rules), then writes one row here per (message, tenant); the
-- triggers check that nobody changed the lead meanwhile (event_seq), record the message as
-- applied for that tenant (exactly once), create a Systeme.io-sourced lead when asked, update
-- the lead, append the timeline entry and count the day, all in that one statement. The row
-- itself is deleted again by the last trigger step: the table is only the statement's input.

ALTER TABLE leads ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;

CREATE TABLE applied_events (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    message_id TEXT NOT NULL,
    event TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
) WITHOUT ROWID;

-- Messages applied before this migration stay applied.
INSERT OR IGNORE INTO applied_events (tenant_id, message_id, event, applied_at)
SELECT e.tenant_id, e.message_id, COALESCE(m.event, ''), e.created_at
FROM lead_events e LEFT JOIN systeme_messages m ON m.message_id = e.message_id
WHERE e.message_id IS NOT NULL;

CREATE TABLE event_applications (
    tenant_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    event TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    -- The lead's event_seq when it was read; NULL: the lead does not exist yet, create it.
    expected_seq INTEGER,
    -- The lead after the event.
    stage TEXT NOT NULL,
    emails_sent INTEGER NOT NULL,
    emails_opened INTEGER NOT NULL,
    emails_clicked INTEGER NOT NULL,
    converted INTEGER NOT NULL,
    sales INTEGER NOT NULL,
    revenue_cents INTEGER NOT NULL,
    inactive INTEGER NOT NULL,
    churned INTEGER NOT NULL,
    tags TEXT NOT NULL,
    opted_in INTEGER NOT NULL,
    systeme_contact_id INTEGER,
    -- A lead to create (expected_seq IS NULL).
    email TEXT,
    name TEXT,
    phone TEXT,
    utm_source TEXT,
    utm_medium TEXT,
    utm_campaign TEXT,
    page_url TEXT,
    -- The timeline entry.
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    -- What the day's rollup gains.
    day TEXT NOT NULL,
    add_emails_sent INTEGER NOT NULL,
    add_emails_opened INTEGER NOT NULL,
    add_emails_clicked INTEGER NOT NULL,
    add_conversions INTEGER NOT NULL,
    add_revenue_cents INTEGER NOT NULL,
    at TEXT NOT NULL
);

-- Triggers live in schema/default/triggers/; the runner re-creates them after migrating.
