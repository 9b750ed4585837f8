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
