-- Capture's rate limit rides on the lead write itself: the lead upsert only proceeds while the
-- client's window is under the limit, and these triggers count the hit in the same statement.
-- One autocommit statement per captured lead instead of a transaction of two.

ALTER TABLE leads ADD COLUMN client TEXT;

CREATE TRIGGER capture_rate_on_insert AFTER INSERT ON leads WHEN NEW.client IS NOT NULL
BEGIN
    INSERT INTO capture_rate (tenant_id, client, window_start, hits)
    VALUES (NEW.tenant_id, NEW.client, (CAST(strftime('%s', NEW.updated_at) AS INTEGER) / 60) * 60, 1)
    ON CONFLICT (tenant_id, client) DO UPDATE SET
        hits = CASE WHEN capture_rate.window_start = excluded.window_start THEN capture_rate.hits + 1 ELSE 1 END,
        window_start = excluded.window_start;
END;

CREATE TRIGGER capture_rate_on_update AFTER UPDATE OF revision ON leads WHEN NEW.client IS NOT NULL
BEGIN
    INSERT INTO capture_rate (tenant_id, client, window_start, hits)
    VALUES (NEW.tenant_id, NEW.client, (CAST(strftime('%s', NEW.updated_at) AS INTEGER) / 60) * 60, 1)
    ON CONFLICT (tenant_id, client) DO UPDATE SET
        hits = CASE WHEN capture_rate.window_start = excluded.window_start THEN capture_rate.hits + 1 ELSE 1 END,
        window_start = excluded.window_start;
END;
