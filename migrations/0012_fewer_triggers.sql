-- Fewer triggers. Under Spin every request opens a new SQLite connection, and a new
-- connection parses the whole schema before its first statement: each trigger body is parsed
-- on every request, whatever the request does, and every trigger that fires is compiled into
-- the statement that fires it. Same rules, fewer and shorter objects:
-- - the four AFTER INSERT triggers on leads become one, `leads_inserted`;
-- - the five facet triggers on UPDATE become one, `leads_facets_moved`, and it and
--   `facets_on_delete` find each facet count by its primary key;
-- - the stale-state check of a callback moves into `event_applications_apply` (a RAISE in an
--   AFTER trigger undoes the whole statement, as the BEFORE trigger did);
-- - `systeme_messages`, unread since migration 0007, goes.

DROP TRIGGER leads_counted;

DROP TRIGGER leads_timeline;

DROP TRIGGER facets_on_insert;

DROP TRIGGER capture_rate_on_insert;

-- A new lead counts once, in the statement that stores it: the plan's lead count, the day's
-- rollup, its first timeline entry, its facet counts and (for a form post) the client's rate
-- window.
CREATE TRIGGER leads_inserted AFTER INSERT ON leads
BEGIN
    UPDATE tenants SET lead_count = lead_count + 1 WHERE id = NEW.tenant_id;
    INSERT INTO daily_rollups (tenant_id, day, leads)
    VALUES (NEW.tenant_id, substr(NEW.created_at, 1, 10), 1)
    ON CONFLICT (tenant_id, day) DO UPDATE SET leads = leads + 1;
    INSERT INTO lead_events (tenant_id, lead_id, kind, detail, created_at)
    VALUES (NEW.tenant_id, NEW.id, CASE NEW.source WHEN 'systeme' THEN 'systeme_contact' ELSE 'captured' END,
        json_object('form', NEW.form, 'tags', json(NEW.tags)), NEW.created_at);
    INSERT INTO lead_facets (tenant_id, facet, value, n) VALUES
        (NEW.tenant_id, 'stage', NEW.stage, 1),
        (NEW.tenant_id, 'sync', NEW.sync_status, 1),
        (NEW.tenant_id, 'ib_type', COALESCE(NEW.ib_type, ''), 1),
        (NEW.tenant_id, 'volume', COALESCE(NEW.volume, ''), 1),
        (NEW.tenant_id, 'utm_source', COALESCE(NEW.utm_source, ''), 1)
    ON CONFLICT (tenant_id, facet, value) DO UPDATE SET n = n + 1;
    INSERT INTO capture_rate (tenant_id, client, window_start, hits)
    SELECT NEW.tenant_id, NEW.client, (CAST(strftime('%s', NEW.updated_at) AS INTEGER) / 60) * 60, 1
    WHERE NEW.client IS NOT NULL
    ON CONFLICT (tenant_id, client) DO UPDATE SET
        hits = CASE WHEN capture_rate.window_start = excluded.window_start THEN capture_rate.hits + 1 ELSE 1 END,
        window_start = excluded.window_start;
END;

DROP TRIGGER facets_on_stage;

DROP TRIGGER facets_on_sync;

DROP TRIGGER facets_on_ib_type;

DROP TRIGGER facets_on_volume;

DROP TRIGGER facets_on_utm_source;

-- A facet value that changed moves its lead from the old value's count to the new one's. One
-- statement per facet for the decrement, so each is a primary-key search (an OR of the five
-- would walk all of the tenant's facet rows, and utm_source values are unbounded).
CREATE TRIGGER leads_facets_moved AFTER UPDATE OF stage, sync_status, ib_type, volume, utm_source ON leads
BEGIN
    UPDATE lead_facets SET n = n - 1 WHERE OLD.stage IS NOT NEW.stage
        AND tenant_id = OLD.tenant_id AND facet = 'stage' AND value = OLD.stage;
    UPDATE lead_facets SET n = n - 1 WHERE OLD.sync_status IS NOT NEW.sync_status
        AND tenant_id = OLD.tenant_id AND facet = 'sync' AND value = OLD.sync_status;
    UPDATE lead_facets SET n = n - 1 WHERE OLD.ib_type IS NOT NEW.ib_type
        AND tenant_id = OLD.tenant_id AND facet = 'ib_type' AND value = COALESCE(OLD.ib_type, '');
    UPDATE lead_facets SET n = n - 1 WHERE OLD.volume IS NOT NEW.volume
        AND tenant_id = OLD.tenant_id AND facet = 'volume' AND value = COALESCE(OLD.volume, '');
    UPDATE lead_facets SET n = n - 1 WHERE OLD.utm_source IS NOT NEW.utm_source
        AND tenant_id = OLD.tenant_id AND facet = 'utm_source' AND value = COALESCE(OLD.utm_source, '');
    INSERT INTO lead_facets (tenant_id, facet, value, n)
    SELECT NEW.tenant_id, 'stage', NEW.stage, 1 WHERE OLD.stage IS NOT NEW.stage
    UNION ALL SELECT NEW.tenant_id, 'sync', NEW.sync_status, 1
        WHERE OLD.sync_status IS NOT NEW.sync_status
    UNION ALL SELECT NEW.tenant_id, 'ib_type', COALESCE(NEW.ib_type, ''), 1
        WHERE OLD.ib_type IS NOT NEW.ib_type
    UNION ALL SELECT NEW.tenant_id, 'volume', COALESCE(NEW.volume, ''), 1
        WHERE OLD.volume IS NOT NEW.volume
    UNION ALL SELECT NEW.tenant_id, 'utm_source', COALESCE(NEW.utm_source, ''), 1
        WHERE OLD.utm_source IS NOT NEW.utm_source
    ON CONFLICT (tenant_id, facet, value) DO UPDATE SET n = n + 1;
END;

-- Erasing a lead takes it out of its five counts, each by a primary-key search (migration
-- 0010's single OR walked the tenant's facet rows).
DROP TRIGGER facets_on_delete;

CREATE TRIGGER facets_on_delete AFTER DELETE ON leads
BEGIN
    UPDATE lead_facets SET n = n - 1
        WHERE tenant_id = OLD.tenant_id AND facet = 'stage' AND value = OLD.stage;
    UPDATE lead_facets SET n = n - 1
        WHERE tenant_id = OLD.tenant_id AND facet = 'sync' AND value = OLD.sync_status;
    UPDATE lead_facets SET n = n - 1
        WHERE tenant_id = OLD.tenant_id AND facet = 'ib_type' AND value = COALESCE(OLD.ib_type, '');
    UPDATE lead_facets SET n = n - 1
        WHERE tenant_id = OLD.tenant_id AND facet = 'volume' AND value = COALESCE(OLD.volume, '');
    UPDATE lead_facets SET n = n - 1
        WHERE tenant_id = OLD.tenant_id AND facet = 'utm_source' AND value = COALESCE(OLD.utm_source, '');
END;

DROP TRIGGER event_applications_check;

DROP TRIGGER event_applications_apply;

CREATE TRIGGER event_applications_apply AFTER INSERT ON event_applications
BEGIN
    SELECT RAISE(ABORT, 'cfe: stale lead state')
    WHERE NEW.expected_seq IS NOT NULL
        AND (SELECT event_seq FROM leads WHERE tenant_id = NEW.tenant_id AND id = NEW.lead_id)
            IS NOT NEW.expected_seq;
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

DROP TABLE systeme_messages;
