-- Tenants (introducing brokers). One row per tenant; every tenant-owned table references it.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    tag_prefix TEXT NOT NULL,
    plan TEXT NOT NULL CHECK (plan IN ('starter', 'pro', 'enterprise')),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    capture_gen INTEGER NOT NULL DEFAULT 1,
    lead_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE UNIQUE INDEX tenants_email ON tenants (email);

CREATE UNIQUE INDEX tenants_tag_prefix ON tenants (tag_prefix);

-- Signup webhooks already processed: a replayed webhook-id returns the same tenant.
CREATE TABLE signup_requests (
    webhook_id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    created_at TEXT NOT NULL
);
