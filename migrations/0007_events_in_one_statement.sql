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

CREATE TRIGGER event_applications_check BEFORE INSERT ON event_applications
WHEN NEW.expected_seq IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'cfe: stale lead state')
    WHERE (SELECT event_seq FROM leads WHERE tenant_id = NEW.tenant_id AND id = NEW.lead_id)
        IS NOT NEW.expected_seq;
END;

CREATE TRIGGER event_applications_apply AFTER INSERT ON event_applications
BEGIN
    INSERT INTO applied_events (tenant_id, message_id, event, applied_at)
    VALUES (NEW.tenant_id, NEW.message_id, NEW.event, NEW.at);
    INSERT INTO leads (tenant_id, id, email, name, phone, form, utm_source, utm_medium,
        utm_campaign, page_url, tags, source, sync_status, systeme_contact_id, created_at,
        updated_at)
    SELECT NEW.tenant_id, NEW.lead_id, NEW.email, NEW.name, NEW.phone, 'systeme',
        NEW.utm_source, NEW.utm_medium, NEW.utm_campaign, NEW.page_url, NEW.tags, 'systeme',
        'synced', NEW.systeme_contact_id, NEW.at, NEW.at
    WHERE NEW.expected_seq IS NULL;
    UPDATE leads SET stage = NEW.stage, emails_sent = NEW.emails_sent,
        emails_opened = NEW.emails_opened, emails_clicked = NEW.emails_clicked,
        converted = NEW.converted, sales = NEW.sales, revenue_cents = NEW.revenue_cents,
        inactive = NEW.inactive, churned = NEW.churned, tags = NEW.tags,
        opted_in = NEW.opted_in,
        systeme_contact_id = COALESCE(systeme_contact_id, NEW.systeme_contact_id),
        event_seq = event_seq + 1, updated_at = NEW.at
    WHERE tenant_id = NEW.tenant_id AND id = NEW.lead_id;
    INSERT INTO lead_events (tenant_id, lead_id, kind, detail, message_id, created_at)
    VALUES (NEW.tenant_id, NEW.lead_id, NEW.kind, NEW.detail, NEW.message_id, NEW.at);
    INSERT INTO daily_rollups (tenant_id, day, emails_sent, emails_opened, emails_clicked,
        conversions, revenue_cents)
    SELECT NEW.tenant_id, NEW.day, NEW.add_emails_sent, NEW.add_emails_opened,
        NEW.add_emails_clicked, NEW.add_conversions, NEW.add_revenue_cents
    WHERE NEW.add_emails_sent != 0 OR NEW.add_emails_opened != 0 OR NEW.add_emails_clicked != 0
        OR NEW.add_conversions != 0 OR NEW.add_revenue_cents != 0
    ON CONFLICT (tenant_id, day) DO UPDATE SET
        emails_sent = emails_sent + excluded.emails_sent,
        emails_opened = emails_opened + excluded.emails_opened,
        emails_clicked = emails_clicked + excluded.emails_clicked,
        conversions = conversions + excluded.conversions,
        revenue_cents = revenue_cents + excluded.revenue_cents;
    DELETE FROM event_applications WHERE rowid = NEW.rowid;
END;
