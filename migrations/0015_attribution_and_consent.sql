-- Attribution a form post carries beyond source, medium and campaign: the UTM term and content,
-- the ad networks' click ids and the referring page. Kept as first sent (a repeat post fills
-- only what is still empty), like the other UTM fields.
ALTER TABLE leads ADD COLUMN utm_term TEXT;

ALTER TABLE leads ADD COLUMN utm_content TEXT;

ALTER TABLE leads ADD COLUMN gclid TEXT;

ALTER TABLE leads ADD COLUMN fbclid TEXT;

ALTER TABLE leads ADD COLUMN ttclid TEXT;

ALTER TABLE leads ADD COLUMN referrer TEXT;

-- 1 while the lead is `held` because it has not consented and its tenant syncs only leads who
-- consented (0 for a lead held over the plan's quota, and for every other status).
ALTER TABLE leads ADD COLUMN held_for_consent INTEGER NOT NULL DEFAULT 0;

-- A tenant's sync rules (domain::settings::SyncRules), set with its settings. No row means the
-- defaults: every lead is pushed.
CREATE TABLE tenant_sync_rules (
    tenant_id TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id),
    sync_requires_consent INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
