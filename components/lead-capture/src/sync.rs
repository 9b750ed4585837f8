//! Durable Systeme.io sync: push a stored lead (contact, tags) and record what happened.
//!
//! A lead is stored `pending` before any 2xx; capture then syncs it inline. Any failure leaves
//! it `pending` with an attempt count and an exponential backoff (domain rules), and
//! `POST /v1/admin/sync` ([`run_due`]) retries due leads in bounded batches. After
//! [`domain::lead::MAX_SYNC_ATTEMPTS`] failures a lead is `failed`, still stored and visible,
//! and the operator can queue it again.
//!
//! Isolation: a lead is pushed with its own tenant's tags only; a tag that does not carry the
//! owner's prefix is never sent (the domain never builds one; this is the last check). Results
//! are written through [`TenantDb`] for the lead's tenant.

use std::collections::HashMap;

use anyhow::{Result, anyhow};
use domain::id::LeadId;
use domain::lead::{MAX_SYNC_ATTEMPTS, SyncStatus, after_failed_attempt, split_name};
use domain::tags::Tag;
use domain::tenant::{TagPrefix, TenantId};
use platform::ApiError;
use platform::auth::AdminContext;
use platform::clock::now_unix;
use platform::db::{Db, FromRow, Row};
use platform::kv::{GlobalKey, GlobalKv};
use platform::scope::TenantDb;
use platform::tenant::Tenant;
use platform::tenant_sql;
use serde::Serialize;
use spin_sdk::sqlite::Value;
use systeme::{NewContact, SystemeClient, SystemeError};

/// What a sync needs of one lead, read by column name: `id, revision, email, name, phone,
/// tags, systeme_contact_id, sync_attempts`.
#[derive(Debug, Clone)]
pub struct LeadSync {
    pub id: LeadId,
    revision: i64,
    email: String,
    name: Option<String>,
    phone: Option<String>,
    tags: Vec<Tag>,
    contact_id: Option<i64>,
    attempts: u32,
}

impl FromRow for LeadSync {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            id: row.parsed("id", LeadId::parse)?,
            revision: row.int("revision")?,
            email: row.text("email")?.to_string(),
            name: row.opt_text("name"),
            phone: row.opt_text("phone"),
            tags: row.json("tags")?,
            contact_id: row.opt_int("systeme_contact_id"),
            attempts: u32::try_from(row.int("sync_attempts")?).unwrap_or(MAX_SYNC_ATTEMPTS),
        })
    }
}

/// A lead to push, with the tenant it belongs to.
#[derive(Debug, Clone)]
pub struct SyncTarget {
    tenant_id: TenantId,
    tag_prefix: TagPrefix,
    lead: LeadSync,
}

impl SyncTarget {
    pub fn new(tenant: &Tenant, lead: LeadSync) -> Self {
        Self {
            tenant_id: tenant.id.clone(),
            tag_prefix: tenant.tag_prefix.clone(),
            lead,
        }
    }
}

/// A due lead as the batch reads it: the lead and its tenant's id and prefix.
struct DueLead {
    tenant_id: TenantId,
    target: SyncTarget,
}

impl FromRow for DueLead {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        let tenant_id = row.parsed("tenant_id", TenantId::parse)?;
        Ok(Self {
            target: SyncTarget {
                tenant_id: tenant_id.clone(),
                tag_prefix: row.parsed("tag_prefix", TagPrefix::parse)?,
                lead: LeadSync::from_row(row)?,
            },
            tenant_id,
        })
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Synced,
    /// Still pending; due again after the backoff.
    Retrying,
    /// Gave up after the last attempt.
    Failed,
}

/// One attempt's result.
#[derive(Debug)]
pub struct Attempt {
    pub outcome: AttemptOutcome,
    pub rate_limited: bool,
}

/// Pushes leads to Systeme.io, caching tag ids (global key-value entries and per request).
pub struct Syncer {
    client: SystemeClient,
    kv: GlobalKv,
    tag_ids: HashMap<String, i64>,
}

impl Syncer {
    /// `None` when `systeme_api_key` is empty: syncing is off, leads stay pending.
    pub fn from_variables() -> Result<Option<Self>, ApiError> {
        let Some(client) = SystemeClient::from_variables()? else {
            return Ok(None);
        };
        Ok(Some(Self {
            client,
            kv: GlobalKv::open()?,
            tag_ids: HashMap::new(),
        }))
    }

    /// Pushes one lead and records the result on its row, through `db` (the caller's open
    /// connection, scoped to the lead's tenant).
    pub fn sync(&mut self, db: &TenantDb, target: &SyncTarget, now: i64) -> Result<Attempt> {
        anyhow::ensure!(
            db.tenant() == &target.tenant_id,
            "syncing a lead of tenant {} through another tenant's view",
            target.tenant_id
        );
        let mut contact_id = target.lead.contact_id;
        let pushed = self.push(target, &mut contact_id);
        match pushed {
            Ok(()) => {
                db.execute(
                    tenant_sql!(
                        "UPDATE leads SET
                            sync_status = CASE WHEN revision = ?3 THEN 'synced' ELSE sync_status END,
                            sync_attempts = 0, sync_error = NULL, systeme_contact_id = ?4
                         WHERE tenant_id = ?1 AND id = ?2 AND sync_status = 'pending'"
                    ),
                    &[
                        Value::Text(target.lead.id.to_string()),
                        Value::Integer(target.lead.revision),
                        contact_id.map_or(Value::Null, Value::Integer),
                    ],
                )?;
                Ok(Attempt {
                    outcome: AttemptOutcome::Synced,
                    rate_limited: false,
                })
            }
            Err(error) => {
                let attempts = target.lead.attempts.saturating_add(1);
                let (status, next) = after_failed_attempt(attempts, now, error.retry_after());
                eprintln!(
                    "systeme sync of lead {} (tenant {}) failed, attempt {attempts}: {error}",
                    target.lead.id, target.tenant_id
                );
                db.execute(
                    tenant_sql!(
                        "UPDATE leads SET sync_status = ?3, sync_attempts = ?4, next_sync_at = ?5,
                            sync_error = ?6, systeme_contact_id = COALESCE(?7, systeme_contact_id)
                         WHERE tenant_id = ?1 AND id = ?2 AND sync_status = 'pending'"
                    ),
                    &[
                        Value::Text(target.lead.id.to_string()),
                        Value::Text(status.as_str().into()),
                        Value::Integer(i64::from(attempts)),
                        Value::Integer(next),
                        Value::Text(error.to_string().chars().take(500).collect()),
                        contact_id.map_or(Value::Null, Value::Integer),
                    ],
                )?;
                Ok(Attempt {
                    outcome: if status == SyncStatus::Failed {
                        AttemptOutcome::Failed
                    } else {
                        AttemptOutcome::Retrying
                    },
                    rate_limited: matches!(error, SystemeError::RateLimited { .. }),
                })
            }
        }
    }

    fn push(
        &mut self,
        target: &SyncTarget,
        contact_id: &mut Option<i64>,
    ) -> Result<(), SystemeError> {
        let contact = match *contact_id {
            Some(id) => id,
            None => {
                let id = self.find_or_create_contact(target)?;
                *contact_id = Some(id);
                id
            }
        };
        for tag in &target.lead.tags {
            if !tag.is_owned_by(&target.tag_prefix) {
                eprintln!(
                    "refusing to write tag {tag} for tenant {}: not its prefix",
                    target.tenant_id
                );
                continue;
            }
            let tag_id = self.tag_id(tag)?;
            self.client.assign_tag(contact, tag_id)?;
        }
        Ok(())
    }

    fn find_or_create_contact(&self, target: &SyncTarget) -> Result<i64, SystemeError> {
        let lead = &target.lead;
        if let Some(id) = self.client.find_contact(&lead.email)? {
            return Ok(id);
        }
        let (first_name, surname) = split_name(lead.name.as_deref());
        let created = self.client.create_contact(&NewContact {
            email: &lead.email,
            first_name,
            surname,
            phone_number: lead.phone.as_deref(),
            tenant_id: target.tenant_id.as_ref(),
            tag_prefix: target.tag_prefix.as_ref(),
        });
        match created {
            // Created meanwhile by a concurrent sync (Systeme.io refuses a duplicate email).
            Err(SystemeError::Rejected {
                status: 409 | 422, ..
            }) => self.client.find_contact(&lead.email)?.ok_or_else(|| {
                SystemeError::BadResponse("contact neither found nor created".into())
            }),
            other => other,
        }
    }

    fn tag_id(&mut self, tag: &Tag) -> Result<i64, SystemeError> {
        if let Some(id) = self.tag_ids.get(tag.as_ref()) {
            return Ok(*id);
        }
        let key = GlobalKey::SystemeTag(tag);
        let cached = self
            .kv
            .get(&key)
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<i64>().ok());
        let id = match cached {
            Some(id) => id,
            None => {
                let id = match self.client.find_tag(tag.as_ref())? {
                    Some(id) => id,
                    None => match self.client.create_tag(tag.as_ref()) {
                        Err(SystemeError::Rejected {
                            status: 409 | 422, ..
                        }) => self.client.find_tag(tag.as_ref())?.ok_or_else(|| {
                            SystemeError::BadResponse("tag neither found nor created".into())
                        })?,
                        other => other?,
                    },
                };
                // A cache write failure costs a lookup next time, nothing more.
                if let Err(e) = self.kv.set(&key, id.to_string().as_bytes()) {
                    eprintln!("caching the id of tag {tag}: {e:#}");
                }
                id
            }
        };
        self.tag_ids.insert(tag.to_string(), id);
        Ok(id)
    }
}

/// What one `POST /v1/admin/sync` did.
#[derive(Debug, Default, Serialize)]
pub struct BatchReport {
    /// False when `systeme_api_key` is empty: nothing was sent.
    pub sync_enabled: bool,
    /// Failed leads queued again (`retry_failed`).
    pub requeued: u64,
    pub attempted: u64,
    pub synced: u64,
    pub retrying: u64,
    pub failed: u64,
    /// Systeme.io answered 429; the batch stopped early.
    pub rate_limited: bool,
    /// Pending leads still due after this batch.
    pub remaining_due: i64,
}

/// Seconds a batch claims a lead for, so a concurrent batch or inline sync skips it.
const BATCH_LEASE_SECS: i64 = 120;
/// A batch starts no new lead after this many seconds.
const BATCH_BUDGET_SECS: i64 = 20;

/// What `POST /v1/admin/sync` should do.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Most leads to attempt.
    pub limit: u32,
    /// Queue failed leads again first.
    pub retry_failed: bool,
    /// Treat every pending lead as due now, ignoring backoffs (e.g. once Systeme.io is back
    /// after an outage). This also ignores the short lease of an inline sync in flight.
    pub ignore_backoff: bool,
}

/// Runs up to `limit` due syncs (oldest due first). Also drops idempotency keys older than a
/// day and stale rate-limit windows.
pub fn run_due(admin: &AdminContext, options: BatchOptions) -> Result<BatchReport, ApiError> {
    let BatchOptions {
        limit,
        retry_failed,
        ignore_backoff,
    } = options;
    // Due means `next_sync_at <= due_by`.
    let due_by = |now: i64| if ignore_backoff { i64::MAX } else { now };
    let db = admin.db()?;
    let started = now_unix();
    let mut report = BatchReport::default();
    if retry_failed {
        let requeued = db.execute(
            "UPDATE leads SET sync_status = 'pending', sync_attempts = 0, next_sync_at = 0
             WHERE sync_status = 'failed' RETURNING id",
            &[],
        )?;
        report.requeued = u64::try_from(requeued.rows.len()).unwrap_or(u64::MAX);
    }
    housekeeping(&db, started)?;
    let Some(mut syncer) = Syncer::from_variables()? else {
        report.remaining_due = remaining_due(&db, started)?;
        return Ok(report);
    };
    report.sync_enabled = true;
    let due = db.query::<DueLead>(
        "SELECT l.id, l.tenant_id, t.tag_prefix, l.revision, l.email, l.name, l.phone, l.tags,
            l.systeme_contact_id, l.sync_attempts
         FROM leads l JOIN tenants t ON t.id = l.tenant_id
         WHERE l.sync_status = 'pending' AND l.next_sync_at <= ?
         ORDER BY l.next_sync_at LIMIT ?",
        &[
            Value::Integer(due_by(started)),
            Value::Integer(i64::from(limit)),
        ],
    )?;
    for DueLead { tenant_id, target } in due {
        let now = now_unix();
        if now - started >= BATCH_BUDGET_SECS {
            break;
        }
        let claimed = db.execute(
            "UPDATE leads SET next_sync_at = ? WHERE id = ? AND sync_status = 'pending' AND next_sync_at <= ? RETURNING id",
            &[
                Value::Integer(now + BATCH_LEASE_SECS),
                Value::Text(target.lead.id.to_string()),
                Value::Integer(due_by(now)),
            ],
        )?;
        if claimed.rows.is_empty() {
            continue;
        }
        report.attempted += 1;
        let attempt = syncer.sync(&TenantDb::on(&db, tenant_id), &target, now)?;
        match attempt.outcome {
            AttemptOutcome::Synced => report.synced += 1,
            AttemptOutcome::Retrying => report.retrying += 1,
            AttemptOutcome::Failed => report.failed += 1,
        }
        if attempt.rate_limited {
            report.rate_limited = true;
            break;
        }
    }
    report.remaining_due = remaining_due(&db, now_unix())?;
    Ok(report)
}

/// A `SELECT COUNT(*) AS n`.
struct Count(i64);

impl FromRow for Count {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        row.int("n").map(Self)
    }
}

fn remaining_due(db: &Db, now: i64) -> Result<i64> {
    let counted = db.query::<Count>(
        "SELECT COUNT(*) AS n FROM leads WHERE sync_status = 'pending' AND next_sync_at <= ?",
        &[Value::Integer(now)],
    )?;
    Ok(counted.first().map_or(0, |c| c.0))
}

fn housekeeping(db: &Db, now: i64) -> Result<()> {
    let day_ago = platform::clock::timestamp(
        time::OffsetDateTime::from_unix_timestamp(now - 86_400)
            .map_err(|e| anyhow!("clock out of range: {e}"))?,
    );
    db.execute(
        "DELETE FROM idempotency_keys WHERE created_at < ?",
        &[Value::Text(day_ago)],
    )?;
    db.execute(
        "DELETE FROM capture_rate WHERE window_start < ?",
        &[Value::Integer(now - 3600)],
    )?;
    Ok(())
}
