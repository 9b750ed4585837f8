-- The lead list pages by (tenant_id, id) (ids are time-ordered), so this index from 0002 is
-- never used; dropping it saves one index write on every captured lead.
DROP INDEX IF EXISTS leads_tenant_created;
