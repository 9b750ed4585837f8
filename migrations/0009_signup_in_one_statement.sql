-- Signup in one statement (no interactive transaction): the tenant row carries the signup
-- webhook id, so `INSERT … ON CONFLICT DO NOTHING` creates a tenant at most once per webhook
-- id, email and tag prefix, and a replay or a taken email is told apart by a read afterwards.
-- signup_requests keeps the webhook ids of tenants created before this migration.

ALTER TABLE tenants ADD COLUMN signup_webhook_id TEXT;

UPDATE tenants SET signup_webhook_id =
    (SELECT webhook_id FROM signup_requests WHERE signup_requests.tenant_id = tenants.id);

CREATE UNIQUE INDEX tenants_signup_webhook ON tenants (signup_webhook_id)
WHERE signup_webhook_id IS NOT NULL;
