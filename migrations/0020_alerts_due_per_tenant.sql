-- What is pending, per tenant and in order: a delivery run steps through the tenants in this
-- index and reads each one's oldest due deliveries from it (components/alerts/src/deliver.rs,
-- `due`), so a read costs the same however long a tenant's backlog, instead of sorting every
-- due row.
DROP INDEX alert_deliveries_due;
CREATE INDEX alert_deliveries_due ON alert_deliveries (tenant_id, next_attempt_at, created_at)
    WHERE status = 'pending';
