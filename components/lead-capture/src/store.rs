//! A tenant's leads as capture writes them: the lead write, the spam counter, idempotency keys
//! and the per-client rate limit. Built only from a verified tenant ([`LeadStore::new`]);
//! every statement goes through [`TenantDb`], so it cannot reach another tenant's rows.
//!
//! Storage calls per capture of a new email, no sync: the read of the tenant's spam rules
//! (one row by its key, [`LeadStore::spam_rules`]), then one autocommit statement, the lead
//! `INSERT`. It proceeds only while the client's rate window is under the limit, and its one
//! trigger (`leads_inserted`, schema/default/triggers/) counts the hit, the lead for the plan, the day's
//! rollup and the facet counts, all in that statement; the `INSERT` itself keeps the
//! timeline's first entry in the lead's row (`first_event`): 10 pages written per new lead
//! (BENCHMARKS.md). A repeat email adds a second statement, the `UPDATE` of the stored lead
//! (its triggers count the hit and move the facet counts). `Idempotency-Key` adds a claim
//! before the work (one write, plus a read when the key is taken) and one write after it.

use anyhow::{Context, Result, anyhow};
use domain::id::LeadId;
use domain::lead::{LeadSubmission, MAX_LEAD_TAGS, SyncStatus};
use domain::spam::SpamRules;
use domain::tags::Tag;
use platform::ApiError;
use platform::clock::{new_id, now_rfc3339};
use platform::db::{FromRow, Params, Row};
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
    /// Whether this request holds the lead's sync lease and should push it now: a pending or
    /// failed lead still inside its backoff waits it out, however often it is posted again.
    pub sync_now: bool,
    /// What a sync needs, read back from the stored row.
    pub target: SyncTarget,
    /// Whether the write may have queued an alert that no delivery run will pick up: then the
    /// `alerts` component is woken ([`platform::alerts`]).
    pub kick_alerts: bool,
}

/// What a capture came to.
#[derive(Debug)]
pub enum CaptureOutcome {
    /// Stored durably (new or updated).
    Stored(Box<Captured>),
    /// Nothing stored: the client's rate window is full; retry after this many seconds.
    RateLimited { retry_after_secs: u64 },
    /// Nothing stored: a new email while the tenant holds as many over-quota leads as its
    /// budget allows.
    QuotaFull,
}

/// A replayable first answer to an `Idempotency-Key`.
#[derive(Debug)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: String,
}

/// A request's claim on an `Idempotency-Key` is stored as a row with this status (and the
/// claim's token as its body) until the answer replaces it.
const CLAIMED: i64 = 0;

/// How long an unanswered claim holds its key: a request that died mid-way (a trap, a lost
/// instance) must not lock its key for good.
const CLAIM_SECS: i64 = 30;

/// The tenant's leads.
pub struct LeadStore {
    db: TenantDb,
    tenant: Tenant,
}

/// What the capture statements return: [`CapturedRow`]'s columns.
macro_rules! captured_columns {
    () => {
        "id, sync_status, next_sync_at, revision, email, name, phone, tags, synced_tags,
        systeme_contact_id, sync_attempts"
    };
}

/// The row a capture statement returns: the lead as stored now.
struct CapturedRow {
    sync_status: SyncStatus,
    next_sync_at: i64,
    lead: LeadSync,
    /// Only the `INSERT` of a new lead answers it (the `UPDATE` of a known one fires no alert).
    kick_alerts: bool,
}

impl FromRow for CapturedRow {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            sync_status: row.parsed("sync_status", |s| {
                SyncStatus::parse(s).ok_or("unknown sync status")
            })?,
            next_sync_at: row.int("next_sync_at")?,
            lead: LeadSync::from_row(row)?,
            kick_alerts: row.opt_int("kick_alerts") == Some(1),
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

/// What both capture statements bind by name: the submission, the time, the client and its
/// rate limit.
fn submission_params(
    client: &str,
    limit: u32,
    lead: &LeadSubmission,
    tags: &[Tag],
) -> Result<Params> {
    Ok(Params::new()
        .set("email", lead.email.to_string())
        .set("name", lead.name.as_deref())
        .set("phone", lead.phone.as_deref())
        .set("ib_type", lead.ib_type.as_deref())
        .set("monthly_leads", lead.monthly_leads.as_deref())
        .set("volume", lead.volume.map(|v| v.as_str()))
        .set("broker_network", lead.broker_network.as_deref())
        .set("form", lead.form.as_str())
        .set("utm_source", lead.utm_source.as_deref())
        .set("utm_medium", lead.utm_medium.as_deref())
        .set("utm_campaign", lead.utm_campaign.as_deref())
        .set("page_url", lead.page_url.as_deref())
        .set("consent", lead.consent)
        .set("tags", serde_json::to_string(tags)?)
        .set("utm_term", lead.utm_term.as_deref())
        .set("utm_content", lead.utm_content.as_deref())
        .set("gclid", lead.gclid.as_deref())
        .set("fbclid", lead.fbclid.as_deref())
        .set("ttclid", lead.ttclid.as_deref())
        .set("referrer", lead.referrer.as_deref())
        .set("now", now_rfc3339()?)
        .set("client", client)
        .set("rate_limit", i64::from(limit)))
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
    /// limit a new lead is `held`, up to the tenant's held-lead budget; so is a lead without
    /// consent while the tenant syncs only leads who consented (`tenant_sync_rules`, read by
    /// the statement itself), until a post of it consents. Durable when this
    /// returns. `None` when the client's rate window is full, or a new email finds the held
    /// budget spent: nothing was written.
    ///
    /// Two statements, the common one first: an `INSERT … ON CONFLICT DO NOTHING` for a new
    /// email, and only when that stored nothing, the `UPDATE` of the existing lead. One upsert
    /// would do both, but SQLite compiles a statement's every branch and trigger on each call
    /// (each request is a new connection): the upsert's update half with its five `UPDATE`
    /// triggers cost a new lead as much again as its insert (BENCHMARKS.md).
    fn capture(
        &self,
        client: &str,
        limit: u32,
        lead: &LeadSubmission,
        tags: &[Tag],
        now: i64,
    ) -> Result<Option<Captured>> {
        let submitted = submission_params(client, limit, lead, tags)?;
        // The lease this request takes when it may push the lead now. A repost's is a second
        // longer than a new lead's, so a lead still inside the lease of the request that stored
        // it this same second is never taken for one this request leased.
        let lease = now + INLINE_LEASE_SECS;
        let repost_lease = lease + 1;
        let captured = |stored: CapturedRow, created: bool| Captured {
            created,
            kick_alerts: stored.kick_alerts,
            id: stored.lead.id.clone(),
            // A lead inside a backoff has failed at least once; one this request leased has no
            // failed attempt (a repost after the backoff starts the count again).
            sync_now: stored.sync_status == SyncStatus::Pending
                && stored.lead.attempts == 0
                && stored.next_sync_at == if created { lease } else { repost_lease },
            target: SyncTarget::new(&self.tenant, stored.lead),
        };
        if let Some(stored) = self.insert_new(&submitted, lease)? {
            return Ok(Some(captured(stored, true)));
        }
        // The email is taken (or the window is full: then this changes nothing either).
        if let Some(stored) = self.update_known(&submitted, repost_lease)? {
            return Ok(Some(captured(stored, false)));
        }
        // The lead was erased between the two statements, so the email is free again (or the
        // window is full, and this stores nothing either). Whichever statement stores the lead
        // counts the hit, so the request is counted once.
        Ok(self
            .insert_new(&submitted, lease)?
            .map(|stored| captured(stored, true)))
    }

    /// The `INSERT` of a new email, holding `lease` for an inline sync; `None` when the email
    /// is taken, the client's rate window is full, or the held budget is spent.
    fn insert_new(&self, submitted: &Params, lease: i64) -> Result<Option<CapturedRow>> {
        let limits = self.tenant.limits;
        let params = submitted
            .clone()
            .set("id", LeadId::parse(&new_id()?)?.to_string())
            .set(
                "plan_limit",
                i64::try_from(limits.leads).unwrap_or(i64::MAX),
            )
            .set(
                "held_limit",
                i64::try_from(limits.held_leads).unwrap_or(i64::MAX),
            )
            .set("lease", lease)
            .set("alert_events", r#"["lead.captured"]"#);
        self.db.query_one_named::<CapturedRow>(
            tenant_sql!(
                "INSERT INTO leads (tenant_id, id, email, name, phone, ib_type, monthly_leads,
                        volume, broker_network, form, utm_source, utm_medium, utm_campaign,
                        page_url, consent, tags, utm_term, utm_content, gclid, fbclid, ttclid,
                        referrer, sync_status, held_for_consent, next_sync_at, created_at,
                        updated_at, client, first_event)
                     SELECT ?1, :id, :email, :name, :phone, :ib_type, :monthly_leads,
                        :volume, :broker_network, :form, :utm_source, :utm_medium, :utm_campaign,
                        :page_url, :consent, :tags, :utm_term, :utm_content, :gclid, :fbclid, :ttclid,
                        :referrer,
                        CASE WHEN (SELECT lead_count FROM tenants WHERE id = ?1) >= :plan_limit THEN 'held'
                            WHEN :consent = 0 AND COALESCE((SELECT sync_requires_consent
                                FROM tenant_sync_rules WHERE tenant_id = ?1), 0) THEN 'held'
                            ELSE 'pending' END,
                        (SELECT lead_count FROM tenants WHERE id = ?1) < :plan_limit AND :consent = 0
                            AND COALESCE((SELECT sync_requires_consent FROM tenant_sync_rules
                                WHERE tenant_id = ?1), 0),
                        :lease, :now, :now, :client, json_object('form', :form, 'tags', json(:tags))
                     WHERE COALESCE((SELECT hits FROM capture_rate WHERE tenant_id = ?1 AND client = :client
                        AND window_start = (CAST(strftime('%s', :now) AS INTEGER) / 60) * 60), 0) < :rate_limit
                        AND ((SELECT lead_count FROM tenants WHERE id = ?1) < :plan_limit
                            OR COALESCE((SELECT n FROM lead_facets WHERE tenant_id = ?1 AND facet = 'sync'
                                AND value = 'held'), 0) < :held_limit)
                     ON CONFLICT DO NOTHING
                     RETURNING ",
                captured_columns!(),
                ", ",
                platform::kick_alerts_column!()
            ),
            &params,
        )
    }

    /// The `UPDATE` of the tenant's lead with that email: fields given now win, tags are
    /// merged, a synced or failed lead is queued again with `lease` unless a backoff holds it.
    /// `None` when there is no such lead or the client's rate window is full.
    fn update_known(&self, submitted: &Params, lease: i64) -> Result<Option<CapturedRow>> {
        let params = submitted
            .clone()
            .set("lease", lease)
            .set("max_tags", i64::try_from(MAX_LEAD_TAGS).unwrap_or(i64::MAX));
        self.db.query_one_named::<CapturedRow>(
            tenant_sql!(
                "UPDATE leads SET
                    name = COALESCE(:name, name),
                    phone = COALESCE(:phone, phone),
                    ib_type = COALESCE(:ib_type, ib_type),
                    monthly_leads = COALESCE(:monthly_leads, monthly_leads),
                    volume = COALESCE(:volume, volume),
                    broker_network = COALESCE(:broker_network, broker_network),
                    form = :form,
                    utm_source = COALESCE(utm_source, :utm_source),
                    utm_medium = COALESCE(utm_medium, :utm_medium),
                    utm_campaign = COALESCE(utm_campaign, :utm_campaign),
                    page_url = COALESCE(page_url, :page_url),
                    consent = MAX(consent, :consent),
                    utm_term = COALESCE(utm_term, :utm_term),
                    utm_content = COALESCE(utm_content, :utm_content),
                    gclid = COALESCE(gclid, :gclid),
                    fbclid = COALESCE(fbclid, :fbclid),
                    ttclid = COALESCE(ttclid, :ttclid),
                    referrer = COALESCE(referrer, :referrer),
                    tags = (SELECT json_group_array(value) FROM (SELECT value FROM (
                        SELECT value, 0 AS later FROM json_each(leads.tags)
                        UNION ALL
                        SELECT value, 1 FROM json_each(:tags)
                        WHERE value NOT IN (SELECT value FROM json_each(leads.tags))
                        ORDER BY later, value LIMIT CAST(:max_tags AS INTEGER)) ORDER BY value)),
                    sync_status = CASE WHEN sync_status = 'held' AND held_for_consent = 0 THEN 'held'
                        WHEN MAX(consent, :consent) = 0 AND COALESCE((SELECT sync_requires_consent
                            FROM tenant_sync_rules WHERE tenant_id = ?1), 0) THEN 'held'
                        WHEN sync_status IN ('synced', 'failed', 'held') THEN 'pending'
                        ELSE sync_status END,
                    held_for_consent = (sync_status != 'held' OR held_for_consent = 1)
                        AND MAX(consent, :consent) = 0 AND COALESCE((SELECT sync_requires_consent
                            FROM tenant_sync_rules WHERE tenant_id = ?1), 0),
                    sync_attempts = CASE WHEN sync_status = 'synced' THEN 0
                        WHEN sync_status = 'failed'
                            AND next_sync_at <= CAST(strftime('%s', :now) AS INTEGER) THEN 0
                        ELSE sync_attempts END,
                    next_sync_at = CASE WHEN sync_status = 'held' AND held_for_consent = 0 THEN next_sync_at
                        WHEN sync_status IN ('pending', 'failed')
                            AND next_sync_at > CAST(strftime('%s', :now) AS INTEGER) THEN next_sync_at
                        ELSE :lease END,
                    revision = revision + 1,
                    updated_at = :now,
                    client = :client
                 WHERE tenant_id = ?1 AND email = :email
                    AND COALESCE((SELECT hits FROM capture_rate WHERE tenant_id = ?1 AND client = :client
                        AND window_start = (CAST(strftime('%s', :now) AS INTEGER) / 60) * 60), 0) < :rate_limit
                 RETURNING ",
                captured_columns!()
            ),
            &params,
        )
    }

    /// The hot path: stores the lead if the client is within its rate limit, counting the hit
    /// in the same statement (the limit check is part of the `INSERT` or `UPDATE`; triggers
    /// count). When nothing was stored, the refused hit is counted too and the outcome says
    /// why.
    pub fn capture_within_limit(
        &self,
        client: &str,
        limit: u32,
        lead: &LeadSubmission,
        tags: &[Tag],
        now: i64,
    ) -> Result<CaptureOutcome> {
        let stored = |c: Captured| CaptureOutcome::Stored(Box::new(c));
        if let Some(captured) = self.capture(client, limit, lead, tags, now)? {
            return Ok(stored(captured));
        }
        if let Some(wait) = self.rate_limit(client, limit, now)? {
            return Ok(CaptureOutcome::RateLimited {
                retry_after_secs: wait,
            });
        }
        if self.held_budget_spent()? {
            return Ok(CaptureOutcome::QuotaFull);
        }
        // The window turned over between the two statements: try once more.
        Ok(match self.capture(client, limit, lead, tags, now)? {
            Some(captured) => stored(captured),
            None => CaptureOutcome::RateLimited {
                retry_after_secs: 1,
            },
        })
    }

    /// Whether the tenant is over its lead quota and holds as many leads as its held budget.
    fn held_budget_spent(&self) -> Result<bool> {
        let limits = self.tenant.limits;
        let spent = self.db.execute(
            tenant_sql!(
                "SELECT 1 FROM tenants WHERE id = ?1 AND lead_count >= ?2
                    AND COALESCE((SELECT n FROM lead_facets WHERE tenant_id = ?1 AND facet = 'sync'
                        AND value = 'held'), 0) >= ?3"
            ),
            &[
                Value::Integer(i64::try_from(limits.leads).unwrap_or(i64::MAX)),
                Value::Integer(i64::try_from(limits.held_leads).unwrap_or(i64::MAX)),
            ],
        )?;
        Ok(!spent.rows.is_empty())
    }

    /// Pushes a lead just captured to Systeme.io on this store's connection and records the
    /// outcome on the lead. A failure leaves the lead pending for the batch.
    pub fn sync(&self, syncer: &mut Syncer, target: &SyncTarget, now: i64) -> Result<Attempt> {
        syncer.sync(&self.db, target, now)
    }

    /// The tenant's spam rules (`tenant_spam_rules`; no row: the defaults, no captcha and no
    /// minimum fill time). One read, before the lead write.
    pub fn spam_rules(&self) -> Result<SpamRules> {
        platform::spam_rules::read(&self.db)
    }

    /// Counts a honeypot hit (or a post the tenant's spam rules refuse quietly) in today's
    /// rollup; nothing else is stored.
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
    /// is the one the triggers apply when a lead write counts its hit (`leads_inserted` for a new
    /// lead, `capture_rate_on_update` for a known one; schema/default/triggers/).
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

    /// Claims `key` for this request (`claim` is the request's own token, the same on every
    /// retry of its unit of work) before any work, in one statement, so two concurrent first
    /// requests on any replicas cannot both run: `Ok(None)` when this request owns the key,
    /// `Ok(Some(answer))` to replay a finished first answer, `Err` with a `409` while another
    /// request still works on it, or a `422` when the key was used for a different request.
    /// An unanswered claim older than [`CLAIM_SECS`] is taken over.
    pub fn claim(
        &self,
        key: &str,
        request_hash: &str,
        claim: &str,
        now: i64,
    ) -> Result<Option<StoredAnswer>, ApiError> {
        let stale = time::OffsetDateTime::from_unix_timestamp(now - CLAIM_SECS)
            .map_err(|e| anyhow!("clock out of range: {e}"))?;
        let owned = self.db.execute(
            tenant_sql!(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, status, body, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant_id, key) DO UPDATE SET
                    request_hash = excluded.request_hash, body = excluded.body,
                    created_at = excluded.created_at
                 WHERE idempotency_keys.status = ?4
                   AND (idempotency_keys.body = excluded.body OR idempotency_keys.created_at < ?7)
                 RETURNING key"
            ),
            &[
                Value::Text(key.to_string()),
                Value::Text(request_hash.to_string()),
                Value::Integer(CLAIMED),
                Value::Text(claim.to_string()),
                Value::Text(now_rfc3339()?),
                Value::Text(platform::clock::timestamp(stale)),
            ],
        )?;
        if !owned.rows.is_empty() {
            return Ok(None);
        }
        let found = self.db.query_one::<StoredKey>(
            tenant_sql!(
                "SELECT request_hash, status, body FROM idempotency_keys WHERE tenant_id = ?1 AND key = ?2"
            ),
            &[Value::Text(key.to_string())],
        )?;
        let in_progress = || ApiError::Conflict {
            code: "idempotency_key_in_progress",
            detail: "a request with this Idempotency-Key is still being processed; retry shortly"
                .into(),
        };
        // Gone between the two statements: its claimant failed and let it go.
        let Some(found) = found else {
            return Err(in_progress());
        };
        if found.request_hash != request_hash {
            return Err(ApiError::Unprocessable {
                code: "idempotency_key_reused",
                detail: "this Idempotency-Key was used for a different request".into(),
            });
        }
        if i64::from(found.answer.status) == CLAIMED {
            return Err(in_progress());
        }
        Ok(Some(found.answer))
    }

    /// Gives up this request's claim on `key` after it failed, so a retry can run at once.
    pub fn release(&self, key: &str, claim: &str) -> Result<()> {
        self.db.execute(
            tenant_sql!(
                "DELETE FROM idempotency_keys WHERE tenant_id = ?1 AND key = ?2 AND status = ?3 AND body = ?4"
            ),
            &[
                Value::Text(key.to_string()),
                Value::Integer(CLAIMED),
                Value::Text(claim.to_string()),
            ],
        )?;
        Ok(())
    }

    /// Replaces this request's claim on `key` with its answer, for replays.
    pub fn remember(&self, key: &str, claim: &str, answer: &StoredAnswer) -> Result<()> {
        self.db.execute(
            tenant_sql!(
                "UPDATE idempotency_keys SET status = ?3, body = ?4
                 WHERE tenant_id = ?1 AND key = ?2 AND status = ?5 AND body = ?6"
            ),
            &[
                Value::Text(key.to_string()),
                Value::Integer(i64::from(answer.status)),
                Value::Text(answer.body.clone()),
                Value::Integer(CLAIMED),
                Value::Text(claim.to_string()),
            ],
        )?;
        Ok(())
    }
}
