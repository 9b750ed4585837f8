-- A tenant's spam rules beyond the honeypot (domain::spam::SpamRules), set with its settings: an
-- optional captcha (provider, public site key and secret key, all three or none) that capture
-- verifies server-side, and a minimum fill time. No row means the defaults: no captcha, no
-- minimum. Capture reads the row once per post, before its lead write.
CREATE TABLE tenant_spam_rules (
    tenant_id TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id),
    captcha_provider TEXT,
    captcha_site_key TEXT,
    captcha_secret TEXT,
    min_fill_seconds INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
