//! A tenant's leads as capture writes them: the upsert, the spam counter, idempotency keys and
//! the per-client rate limit. Built only from a verified tenant ([`LeadStore::new`]);
//! every statement goes through [`TenantDb`], so it cannot reach another tenant's rows.
//!
//! Storage calls per capture, no sync: the schema check when the connection opens, then one
//! autocommit statement, the lead upsert. It proceeds only while the client's rate window is
//! under the limit, and its triggers count the hit, the lead for the plan, the day's rollup,
//! the facet counts and the timeline, all in that statement. `Idempotency-Key` adds one read
//! and one write.

use anyhow::{Context, Result, anyhow};
use domain::id::LeadId;
use domain::lead::{LeadSubmission, SyncStatus};
use domain::tags::Tag;
use platform::ApiError;
use platform::clock::{new_id, now_rfc3339};
use platform::db::{FromRow, Row};
use platform::scope::TenantDb;
use platform::tenant::{Tenant, TenantContext};
use platform::tenant_sql;
use spin_sdk::sqlite::Value;

use crate::sync::{Attempt, LeadSync, SyncTarget, Syncer};

/// Seconds an inline sync holds a fresh lead before the batch may pick it up.
pub const INLINE_LEASE_SECS: i64 = 60;

/// What storing a submission did.
#[derive(Debug)]
pub struct Captured {
    pub id: LeadId,
    /// A new (tenant, email): `201`; a repeat: `200`.
    pub created: bool,
    pub sync_status: SyncStatus,
    /// What a sync needs, read back from the stored row.
    pub target: SyncTarget,
}

/// A replayable first answer to an `Idempotency-Key`.
#[derive(Debug)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: String,
}

/// The tenant's leads.
pub struct LeadStore {
    db: TenantDb,
    tenant: Tenant,
}

/// The row the capture upsert returns: the lead as stored now.
struct CapturedRow {
    sync_status: SyncStatus,
    lead: LeadSync,
}

impl FromRow for CapturedRow {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            sync_status: row.parsed("sync_status", |s| {
                SyncStatus::parse(s).ok_or("unknown sync status")
            })?,
            lead: LeadSync::from_row(row)?,
        })
    }
}

/// A client's rate window after counting a hit.
struct RateWindow {
    hits: i64,
    window_start: i64,
}

impl FromRow for RateWindow {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            hits: row.int("hits")?,
            window_start: row.int("window_start")?,
        })
    }
}

/// A stored `Idempotency-Key` answer.
struct StoredKey {
    request_hash: String,
    answer: StoredAnswer,
}

impl FromRow for StoredKey {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            request_hash: row.text("request_hash")?.to_string(),
            answer: StoredAnswer {
                status: u16::try_from(row.int("status")?).context("column `status`")?,
                body: row.text("body")?.to_string(),
            },
        })
    }
}

fn text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |v| Value::Text(v.to_string()))
}

fn unix_day(now: i64) -> Result<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(now).context("clock out of range")?;
    Ok(platform::clock::timestamp(t).chars().take(10).collect())
}

impl LeadStore {
    /// The verified tenant's lead store.
    pub fn new(ctx: &TenantContext) -> Result<Self, ApiError> {
        Ok(Self {
            db: ctx.db()?,
            tenant: ctx.tenant().clone(),
        })
    }

    /// Stores a submission: a new lead, or an update of the tenant's lead with that email
    /// (fields given now win, tags are merged, a synced lead is queued again). Over the plan's
    /// limit a new lead is `held`. Durable when this returns.
    /// `None` when the client's rate window is full: nothing was written.
    fn capture(
        &self,
        client: &str,
        limit: u32,
        lead: &LeadSubmission,
        tags: &[Tag],
        now: i64,
    ) -> Result<Option<Captured>> {
        let id = LeadId::parse(&new_id()?)?;
        let stamp = now_rfc3339()?;
        let tags_json = serde_json::to_string(tags)?;
        let plan_limit = i64::try_from(self.tenant.plan.limits().leads).unwrap_or(i64::MAX);
        let stored = self.db.query_one::<CapturedRow>(
            tenant_sql!(
                "INSERT INTO leads (tenant_id, id, email, name, phone, ib_type, monthly_leads, volume,
                    broker_network, form, utm_source, utm_medium, utm_campaign, page_url, consent, tags,
                    sync_status, next_sync_at, created_at, updated_at, client)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    CASE WHEN (SELECT lead_count FROM tenants WHERE id = ?1) >= ?17 THEN 'held' ELSE 'pending' END,
                    ?18, ?19, ?19, ?20
                 WHERE COALESCE((SELECT hits FROM capture_rate WHERE tenant_id = ?1 AND client = ?20
                    AND window_start = (CAST(strftime('%s', ?19) AS INTEGER) / 60) * 60), 0) < ?21
                 ON CONFLICT (tenant_id, email) DO UPDATE SET
                    name = COALESCE(excluded.name, leads.name),
                    phone = COALESCE(excluded.phone, leads.phone),
                    ib_type = COALESCE(excluded.ib_type, leads.ib_type),
                    monthly_leads = COALESCE(excluded.monthly_leads, leads.monthly_leads),
                    volume = COALESCE(excluded.volume, leads.volume),
                    broker_network = COALESCE(excluded.broker_network, leads.broker_network),
                    form = excluded.form,
                    utm_source = COALESCE(leads.utm_source, excluded.utm_source),
                    utm_medium = COALESCE(leads.utm_medium, excluded.utm_medium),
                    utm_campaign = COALESCE(leads.utm_campaign, excluded.utm_campaign),
                    page_url = COALESCE(leads.page_url, excluded.page_url),
                    consent = MAX(leads.consent, excluded.consent),
                    tags = (SELECT json_group_array(value) FROM (
                        SELECT value FROM json_each(leads.tags) UNION SELECT value FROM json_each(excluded.tags)
                        ORDER BY value)),
                    sync_status = CASE WHEN leads.sync_status IN ('synced', 'failed') THEN 'pending' ELSE leads.sync_status END,
                    sync_attempts = CASE WHEN leads.sync_status IN ('synced', 'failed') THEN 0 ELSE leads.sync_attempts END,
                    next_sync_at = CASE WHEN leads.sync_status = 'held' THEN leads.next_sync_at ELSE excluded.next_sync_at END,
                    revision = leads.revision + 1,
                    updated_at = excluded.updated_at,
                    client = excluded.client
                 WHERE leads.tenant_id = ?1
                 RETURNING id, sync_status, revision, email, name, phone, tags, systeme_contact_id, sync_attempts"
            ),
            &[
                Value::Text(id.to_string()),
                Value::Text(lead.email.to_string()),
                text(lead.name.as_deref()),
                text(lead.phone.as_deref()),
                text(lead.ib_type.as_deref()),
                text(lead.monthly_leads.as_deref()),
                text(lead.volume.map(|v| v.as_str())),
                text(lead.broker_network.as_deref()),
                Value::Text(lead.form.clone()),
                text(lead.utm_source.as_deref()),
                text(lead.utm_medium.as_deref()),
                text(lead.utm_campaign.as_deref()),
                text(lead.page_url.as_deref()),
                Value::Integer(i64::from(lead.consent)),
                Value::Text(tags_json),
                Value::Integer(plan_limit),
                Value::Integer(now + INLINE_LEASE_SECS),
                Value::Text(stamp),
                Value::Text(client.to_string()),
                Value::Integer(i64::from(limit)),
            ],
        )?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        Ok(Some(Captured {
            created: stored.lead.id == id,
            id: stored.lead.id.clone(),
            sync_status: stored.sync_status,
            target: SyncTarget::new(&self.tenant, stored.lead),
        }))
    }

    /// The hot path: stores the lead if the client is within its rate limit, counting the hit,
    /// in one statement (the limit check is part of the upsert; triggers count). `Err(seconds)`
    /// when the client must wait; the refused hit is counted too.
    pub fn capture_within_limit(
        &self,
        client: &str,
        limit: u32,
        lead: &LeadSubmission,
        tags: &[Tag],
        now: i64,
    ) -> Result<Result<Captured, u64>> {
        if let Some(captured) = self.capture(client, limit, lead, tags, now)? {
            return Ok(Ok(captured));
        }
        match self.rate_limit(client, limit, now)? {
            Some(wait) => Ok(Err(wait)),
            // The window turned over between the two statements: try once more.
            None => match self.capture(client, limit, lead, tags, now)? {
                Some(captured) => Ok(Ok(captured)),
                None => Ok(Err(1)),
            },
        }
    }

    /// Pushes a lead just captured to Systeme.io on this store's connection and records the
    /// outcome on the lead. A failure leaves the lead pending for the batch.
    pub fn sync(&self, syncer: &mut Syncer, target: &SyncTarget, now: i64) -> Result<Attempt> {
        syncer.sync(&self.db, target, now)
    }

    /// Counts a honeypot hit in today's rollup; nothing else is stored.
    pub fn count_spam(&self, now: i64) -> Result<()> {
        self.db.execute(
            tenant_sql!(
                "INSERT INTO daily_rollups (tenant_id, day, spam) VALUES (?1, ?2, 1)
                 ON CONFLICT (tenant_id, day) DO UPDATE SET spam = spam + 1"
            ),
            &[Value::Text(unix_day(now)?)],
        )?;
        Ok(())
    }

    /// Counts one request from `client` in the current one-minute window. `Some(seconds)` to
    /// wait when the window already holds `limit` requests. One atomic statement, so
    /// concurrent requests cannot both slip under the limit. The window rule, `(unix / 60) * 60`,
    /// is the one migration 0006's triggers apply when a lead write counts its hit.
    pub fn rate_limit(&self, client: &str, limit: u32, now: i64) -> Result<Option<u64>> {
        let counted = self.db.query_one::<RateWindow>(
            tenant_sql!(
                "INSERT INTO capture_rate (tenant_id, client, window_start, hits) VALUES (?1, ?2, (?3 / 60) * 60, 1)
                 ON CONFLICT (tenant_id, client) DO UPDATE SET
                    hits = CASE WHEN capture_rate.window_start = excluded.window_start
                                THEN capture_rate.hits + 1 ELSE 1 END,
                    window_start = excluded.window_start
                 RETURNING hits, window_start"
            ),
            &[Value::Text(client.to_string()), Value::Integer(now)],
        )?;
        let counted = counted.ok_or_else(|| anyhow!("rate-limit upsert returned no count"))?;
        let (hits, window) = (counted.hits, counted.window_start);
        if hits > i64::from(limit) {
            let wait = u64::try_from(window + 60 - now).unwrap_or(1).max(1);
            return Ok(Some(wait));
        }
        Ok(None)
    }

    /// The stored answer for `key`, if any. `Err` with a conflict when the key was used for a
    /// different request body.
    pub fn replay(&self, key: &str, request_hash: &str) -> Result<Option<StoredAnswer>, ApiError> {
        let found = self.db.query_one::<StoredKey>(
            tenant_sql!(
                "SELECT request_hash, status, body FROM idempotency_keys WHERE tenant_id = ?1 AND key = ?2"
            ),
            &[Value::Text(key.to_string())],
        )?;
        let Some(found) = found else {
            return Ok(None);
        };
        if found.request_hash != request_hash {
            return Err(ApiError::Unprocessable {
                code: "idempotency_key_reused",
                detail: "this Idempotency-Key was used for a different request".into(),
            });
        }
        Ok(Some(found.answer))
    }

    /// Keeps the first answer to `key` (a concurrent first request keeps its own).
    pub fn remember(&self, key: &str, request_hash: &str, answer: &StoredAnswer) -> Result<()> {
        self.db.execute(
            tenant_sql!(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, status, body, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tenant_id, key) DO NOTHING"
            ),
            &[
                Value::Text(key.to_string()),
                Value::Text(request_hash.to_string()),
                Value::Integer(i64::from(answer.status)),
                Value::Text(answer.body.clone()),
                Value::Text(now_rfc3339()?),
            ],
        )?;
        Ok(())
    }
}
