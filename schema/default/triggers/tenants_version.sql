-- Every change to a tenant row raises its `version` (an UPDATE that sets version itself is left
-- alone). The previous release caches tenant rows by version; this keeps its cache correct
-- while both run side by side during a rolling update.
CREATE TRIGGER tenants_version
AFTER UPDATE OF name, email, tag_prefix, plan, status, capture_gen, allowed_origins,
    thank_you_url, tag_rules, updated_at ON tenants
WHEN NEW.version = OLD.version
BEGIN
    UPDATE tenants SET version = OLD.version + 1 WHERE id = NEW.id;
END;
