-- What is due, per tenant and in order: a delivery run reads each tenant's oldest due
-- deliveries from this index alone (its first `PER_TENANT`, components/alerts/src/deliver.rs),
-- so a read costs the same whatever the backlog, instead of sorting every due row.
DROP INDEX alert_deliveries_due;
CREATE INDEX alert_deliveries_due ON alert_deliveries (tenant_id, next_attempt_at, created_at)
    WHERE status = 'pending';
