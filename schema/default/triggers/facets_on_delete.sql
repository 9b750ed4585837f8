-- An erased lead leaves its five facet counts, each found by its primary key.
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
