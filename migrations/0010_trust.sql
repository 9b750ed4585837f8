-- Trust: what the public capture key and the shared Systeme.io account must not be
-- able to do.

-- The plan's lead quota counts leads captured, not rows alive now: erasing a lead does not
-- give its place back (the product has no billing period yet, so the period is the plan's
-- lifetime).
DROP TRIGGER facets_on_delete;

CREATE TRIGGER facets_on_delete AFTER DELETE ON leads
BEGIN
    UPDATE lead_facets SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND (
        (facet = 'stage' AND value = OLD.stage)
        OR (facet = 'sync' AND value = OLD.sync_status)
        OR (facet = 'ib_type' AND value = COALESCE(OLD.ib_type, ''))
        OR (facet = 'volume' AND value = COALESCE(OLD.volume, ''))
        OR (facet = 'utm_source' AND value = COALESCE(OLD.utm_source, '')));
END;

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

CREATE TRIGGER erased_leads_erase AFTER INSERT ON erased_leads
BEGIN
    DELETE FROM leads WHERE tenant_id = NEW.tenant_id AND id = NEW.lead_id;
END;

CREATE TRIGGER erased_leads_erase_again AFTER UPDATE ON erased_leads
BEGIN
    DELETE FROM leads WHERE tenant_id = NEW.tenant_id AND id = NEW.lead_id;
END;

-- A callback is applied once per tenant by message id and also by a digest of its event name
-- and raw body, so the same signed body replayed under a new message id changes nothing.
ALTER TABLE applied_events ADD COLUMN digest TEXT;

CREATE UNIQUE INDEX applied_events_digest ON applied_events (tenant_id, digest)
WHERE digest IS NOT NULL;

ALTER TABLE event_applications ADD COLUMN digest TEXT;

DROP TRIGGER event_applications_apply;

CREATE TRIGGER event_applications_apply AFTER INSERT ON event_applications
BEGIN
    INSERT INTO applied_events (tenant_id, message_id, event, applied_at, digest)
    VALUES (NEW.tenant_id, NEW.message_id, NEW.event, NEW.at, NEW.digest);
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

CREATE TRIGGER tenants_funnels AFTER UPDATE OF funnel_ids ON tenants
BEGIN
    DELETE FROM tenant_funnels WHERE tenant_id = NEW.id;
    INSERT INTO tenant_funnels (funnel_id, tenant_id)
    SELECT value, NEW.id FROM json_each(NEW.funnel_ids);
END;

-- The tags the last successful Systeme.io sync gave the contact, so a repeat post assigns
-- only the tags the contact does not have yet.
ALTER TABLE leads ADD COLUMN synced_tags TEXT NOT NULL DEFAULT '[]';

-- A cancellation finds the tenant whose lead recorded its order.
CREATE INDEX lead_events_sale_order ON lead_events (json_extract(detail, '$.order_id'))
WHERE kind = 'sale';
