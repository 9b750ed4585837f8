-- A Systeme.io callback is one INSERT into `event_applications`, a row that lives only for this
-- trigger: the message is recorded as applied for the tenant, the lead gets its new state (or is
-- created), its timeline entry and the day's rollup gain what the event adds, all or nothing.
-- The lead's state was computed from the `event_seq` it was read at; if another callback moved
-- it since, the trigger aborts with the code `cfe:stale_lead_state` and the callback reads the
-- lead again (codes: domain::schema::TriggerError).
CREATE TRIGGER event_applications_apply AFTER INSERT ON event_applications
BEGIN
    SELECT RAISE(ABORT, 'cfe:stale_lead_state')
    WHERE NEW.expected_seq IS NOT NULL
        AND (SELECT event_seq FROM leads WHERE tenant_id = NEW.tenant_id AND id = NEW.lead_id)
            IS NOT NEW.expected_seq;
    INSERT INTO applied_events (tenant_id, message_id, event, applied_at, digest)
    VALUES (NEW.tenant_id, NEW.message_id, NEW.event, NEW.at, NEW.digest);
    INSERT INTO alert_deliveries (tenant_id, id, rule_id, event, lead_id, detail, created_at)
    SELECT NEW.tenant_id, 'msg_' || lower(hex(randomblob(12))), r.id, r.event, NEW.lead_id,
        CASE r.event WHEN 'sale' THEN NEW.detail END, NEW.at
    FROM alert_rules r LEFT JOIN leads l ON l.tenant_id = NEW.tenant_id AND l.id = NEW.lead_id
    WHERE r.tenant_id = NEW.tenant_id AND CASE r.event
            WHEN 'lead.stage' THEN r.stage = NEW.stage AND l.stage IS NOT NEW.stage
            WHEN 'lead.opened' THEN NEW.emails_opened >= r.opens AND COALESCE(l.emails_opened, 0) < r.opens
            WHEN 'sale' THEN NEW.kind = 'sale' AND json_extract(NEW.detail, '$.amount_cents') >= r.min_amount_cents
                AND (r.currency IS NULL OR r.currency = upper(json_extract(NEW.detail, '$.currency')))
            ELSE 0 END
        AND r.enabled AND r.disabled_at IS NULL;
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
