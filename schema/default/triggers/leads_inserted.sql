-- A new lead counts once, in the statement that stores it: the plan's lead count, the day's
-- rollup, its facet counts and (for a form post) the client's rate window, and for a form post
-- an alert for each of the tenant's `lead.captured` rules it matches. Its first timeline
-- entry is a `lead_events` row only when the INSERT did not set `first_event` itself: capture
-- sets it (one b-tree fewer on the hot path), a contact Systeme.io created does not.
CREATE TRIGGER leads_inserted AFTER INSERT ON leads
BEGIN
    INSERT INTO lead_events (tenant_id, lead_id, kind, detail, created_at)
    SELECT NEW.tenant_id, NEW.id, CASE NEW.source WHEN 'systeme' THEN 'systeme_contact' ELSE 'captured' END,
        json_object('form', NEW.form, 'tags', json(NEW.tags)), NEW.created_at
    WHERE NEW.first_event IS NULL;
    UPDATE tenants SET lead_count = lead_count + 1 WHERE id = NEW.tenant_id;
    INSERT INTO daily_rollups (tenant_id, day, leads)
    VALUES (NEW.tenant_id, substr(NEW.created_at, 1, 10), 1)
    ON CONFLICT (tenant_id, day) DO UPDATE SET leads = leads + 1;
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
    INSERT INTO alert_deliveries (tenant_id, id, rule_id, event, lead_id, created_at)
    SELECT NEW.tenant_id, 'msg_' || lower(hex(randomblob(12))), r.id, r.event, NEW.id, NEW.created_at
    FROM alert_rules r
    WHERE r.tenant_id = NEW.tenant_id AND r.event = 'lead.captured' AND r.enabled
        AND r.disabled_at IS NULL AND NEW.source = 'capture'
        AND (r.volume IS NULL OR r.volume = NEW.volume) AND (r.ib_type IS NULL OR r.ib_type = NEW.ib_type)
        AND (r.utm_source IS NULL OR r.utm_source = NEW.utm_source) AND (r.form IS NULL OR r.form = NEW.form)
        AND (r.tag IS NULL OR r.tag IN (SELECT value FROM json_each(NEW.tags)));
END;
