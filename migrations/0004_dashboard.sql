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

-- Triggers live in schema/default/triggers/; the runner re-creates them after migrating.

-- Keyset pagination, newest first (lead ids are UUID v7, so they sort by creation).
CREATE INDEX leads_tenant_id ON leads (tenant_id, id);

CREATE INDEX leads_tenant_stage_id ON leads (tenant_id, stage, id);
