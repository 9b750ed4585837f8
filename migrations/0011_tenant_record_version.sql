-- The tenant record cached in the key-value store (`t:<id>:record`) is a versioned cache: the
-- row's version goes up with every change to it, the cached copy carries the version it was
-- read at, and a refresh never replaces a newer cached version with an older one.
ALTER TABLE tenants ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- Every change the app makes to a tenant raises its version, by a trigger.
-- Triggers live in schema/default/triggers/; the runner re-creates them after migrating.
