-- Delivery attempts per tenant and UTC day (first attempts, retries, tests and redeliveries):
-- what the plan's daily delivery limit counts. One row per tenant and day, so a run checks the
-- limit by reading one row, and two runs sending at once each see what the other claimed. A
-- run adds a tenant's attempts in the write after it claims them, before it sends them.
CREATE TABLE alert_attempts (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    -- YYYY-MM-DD, UTC.
    day TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day)
) WITHOUT ROWID;

-- Deliveries already attempted today count one attempt each (a delivery's
-- tenant may be gone: `alert_deliveries` keeps no reference to it).
INSERT INTO alert_attempts (tenant_id, day, n)
SELECT tenant_id, date('now'), count(*) FROM alert_deliveries
WHERE last_attempt_at >= CAST(strftime('%s', date('now')) AS INTEGER)
    AND tenant_id IN (SELECT id FROM tenants)
GROUP BY tenant_id;
