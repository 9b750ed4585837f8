-- The tenant dashboard (see README.md): per-tenant counts by stage, sync status, ib_type, volume
-- and utm_source, kept up to date by triggers so stats never scan leads; keyset indexes for the
-- lead list; erasing a lead frees its place in the plan.

CREATE TABLE lead_facets (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    facet TEXT NOT NULL,
    value TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, facet, value)
) WITHOUT ROWID;

-- Counts for leads that exist already (a database migrated from version 3).
INSERT INTO lead_facets (tenant_id, facet, value, n)
SELECT tenant_id, 'stage', stage, COUNT(*) FROM leads GROUP BY tenant_id, stage;

INSERT INTO lead_facets (tenant_id, facet, value, n)
SELECT tenant_id, 'sync', sync_status, COUNT(*) FROM leads GROUP BY tenant_id, sync_status;

INSERT INTO lead_facets (tenant_id, facet, value, n)
SELECT tenant_id, 'ib_type', COALESCE(ib_type, ''), COUNT(*) FROM leads GROUP BY tenant_id, COALESCE(ib_type, '');

INSERT INTO lead_facets (tenant_id, facet, value, n)
SELECT tenant_id, 'volume', COALESCE(volume, ''), COUNT(*) FROM leads GROUP BY tenant_id, COALESCE(volume, '');

INSERT INTO lead_facets (tenant_id, facet, value, n)
SELECT tenant_id, 'utm_source', COALESCE(utm_source, ''), COUNT(*) FROM leads GROUP BY tenant_id, COALESCE(utm_source, '');

CREATE TRIGGER facets_on_insert AFTER INSERT ON leads
BEGIN
    INSERT INTO lead_facets (tenant_id, facet, value, n) VALUES
        (NEW.tenant_id, 'stage', NEW.stage, 1),
        (NEW.tenant_id, 'sync', NEW.sync_status, 1),
        (NEW.tenant_id, 'ib_type', COALESCE(NEW.ib_type, ''), 1),
        (NEW.tenant_id, 'volume', COALESCE(NEW.volume, ''), 1),
        (NEW.tenant_id, 'utm_source', COALESCE(NEW.utm_source, ''), 1)
    ON CONFLICT (tenant_id, facet, value) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER facets_on_delete AFTER DELETE ON leads
BEGIN
    UPDATE lead_facets SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND (
        (facet = 'stage' AND value = OLD.stage)
        OR (facet = 'sync' AND value = OLD.sync_status)
        OR (facet = 'ib_type' AND value = COALESCE(OLD.ib_type, ''))
        OR (facet = 'volume' AND value = COALESCE(OLD.volume, ''))
        OR (facet = 'utm_source' AND value = COALESCE(OLD.utm_source, '')));
    UPDATE tenants SET lead_count = lead_count - 1 WHERE id = OLD.tenant_id;
END;

CREATE TRIGGER facets_on_stage AFTER UPDATE OF stage ON leads WHEN OLD.stage IS NOT NEW.stage
BEGIN
    UPDATE lead_facets SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND facet = 'stage' AND value = OLD.stage;
    INSERT INTO lead_facets (tenant_id, facet, value, n) VALUES (NEW.tenant_id, 'stage', NEW.stage, 1)
    ON CONFLICT (tenant_id, facet, value) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER facets_on_sync AFTER UPDATE OF sync_status ON leads WHEN OLD.sync_status IS NOT NEW.sync_status
BEGIN
    UPDATE lead_facets SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND facet = 'sync' AND value = OLD.sync_status;
    INSERT INTO lead_facets (tenant_id, facet, value, n) VALUES (NEW.tenant_id, 'sync', NEW.sync_status, 1)
    ON CONFLICT (tenant_id, facet, value) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER facets_on_ib_type AFTER UPDATE OF ib_type ON leads WHEN OLD.ib_type IS NOT NEW.ib_type
BEGIN
    UPDATE lead_facets SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND facet = 'ib_type' AND value = COALESCE(OLD.ib_type, '');
    INSERT INTO lead_facets (tenant_id, facet, value, n) VALUES (NEW.tenant_id, 'ib_type', COALESCE(NEW.ib_type, ''), 1)
    ON CONFLICT (tenant_id, facet, value) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER facets_on_volume AFTER UPDATE OF volume ON leads WHEN OLD.volume IS NOT NEW.volume
BEGIN
    UPDATE lead_facets SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND facet = 'volume' AND value = COALESCE(OLD.volume, '');
    INSERT INTO lead_facets (tenant_id, facet, value, n) VALUES (NEW.tenant_id, 'volume', COALESCE(NEW.volume, ''), 1)
    ON CONFLICT (tenant_id, facet, value) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER facets_on_utm_source AFTER UPDATE OF utm_source ON leads WHEN OLD.utm_source IS NOT NEW.utm_source
BEGIN
    UPDATE lead_facets SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND facet = 'utm_source' AND value = COALESCE(OLD.utm_source, '');
    INSERT INTO lead_facets (tenant_id, facet, value, n) VALUES (NEW.tenant_id, 'utm_source', COALESCE(NEW.utm_source, ''), 1)
    ON CONFLICT (tenant_id, facet, value) DO UPDATE SET n = n + 1;
END;

-- Keyset pagination, newest first (lead ids are UUID v7, so they sort by creation).
CREATE INDEX leads_tenant_id ON leads (tenant_id, id);

CREATE INDEX leads_tenant_stage_id ON leads (tenant_id, stage, id);
