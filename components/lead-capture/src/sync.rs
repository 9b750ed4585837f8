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
//!
//! Reading Systeme.io's answers (its `422` text is translated, so only field paths are read):
//! - a `422` on contact create is re-checked by email: found means a concurrent sync made it;
//!   otherwise it is permanent and the lead is `failed` at once, with the violations as its
//!   reason (the operator fixes the cause, e.g. creates a custom field, and retries);
//! - a `422` on `tagId` when assigning means the tag was deleted: its cached id is forgotten,
//!   the tag is found or created again, and the assignment retried once; any other `422` is
//!   checked against the contact's tags. A lead is `synced` only when the contact has them all.
//!
//! Tag creation is serialised per tag across concurrent syncs through a claim row
//! (`systeme_tag_claims`): only the claimant creates; the others wait for
//! the id it records, so two syncs make one tag.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Result, anyhow};
use domain::id::LeadId;
use domain::lead::{
    MAX_SYNC_ATTEMPTS, SyncStatus, after_failed_attempt, is_builtin_tag, split_name,
    sync_backoff_secs,
};
use domain::tags::Tag;
use domain::tenant::{Limits, Plan, TagPrefix, TenantId};
use platform::ApiError;
use platform::auth::AdminContext;
use platform::clock::now_unix;
use platform::db::{Db, FromRow, Row};
use platform::outbound::pause;
use platform::scope::TenantDb;
use platform::tenant::{Tenant, limits_of};
use platform::tenant_sql;
use serde::Serialize;
use spin_sdk::sqlite::Value;
use systeme::{NewContact, SystemeClient, SystemeError, Violations};

/// Why pushing a lead stopped.
#[derive(Debug, thiserror::Error)]
enum PushError {
    #[error(transparent)]
    Systeme(#[from] SystemeError),
    /// Permanent: retrying the same contact would be refused the same way.
    #[error("Systeme.io refused the contact: {0}")]
    ContactRefused(Violations),
    #[error("Systeme.io did not assign tag {tag}: {violations}")]
    TagNotAssigned { tag: String, violations: Violations },
    #[error("tag {0} is being created by another sync")]
    TagBusy(String),
    #[error("recording a tag claim: {0:#}")]
    Storage(anyhow::Error),
}

impl PushError {
    fn is_permanent(&self) -> bool {
        matches!(self, Self::ContactRefused(_))
    }

    fn retry_after(&self) -> Option<i64> {
        match self {
            Self::Systeme(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// How long a sync holds a tag's claim while it creates the tag (one call, 6 s at most).
const TAG_CLAIM_SECS: i64 = 15;
/// How long a sync waits for another's claim before leaving the lead pending.
const TAG_WAIT: Duration = Duration::from_secs(6);
const TAG_POLL: Duration = Duration::from_millis(200);

/// A tag's claim row, read by column name: `tag_id` (recorded once the tag was made).
struct TagClaim {
    tag_id: Option<i64>,
}

impl FromRow for TagClaim {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            tag_id: row.opt_int("tag_id"),
        })
    }
}

/// What a sync needs of one lead, read by column name: `id, revision, email, name, phone,
/// tags, synced_tags, systeme_contact_id, sync_attempts`.
#[derive(Debug, Clone)]
pub struct LeadSync {
    pub id: LeadId,
    revision: i64,
    email: String,
    name: Option<String>,
    phone: Option<String>,
    tags: Vec<Tag>,
    /// The tags the last successful sync gave the contact: only the others are assigned.
    synced_tags: Vec<Tag>,
    contact_id: Option<i64>,
    pub(crate) attempts: u32,
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
            synced_tags: row.json("synced_tags")?,
            contact_id: row.opt_int("systeme_contact_id"),
            attempts: u32::try_from(row.int("sync_attempts")?).unwrap_or(MAX_SYNC_ATTEMPTS),
        })
    }
}

/// A lead to push, with the tenant it belongs to and that tenant's budgets.
#[derive(Debug, Clone)]
pub struct SyncTarget {
    tenant_id: TenantId,
    tag_prefix: TagPrefix,
    limits: Limits,
    lead: LeadSync,
}

impl SyncTarget {
    pub fn new(tenant: &Tenant, lead: LeadSync) -> Self {
        Self {
            tenant_id: tenant.id.clone(),
            tag_prefix: tenant.tag_prefix.clone(),
            limits: tenant.limits,
            lead,
        }
    }
}

/// A due lead as the batch reads it: the lead and its tenant's id and prefix.
struct DueLead {
    tenant_id: TenantId,
    target: SyncTarget,
    /// `next_sync_at` as read: the claim succeeds only if nobody changed it since.
    next_sync_at: i64,
}

impl FromRow for DueLead {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        let tenant_id = row.parsed("tenant_id", TenantId::parse)?;
        Ok(Self {
            target: SyncTarget {
                tenant_id: tenant_id.clone(),
                tag_prefix: row.parsed("tag_prefix", TagPrefix::parse)?,
                limits: limits_of(row.parsed("plan", Plan::parse)?, row),
                lead: LeadSync::from_row(row)?,
            },
            tenant_id,
            next_sync_at: row.int("next_sync_at")?,
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
    /// Not attempted: the tenant spent this minute's Systeme.io calls; due again next minute.
    Deferred,
}

/// One attempt's result.
#[derive(Debug)]
pub struct Attempt {
    pub outcome: AttemptOutcome,
    pub rate_limited: bool,
}

/// Pushes leads to Systeme.io. Tag ids are recorded in SQLite (`systeme_tag_claims`) and
/// kept per request; no key-value store is involved, so a sync never waits on one.
pub struct Syncer {
    client: SystemeClient,
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
        let (given, kept_back) = admit_tags(db, target, now)?;
        let budget = CallBudget::new(target, now);
        let reserved = budget.estimate(target, &given, |tag| self.cached_tag(tag).is_some());
        if !budget.reserve(db, reserved)? {
            budget.defer(db, &target.lead.id)?;
            return Ok(Attempt {
                outcome: AttemptOutcome::Deferred,
                rate_limited: false,
            });
        }
        let calls_before = self.client.calls_made();
        let mut contact_id = target.lead.contact_id;
        let pushed = self.push(db, target, &given, &mut contact_id);
        budget.settle(db, reserved, self.client.calls_made() - calls_before)?;
        match pushed {
            Ok(()) => record_synced(db, target, contact_id, &given, &kept_back),
            Err(error) => record_failure(db, target, &error, contact_id, now),
        }
    }

    /// Makes sure the contact exists and has `tags` (the lead's tags its tenant's tag budget
    /// admits).
    fn push(
        &mut self,
        db: &TenantDb,
        target: &SyncTarget,
        tags: &[Tag],
        contact_id: &mut Option<i64>,
    ) -> Result<(), PushError> {
        let contact = match *contact_id {
            Some(id) => id,
            None => {
                let id = self.find_or_create_contact(target)?;
                *contact_id = Some(id);
                id
            }
        };
        // The contact already has what the last successful sync gave it (same contact): a
        // repeat post assigns only its new tags, not all of them again.
        let already: &[Tag] = if target.lead.contact_id == Some(contact) {
            &target.lead.synced_tags
        } else {
            &[]
        };
        for tag in tags.iter().filter(|t| !already.contains(t)) {
            if !tag.is_owned_by(&target.tag_prefix) {
                eprintln!(
                    "refusing to write tag {tag} for tenant {}: not its prefix",
                    target.tenant_id
                );
                continue;
            }
            self.assign(db, contact, tag)?;
        }
        Ok(())
    }

    fn find_or_create_contact(&self, target: &SyncTarget) -> Result<i64, PushError> {
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
            Ok(id) => Ok(id),
            // A duplicate email (a concurrent sync made it) or a real refusal: the message is
            // translated, so only reading the contact back tells which.
            Err(SystemeError::Invalid(violations)) => self
                .client
                .find_contact(&lead.email)?
                .ok_or(PushError::ContactRefused(violations)),
            Err(SystemeError::Rejected { status: 409, .. }) => {
                self.client.find_contact(&lead.email)?.ok_or_else(|| {
                    SystemeError::BadResponse("contact neither found nor created".into()).into()
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Makes sure the contact has `tag`: assigned now, or found on the contact.
    fn assign(&mut self, db: &TenantDb, contact: i64, tag: &Tag) -> Result<(), PushError> {
        let id = self.tag_id(db, tag)?;
        match self.client.assign_tag(contact, id) {
            Ok(()) => Ok(()),
            Err(SystemeError::Invalid(violations)) if violations.concerns("tagId") => {
                // The tag is gone (deleted in Systeme.io) or the cached id is stale: find or
                // create it again and retry once; never count it as assigned unseen.
                self.forget_tag(db, tag, id);
                let fresh = self.tag_id(db, tag)?;
                match self.client.assign_tag(contact, fresh) {
                    Ok(()) => Ok(()),
                    Err(SystemeError::Invalid(violations)) => {
                        self.confirm_assigned(contact, tag, fresh, violations)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(SystemeError::Invalid(violations)) => {
                self.confirm_assigned(contact, tag, id, violations)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// After a `422` on assignment: fine only if the contact has the tag already.
    fn confirm_assigned(
        &self,
        contact: i64,
        tag: &Tag,
        tag_id: i64,
        violations: Violations,
    ) -> Result<(), PushError> {
        let has = self
            .client
            .contact_tags(contact)?
            .iter()
            .any(|t| t.id == tag_id || t.name == tag.as_ref());
        if has {
            Ok(())
        } else {
            Err(PushError::TagNotAssigned {
                tag: tag.to_string(),
                violations,
            })
        }
    }

    /// The id this request already knows.
    fn cached_tag(&self, tag: &Tag) -> Option<i64> {
        self.tag_ids.get(tag.as_ref()).copied()
    }

    /// Keeps `id` as `tag`'s for this request and records it for every later sync (the
    /// tenant's `systeme_tag_claims` row). A failed write costs a lookup next time, nothing
    /// more.
    fn remember_tag(&mut self, db: &TenantDb, tag: &Tag, id: i64) -> i64 {
        if let Err(e) = db.execute(
            tenant_sql!(
                "INSERT INTO systeme_tag_claims (tenant_id, tag, tag_id, claimed_until)
                 VALUES (?1, ?2, ?3, 0)
                 ON CONFLICT (tenant_id, tag) DO UPDATE SET tag_id = excluded.tag_id"
            ),
            &[Value::Text(tag.to_string()), Value::Integer(id)],
        ) {
            eprintln!("recording the id of tag {tag}: {e:#}");
        }
        self.tag_ids.insert(tag.to_string(), id);
        id
    }

    /// Drops every cached copy of `stale` as the id of `tag`.
    fn forget_tag(&mut self, db: &TenantDb, tag: &Tag, stale: i64) {
        eprintln!("systeme tag {tag} (id {stale}) no longer exists; finding or creating it again");
        self.tag_ids.remove(tag.as_ref());
        if let Err(e) = db.execute(
            tenant_sql!(
                "UPDATE systeme_tag_claims SET tag_id = NULL
                 WHERE tenant_id = ?1 AND tag = ?2 AND tag_id = ?3"
            ),
            &[Value::Text(tag.to_string()), Value::Integer(stale)],
        ) {
            eprintln!("forgetting the recorded id of tag {tag}: {e:#}");
        }
    }

    /// The tag's id: known to this request, recorded by an earlier sync, found in Systeme.io,
    /// or created by exactly one sync at a time.
    fn tag_id(&mut self, db: &TenantDb, tag: &Tag) -> Result<i64, PushError> {
        if let Some(id) = self.cached_tag(tag) {
            return Ok(id);
        }
        if let Some(id) = recorded_tag(db, tag)? {
            self.tag_ids.insert(tag.to_string(), id);
            return Ok(id);
        }
        if let Some(id) = self.client.find_tag(tag.as_ref())? {
            return Ok(self.remember_tag(db, tag, id));
        }
        let mut waited = Duration::ZERO;
        loop {
            let now = now_unix();
            if let Some(claim) = claim_tag(db, tag, now)? {
                let made = match claim.tag_id {
                    // A sync that held the claim before us created it.
                    Some(id) => Ok(id),
                    None => self.create_tag(tag),
                };
                release_tag(db, tag, made.as_ref().ok().copied());
                return made.inspect(|id| {
                    self.tag_ids.insert(tag.to_string(), *id);
                });
            }
            if waited >= TAG_WAIT {
                return Err(PushError::TagBusy(tag.to_string()));
            }
            pause(TAG_POLL);
            waited += TAG_POLL;
            if let Some(id) = recorded_tag(db, tag)? {
                self.tag_ids.insert(tag.to_string(), id);
                return Ok(id);
            }
        }
    }

    fn create_tag(&self, tag: &Tag) -> Result<i64, PushError> {
        match self.client.create_tag(tag.as_ref()) {
            Ok(id) => Ok(id),
            // Refused (perhaps a duplicate name made outside this app): it may exist now.
            Err(SystemeError::Invalid(violations)) => self
                .client
                .find_tag(tag.as_ref())?
                .ok_or_else(|| PushError::TagNotAssigned {
                    tag: tag.to_string(),
                    violations,
                }),
            Err(e) => Err(e.into()),
        }
    }
}

/// Splits the lead's tags into those its tenant's tag budget admits and those it keeps back.
/// Built-in tags are always admitted; a tag the tenant created before is admitted; a new one
/// is admitted (recorded in `tenant_tags`) while the tenant has created fewer than its budget.
/// The count and the insert are one statement, so concurrent syncs cannot overshoot it.
fn admit_tags(db: &TenantDb, target: &SyncTarget, now: i64) -> Result<(Vec<Tag>, Vec<Tag>)> {
    let counted: Vec<&Tag> = target
        .lead
        .tags
        .iter()
        .filter(|t| !is_builtin_tag(t))
        .collect();
    if counted.is_empty() {
        return Ok((target.lead.tags.clone(), Vec::new()));
    }
    let known: Vec<String> = db
        .query::<TagName>(
            tenant_sql!(
                "SELECT tag FROM tenant_tags WHERE tenant_id = ?1
                    AND tag IN (SELECT value FROM json_each(?2))"
            ),
            &[Value::Text(serde_json::to_string(&counted)?)],
        )?
        .into_iter()
        .map(|t| t.0)
        .collect();
    let stamp = platform::clock::timestamp(
        time::OffsetDateTime::from_unix_timestamp(now).map_err(|e| anyhow!("clock: {e}"))?,
    );
    let budget = i64::try_from(target.limits.tags).unwrap_or(i64::MAX);
    let mut kept_back = Vec::new();
    for tag in counted
        .into_iter()
        .filter(|t| !known.iter().any(|k| k == t.as_ref()))
    {
        let admitted = db.execute(
            tenant_sql!(
                "INSERT INTO tenant_tags (tenant_id, tag, admitted_at)
                 SELECT ?1, ?2, ?3 WHERE (SELECT COUNT(*) FROM tenant_tags WHERE tenant_id = ?1) < ?4
                 ON CONFLICT (tenant_id, tag) DO UPDATE SET tag = excluded.tag
                 RETURNING tag"
            ),
            &[
                Value::Text(tag.to_string()),
                Value::Text(stamp.clone()),
                Value::Integer(budget),
            ],
        )?;
        if admitted.rows.is_empty() {
            kept_back.push(tag.clone());
        }
    }
    if !kept_back.is_empty() {
        eprintln!(
            "tenant {} is at its tag budget ({budget}); kept back from Systeme.io: {}",
            target.tenant_id,
            kept_back
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<&str>>()
                .join(", ")
        );
    }
    let given = target
        .lead
        .tags
        .iter()
        .filter(|t| !kept_back.contains(t))
        .cloned()
        .collect();
    Ok((given, kept_back))
}

/// A `tag` column.
struct TagName(String);

impl FromRow for TagName {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self(row.text("tag")?.to_string()))
    }
}

/// A tenant's Systeme.io calls in the current minute: each sync reserves what it may spend
/// before it starts and settles for what it spent, so one tenant's burst waits for the next
/// minute instead of spending the account's capacity every tenant shares.
struct CallBudget {
    window_start: i64,
    limit: i64,
}

impl CallBudget {
    fn new(target: &SyncTarget, now: i64) -> Self {
        Self {
            window_start: (now / 60) * 60,
            limit: i64::try_from(target.limits.sync_calls_per_minute).unwrap_or(i64::MAX),
        }
    }

    /// The most calls pushing `tags` can take: finding and creating the contact, and per tag
    /// one assignment plus, unless its id is cached, a search and a creation. Never more than
    /// the whole budget, so every lead can sync in some minute.
    fn estimate(&self, target: &SyncTarget, tags: &[Tag], cached: impl Fn(&Tag) -> bool) -> i64 {
        let contact = if target.lead.contact_id.is_some() {
            0
        } else {
            3
        };
        let per_tag: i64 = tags
            .iter()
            .filter(|t| !target.lead.synced_tags.contains(t))
            .map(|t| if cached(t) { 1 } else { 3 })
            .sum();
        (contact + per_tag).clamp(1, self.limit.max(1))
    }

    /// Reserves `calls` in this minute; `false` when the tenant's budget cannot hold them. A
    /// replica whose clock is behind counts in the newest minute and never resets it.
    fn reserve(&self, db: &TenantDb, calls: i64) -> Result<bool> {
        let reserved = db.execute(
            tenant_sql!(
                "INSERT INTO sync_budget (tenant_id, window_start, calls) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant_id) DO UPDATE SET
                    calls = CASE WHEN excluded.window_start > sync_budget.window_start
                                 THEN excluded.calls ELSE sync_budget.calls + excluded.calls END,
                    window_start = MAX(sync_budget.window_start, excluded.window_start)
                 WHERE excluded.window_start > sync_budget.window_start
                    OR sync_budget.calls + excluded.calls <= ?4
                 RETURNING calls"
            ),
            &[
                Value::Integer(self.window_start),
                Value::Integer(calls),
                Value::Integer(self.limit),
            ],
        )?;
        Ok(!reserved.rows.is_empty())
    }

    /// Corrects this minute's count from the reservation to the calls made.
    fn settle(&self, db: &TenantDb, reserved: i64, made: u32) -> Result<()> {
        db.execute(
            tenant_sql!(
                "UPDATE sync_budget SET calls = MAX(0, calls + ?3)
                 WHERE tenant_id = ?1 AND window_start = ?2"
            ),
            &[
                Value::Integer(self.window_start),
                Value::Integer(i64::from(made) - reserved),
            ],
        )?;
        Ok(())
    }

    /// Moves the tenant's due leads (this one included) to the next minute, so the batch
    /// spends its turn on other tenants.
    fn defer(&self, db: &TenantDb, lead: &LeadId) -> Result<()> {
        let next = self.window_start + 60;
        db.execute(
            tenant_sql!(
                "UPDATE leads SET next_sync_at = ?2
                 WHERE tenant_id = ?1 AND sync_status = 'pending' AND (next_sync_at < ?2 OR id = ?3)"
            ),
            &[Value::Integer(next), Value::Text(lead.to_string())],
        )?;
        eprintln!(
            "tenant {} spent its {} Systeme.io calls this minute; its syncs wait until {next}",
            db.tenant(),
            self.limit
        );
        Ok(())
    }
}

/// Claims `tag` for creation until `now + TAG_CLAIM_SECS`; `None` while another sync holds it.
/// The row returned carries the id a previous claimant recorded, if any.
fn claim_tag(db: &TenantDb, tag: &Tag, now: i64) -> Result<Option<TagClaim>, PushError> {
    db.query_one::<TagClaim>(
        tenant_sql!(
            "INSERT INTO systeme_tag_claims (tenant_id, tag, tag_id, claimed_until)
             VALUES (?1, ?2, NULL, ?3)
             ON CONFLICT (tenant_id, tag) DO UPDATE SET claimed_until = excluded.claimed_until
               WHERE systeme_tag_claims.claimed_until <= ?4
             RETURNING tag_id"
        ),
        &[
            Value::Text(tag.to_string()),
            Value::Integer(now + TAG_CLAIM_SECS),
            Value::Integer(now),
        ],
    )
    .map_err(PushError::Storage)
}

/// Ends our claim, recording the id we made (or leaving the row's as it was on failure).
fn release_tag(db: &TenantDb, tag: &Tag, id: Option<i64>) {
    if let Err(e) = db.execute(
        tenant_sql!(
            "UPDATE systeme_tag_claims SET claimed_until = 0, tag_id = COALESCE(?3, tag_id)
             WHERE tenant_id = ?1 AND tag = ?2"
        ),
        &[
            Value::Text(tag.to_string()),
            id.map_or(Value::Null, Value::Integer),
        ],
    ) {
        // The claim then lapses on its own after TAG_CLAIM_SECS.
        eprintln!("releasing the claim on tag {tag}: {e:#}");
    }
}

/// The id another sync recorded for `tag`, once it has.
fn recorded_tag(db: &TenantDb, tag: &Tag) -> Result<Option<i64>, PushError> {
    let row = db
        .query_one::<TagClaim>(
            tenant_sql!(
                "SELECT tag_id FROM systeme_tag_claims
                 WHERE tenant_id = ?1 AND tag = ?2"
            ),
            &[Value::Text(tag.to_string())],
        )
        .map_err(PushError::Storage)?;
    Ok(row.and_then(|r| r.tag_id))
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
    /// Not attempted: their tenant spent this minute's Systeme.io calls (fair share); due
    /// again next minute.
    pub deferred: u64,
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
        "SELECT l.id, l.tenant_id, t.tag_prefix, t.plan, t.budget_held_leads, t.budget_tags,
            t.budget_sync_calls, l.revision, l.email, l.name, l.phone, l.tags,
            l.synced_tags, l.systeme_contact_id, l.sync_attempts, l.next_sync_at
         FROM leads l JOIN tenants t ON t.id = l.tenant_id
         WHERE l.sync_status = 'pending' AND l.next_sync_at <= ?
            -- A suspended tenant's leads wait, pending, until it is active again.
            AND t.status = 'active'
         ORDER BY l.next_sync_at LIMIT CAST(? AS INTEGER)",
        &[
            Value::Integer(due_by(started)),
            Value::Integer(i64::from(limit)),
        ],
    )?;
    for DueLead {
        tenant_id,
        target,
        next_sync_at,
    } in due
    {
        let now = now_unix();
        if now - started >= BATCH_BUDGET_SECS {
            break;
        }
        // Compare-and-set on the value this batch read: a concurrent batch (even one that
        // ignores backoffs) or an inline sync that claimed the lead meanwhile changed it.
        let claimed = db.execute(
            "UPDATE leads SET next_sync_at = ? WHERE id = ? AND sync_status = 'pending'
                AND next_sync_at = ? AND next_sync_at <= ? RETURNING id",
            &[
                Value::Integer(now + BATCH_LEASE_SECS),
                Value::Text(target.lead.id.to_string()),
                Value::Integer(next_sync_at),
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
            AttemptOutcome::Deferred => report.deferred += 1,
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
        "SELECT COUNT(*) AS n FROM leads l JOIN tenants t ON t.id = l.tenant_id
         WHERE l.sync_status = 'pending' AND l.next_sync_at <= ? AND t.status = 'active'",
        &[Value::Integer(now)],
    )?;
    Ok(counted.first().map_or(0, |c| c.0))
}

fn housekeeping(db: &Db, now: i64) -> Result<()> {
    let day_ago = platform::clock::timestamp(
        time::OffsetDateTime::from_unix_timestamp(now - 86_400)
            .map_err(|e| anyhow!("clock out of range: {e}"))?,
    );
    // Applied callbacks (message ids and content digests) are kept for good: a replay is
    // recognised at any age.
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

/// Marks the lead synced, unless it changed while it was pushed (then it stays pending for the
/// next pass), with the contact id and the tags given and kept back.
fn record_synced(
    db: &TenantDb,
    target: &SyncTarget,
    contact_id: Option<i64>,
    given: &[Tag],
    kept_back: &[Tag],
) -> Result<Attempt> {
    db.execute(
        tenant_sql!(
            "UPDATE leads SET
                sync_status = CASE WHEN revision = ?3 THEN 'synced' ELSE sync_status END,
                sync_attempts = 0, sync_error = NULL, systeme_contact_id = ?4,
                synced_tags = ?5, kept_back_tags = ?6
             WHERE tenant_id = ?1 AND id = ?2 AND sync_status = 'pending'"
        ),
        &[
            Value::Text(target.lead.id.to_string()),
            Value::Integer(target.lead.revision),
            contact_id.map_or(Value::Null, Value::Integer),
            Value::Text(serde_json::to_string(given)?),
            Value::Text(serde_json::to_string(kept_back)?),
        ],
    )?;
    Ok(Attempt {
        outcome: AttemptOutcome::Synced,
        rate_limited: false,
    })
}

/// Records a failed push: a permanent error fails the lead (a repost queues it again once its
/// backoff is over), any other schedules the next attempt.
fn record_failure(
    db: &TenantDb,
    target: &SyncTarget,
    error: &PushError,
    contact_id: Option<i64>,
    now: i64,
) -> Result<Attempt> {
    let attempts = target.lead.attempts.saturating_add(1);
    let (status, next) = if error.is_permanent() {
        (SyncStatus::Failed, now + sync_backoff_secs(attempts))
    } else {
        after_failed_attempt(attempts, now, error.retry_after())
    };
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
        rate_limited: matches!(error, PushError::Systeme(SystemeError::RateLimited { .. })),
    })
}
