//! Seeds the app's SQLite database directly (after the app migrated it): many tenants, and
//! tenants with many leads. Inserts go through the app's own triggers, so rollups and facet
//! counts are exactly what the app would have built.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use rusqlite::{Connection, params};

/// A seeded tenant.
#[derive(Debug, Clone)]
pub struct SeededTenant {
    pub id: String,
}

fn open(db: &Path) -> Result<Connection> {
    let conn = Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    Ok(conn)
}

/// `count` tenants named `seed-{i}`, numbered from `first`.
pub fn tenants(db: &Path, first: usize, count: usize) -> Result<Vec<SeededTenant>> {
    let mut conn = open(db)?;
    let tx = conn.transaction()?;
    let mut out = Vec::with_capacity(count);
    {
        let mut insert = tx.prepare(
            "INSERT INTO tenants (id, name, email, tag_prefix, plan, status, capture_gen, lead_count, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 'enterprise', 'active', 1, 0, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        )?;
        for i in first..first + count {
            let id = format!("00000000-0000-4000-8000-{i:012x}");
            insert.execute(params![
                id,
                format!("seed-{i}"),
                format!("seed-{i}@ib.example.com"),
                format!("ib-sd{i:06}-"),
            ])?;
            out.push(SeededTenant { id });
        }
    }
    tx.commit()?;
    Ok(out)
}

const STAGES: [&str; 5] = ["new", "nurturing", "engaged", "converted", "retained"];
const IB_TYPES: [&str; 4] = ["forex-ib", "crypto-affiliate", "cfd-partner", "stocks-ib"];
const SOURCES: [&str; 5] = ["facebook", "google", "tiktok", "newsletter", "youtube"];

/// `n` leads for `tenant`, spread over the last 365 days, in transactions of 50,000.
pub fn leads(db: &Path, tenant: &SeededTenant, tenant_no: usize, n: usize) -> Result<()> {
    let mut conn = open(db)?;
    let today = time::OffsetDateTime::now_utc().date();
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(50_000);
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO leads (id, tenant_id, email, ib_type, volume, form, utm_source, tags, stage,
                    sync_status, created_at, updated_at, first_event)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'demo-request', ?6, '[]', ?7, 'synced', ?8, ?8,
                    '{\"form\":\"demo-request\",\"tags\":[]}')",
            )?;
            for i in done..done + batch {
                let created = today - time::Duration::days(i64::try_from(i % 365)?);
                insert.execute(params![
                    format!("019a0000-{tenant_no:04x}-7000-8000-{i:012x}"),
                    tenant.id,
                    format!("lead{i}@seed{tenant_no}.example.com"),
                    IB_TYPES[i % IB_TYPES.len()],
                    ["high", "medium", "low"][i % 3],
                    SOURCES[i % SOURCES.len()],
                    STAGES[i % STAGES.len()],
                    format!("{}T12:00:00.000Z", domain::dashboard::day_string(created)),
                ])?;
            }
        }
        tx.commit()?;
        done += batch;
    }
    Ok(())
}
