-- A new lead counts once, in the statement that stores it: the plan's lead count, the day's
-- rollup, its facet counts and (for a form post) the client's rate window. Its first timeline
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
END;
