-- `tenant_funnels` (the lookup from a Systeme.io funnel to its tenant, unique per funnel) follows
-- the tenant's `funnel_ids`, so registering a funnel another tenant holds fails the UPDATE.
CREATE TRIGGER tenants_funnels AFTER UPDATE OF funnel_ids ON tenants
BEGIN
    DELETE FROM tenant_funnels WHERE tenant_id = NEW.id;
    INSERT INTO tenant_funnels (funnel_id, tenant_id)
    SELECT value, NEW.id FROM json_each(NEW.funnel_ids);
END;
