-- The tenant record cached in the key-value store (`t:<id>:record`) is a versioned cache: the
-- row's version goes up with every change to it, the cached copy carries the version it was
-- read at, and a refresh never replaces a newer cached version with an older one.
ALTER TABLE tenants ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- Every change the app makes to a tenant sets updated_at, so listing it catches columns added
-- later too; lead_count (bumped by every capture) is left out, as the cache does not hold it.
-- An UPDATE that sets version itself is left alone.
CREATE TRIGGER tenants_version
AFTER UPDATE OF name, email, tag_prefix, plan, status, capture_gen, allowed_origins,
    thank_you_url, tag_rules, updated_at ON tenants
WHEN NEW.version = OLD.version
BEGIN
    UPDATE tenants SET version = OLD.version + 1 WHERE id = NEW.id;
END;
