-- A repeat post (an UPDATE that bumps the lead's revision) counts against the client's capture
-- rate window, in the statement that stores it. A new lead counts in `leads_inserted`.
CREATE TRIGGER capture_rate_on_update AFTER UPDATE OF revision ON leads WHEN NEW.client IS NOT NULL
BEGIN
    INSERT INTO capture_rate (tenant_id, client, window_start, hits)
    VALUES (NEW.tenant_id, NEW.client, (CAST(strftime('%s', NEW.updated_at) AS INTEGER) / 60) * 60, 1)
    ON CONFLICT (tenant_id, client) DO UPDATE SET
        hits = CASE WHEN capture_rate.window_start = excluded.window_start THEN capture_rate.hits + 1 ELSE 1 END,
        window_start = excluded.window_start;
END;
