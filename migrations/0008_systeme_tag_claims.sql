-- Serialises Systeme.io tag creation per tag name across concurrent syncs (Spin has no locks).
-- A sync that needs a tag Systeme.io does not have claims its row (INSERT … ON CONFLICT, taken
-- over only once `claimed_until` has passed), creates the tag, records its id here and releases
-- the claim; a sync that finds the row claimed waits for the id instead of creating a second
-- tag. `tag_id` is cleared when Systeme.io says the tag no longer exists.
CREATE TABLE systeme_tag_claims (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    tag TEXT NOT NULL,
    tag_id INTEGER,
    claimed_until INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, tag)
) WITHOUT ROWID;
