//! Verified tenants: the record the gate reads, its key-value cache, and the request context
//! that hands out the tenant's storage.
//!
//! A [`TenantContext`] exists only once a token has been verified ([`crate::auth`]); it is the
//! only way a tenant's request reaches storage, and what it hands out is scoped
//! ([`TenantDb`], [`TenantKv`]). Changes to the tenant's own record (capture-key rotation,
//! settings) rewrite the cache here, so the next request sees them.
//!
//! The cache is versioned and expires. Every change to a `tenants` row raises its `version`
//! (migration 0011's trigger); the cached copy carries the version it was read at and an
//! expiry. A refresh reads the cached copy just before writing and never replaces a newer
//! version, so a slow refresh that read the row before a suspension or a key rotation cannot
//! undo it; an entry past its expiry is read from SQLite again, so a write that was lost heals
//! within [`RECORD_TTL_SECS`].

use anyhow::{Context, Result};
use domain::funnel::TagRules;
use domain::settings::{Settings, ThankYouUrl};
use domain::tenant::{BudgetOverrides, Limits, Plan, TagPrefix, TenantId, TenantStatus};
use serde::{Deserialize, Serialize};
use spin_sdk::sqlite::Value;

use crate::ApiError;
use crate::clock::now_unix;
use crate::db::{Db, FromRow, Row};
use crate::kv::{open_store, tenant_key};
use crate::scope::{TenantDb, TenantKv};
use crate::storage_error::kv_error;

/// A tenant as the gate sees it. Invariant: read back from storage and parsed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub tag_prefix: TagPrefix,
    pub plan: Plan,
    pub status: TenantStatus,
    pub capture_gen: i64,
    /// Origins, thank-you URL and tag-rule overrides; cached with the tenant so capture and
    /// callbacks read them at no extra storage call.
    pub settings: Settings,
    /// The plan's limits with the operator's budget overrides applied.
    pub limits: Limits,
}

/// How long a cached tenant record is trusted before the gate reads SQLite again. Every change
/// rewrites the entry at once, so this only bounds how long a lost or reordered write can
/// last; it costs one SQLite read per active tenant per minute.
pub const RECORD_TTL_SECS: i64 = 60;

/// The key-value cache form of [`Tenant`], under `t:<id>:record`.
#[derive(Serialize, Deserialize)]
struct CachedTenant {
    id: String,
    tag_prefix: String,
    plan: Plan,
    status: TenantStatus,
    capture_gen: i64,
    #[serde(default)]
    settings: Settings,
    /// Required: an entry written without it does not parse, so it is read from SQLite again.
    limits: Limits,
    /// The row's `version` when it was read; 0 in entries written before versions existed.
    #[serde(default)]
    version: i64,
    /// Unix seconds after which the entry is read from SQLite again; 0 (long past) in entries
    /// written before expiry existed.
    #[serde(default)]
    expires_at: i64,
}

/// Which copy of a tenant row a cache entry holds, and until when it is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CacheStamp {
    version: i64,
    expires_at: i64,
}

impl CacheStamp {
    fn expired(self, now: i64) -> bool {
        self.expires_at <= now
    }
}

/// Whether a refresh that read version `fresh` of the row may write it over the entry
/// `cached` (`None`: no entry, or one that does not parse). Never over a newer version, even an
/// expired one: only a slow refresh can hold an older version than the cache, and the row
/// itself is never older than what was cached from it.
fn may_replace(cached: Option<CacheStamp>, fresh: i64, now: i64) -> bool {
    match cached {
        None => true,
        Some(c) => c.version < fresh || (c.version == fresh && c.expired(now)),
    }
}

impl Tenant {
    fn from_cache(bytes: &[u8]) -> Result<(Self, CacheStamp)> {
        let c: CachedTenant = serde_json::from_slice(bytes).context("parsing cached tenant")?;
        let stamp = CacheStamp {
            version: c.version,
            expires_at: c.expires_at,
        };
        Ok((
            Self {
                id: TenantId::parse(&c.id)?,
                tag_prefix: TagPrefix::parse(&c.tag_prefix)?,
                plan: c.plan,
                status: c.status,
                capture_gen: c.capture_gen,
                settings: c.settings,
                limits: c.limits,
            },
            stamp,
        ))
    }

    fn to_cache(&self, stamp: CacheStamp) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(&CachedTenant {
            id: self.id.to_string(),
            tag_prefix: self.tag_prefix.to_string(),
            plan: self.plan,
            status: self.status,
            capture_gen: self.capture_gen,
            settings: self.settings.clone(),
            limits: self.limits,
            version: stamp.version,
            expires_at: stamp.expires_at,
        })?)
    }

    /// The tenant's current capture token (publishable; no expiry; revoked by rotation).
    pub fn capture_token(&self) -> Result<String, ApiError> {
        capture_token(&self.id, self.capture_gen)
    }
}

/// The `tenants` columns a [`Tenant`] is read from.
pub const TENANT_COLUMNS: &str = "id, tag_prefix, plan, status, capture_gen, allowed_origins, thank_you_url, tag_rules, funnel_ids, budget_held_leads, budget_tags, budget_sync_calls";

/// Reads the [`TENANT_COLUMNS`] of a `tenants` row.
impl FromRow for Tenant {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        let plan = row.parsed("plan", Plan::parse)?;
        Ok(Self {
            id: row.parsed("id", TenantId::parse)?,
            tag_prefix: row.parsed("tag_prefix", TagPrefix::parse)?,
            limits: limits_of(plan, row),
            plan,
            status: row.parsed("status", TenantStatus::parse)?,
            capture_gen: row.int("capture_gen")?,
            settings: Settings {
                allowed_origins: row.parsed("allowed_origins", Settings::origins_from_json)?,
                thank_you_url: row
                    .opt_text("thank_you_url")
                    .as_deref()
                    .map(ThankYouUrl::parse)
                    .transpose()?,
                tag_rules: match row.opt_text("tag_rules") {
                    Some(json) => serde_json::from_str(&json).context("tenants row: tag_rules")?,
                    None => TagRules::default(),
                },
                funnel_ids: row.json("funnel_ids")?,
            },
        })
    }
}

/// A tenant's limits: its `plan`'s, with the overrides in the row's `budget_held_leads`,
/// `budget_tags` and `budget_sync_calls` columns (NULL: the plan's default).
pub fn limits_of(plan: Plan, row: &Row<'_>) -> Limits {
    let budget = |column: &str| row.opt_int(column).and_then(|n| u64::try_from(n).ok());
    plan.limits().with(BudgetOverrides {
        held_leads: budget("budget_held_leads"),
        tags: budget("budget_tags"),
        sync_calls_per_minute: budget("budget_sync_calls"),
    })
}

/// The capture token of generation `generation` for tenant `id`.
pub fn capture_token(id: &TenantId, generation: i64) -> Result<String, ApiError> {
    let secret = crate::config::token_secret()?;
    Ok(domain::token::mint(
        &secret,
        &domain::token::Claims {
            sub: Some(id.to_string()),
            scope: domain::token::Scope::Capture,
            exp: None,
            generation: Some(generation),
        },
    ))
}

const RECORD: &str = "record";

/// A `tenants` row with its `version`.
struct VersionedTenant {
    tenant: Tenant,
    version: i64,
}

impl FromRow for VersionedTenant {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            tenant: Tenant::from_row(row)?,
            version: row.int("version")?,
        })
    }
}

/// Loads a tenant: one key-value read on the hot path; on a miss, an expired entry or one that
/// does not parse, the database (`db`, or a connection opened now) is the source of truth and
/// the cache is filled again.
pub fn load_tenant(id: &TenantId, db: Option<&Db>) -> Result<Option<Tenant>> {
    let store = open_store()?;
    let key = tenant_key(id, RECORD);
    if let Some(bytes) = store
        .get(&key)
        .map_err(|e| kv_error(&e))
        .with_context(|| format!("reading {key}"))?
        && let Ok((tenant, stamp)) = Tenant::from_cache(&bytes)
        && !stamp.expired(now_unix())
    {
        return Ok(Some(tenant));
    }
    match db {
        Some(db) => refresh_tenant(db, id),
        None => refresh_tenant(&Db::open()?, id),
    }
}

/// Reads a tenant from the database (the source of truth) and rewrites its cache entry unless
/// the entry holds a newer version; called on a cache miss or expiry and after every committed
/// change to a tenant. Returns the row as read.
pub fn refresh_tenant(db: &Db, id: &TenantId) -> Result<Option<Tenant>> {
    let Some(VersionedTenant { tenant, version }) = db
        .query::<VersionedTenant>(
            &format!("SELECT {TENANT_COLUMNS}, version FROM tenants WHERE id = ?"),
            &[Value::Text(id.to_string())],
        )?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let key = tenant_key(&tenant.id, RECORD);
    let store = open_store()?;
    // Spin's key-value API (2.0) has no compare-and-swap, so this read-compare-write is not
    // atomic: two refreshes that interleave between the read and the write can still leave
    // the older version. That window is a few milliseconds, and the expiry bounds what it
    // leaves behind to RECORD_TTL_SECS.
    let cached = store
        .get(&key)
        .map_err(|e| kv_error(&e))
        .with_context(|| format!("reading {key}"))?
        .and_then(|bytes| Tenant::from_cache(&bytes).ok())
        .map(|(_, stamp)| stamp);
    let now = now_unix();
    if may_replace(cached, version, now) {
        let stamp = CacheStamp {
            version,
            expires_at: now.saturating_add(RECORD_TTL_SECS),
        };
        store
            .set(&key, &tenant.to_cache(stamp)?)
            .map_err(|e| kv_error(&e))
            .with_context(|| format!("writing {key}"))?;
    }
    Ok(Some(tenant))
}

/// A request's verified tenant. Only [`crate::auth::authenticate`] builds one, and only it
/// hands out the tenant's storage types.
#[derive(Debug)]
pub struct TenantContext {
    tenant: Tenant,
}

impl TenantContext {
    pub(crate) fn new(tenant: Tenant) -> Self {
        Self { tenant }
    }

    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The database, scoped to this tenant.
    pub fn db(&self) -> Result<TenantDb, ApiError> {
        Ok(TenantDb::open(self.tenant.id.clone())?)
    }

    /// The key-value store, scoped to this tenant.
    pub fn kv(&self) -> Result<TenantKv, ApiError> {
        Ok(TenantKv::open(self.tenant.id.clone())?)
    }

    /// Runs one `UPDATE tenants … WHERE id = ?` (the tenant id is bound last), then reads the
    /// row back and rewrites the gate's cache, so the next request sees the change.
    fn update_own_row(&mut self, sql: &str, mut params: Vec<Value>) -> Result<(), ApiError> {
        let db = Db::open()?;
        params.push(Value::Text(self.tenant.id.to_string()));
        db.execute(sql, &params)?;
        self.tenant = refresh_tenant(&db, &self.tenant.id)?
            .ok_or_else(|| anyhow::anyhow!("updating tenant {}: row vanished", self.tenant.id))?;
        Ok(())
    }

    /// Rotates the capture key: the generation goes up by one, so every older capture token
    /// stops working on the next request. Returns the new capture token.
    pub fn rotate_capture_key(&mut self) -> Result<String, ApiError> {
        self.update_own_row(
            "UPDATE tenants SET capture_gen = capture_gen + 1, updated_at = ? WHERE id = ?",
            vec![Value::Text(crate::clock::now_rfc3339()?)],
        )?;
        self.tenant.capture_token()
    }

    /// Replaces the tenant's origins, thank-you URL and tag rules; the next request sees them.
    /// Its funnel ids are not written: only the operator assigns funnels.
    pub fn update_settings(&mut self, settings: &Settings) -> Result<(), ApiError> {
        let origins = serde_json::to_string(&settings.allowed_origins)
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        let rules = serde_json::to_string(&settings.tag_rules)
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        self.update_own_row(
            "UPDATE tenants SET allowed_origins = ?, thank_you_url = ?, tag_rules = ?,
                updated_at = ? WHERE id = ?",
            vec![
                Value::Text(origins),
                settings
                    .thank_you_url
                    .as_ref()
                    .map_or(Value::Null, |u| Value::Text(u.as_ref().to_string())),
                Value::Text(rules),
                Value::Text(crate::clock::now_rfc3339()?),
            ],
        )
    }

    /// The tenant's name as given at signup. The gate's cache does not carry it, so this reads
    /// the tenant's own row.
    pub fn name(&self) -> Result<String, ApiError> {
        struct Name(String);
        impl FromRow for Name {
            fn from_row(row: &Row<'_>) -> Result<Self> {
                Ok(Self(row.text("name")?.to_string()))
            }
        }
        let id = &self.tenant.id;
        Db::open()?
            .query::<Name>(
                "SELECT name FROM tenants WHERE id = ?",
                &[Value::Text(id.to_string())],
            )?
            .into_iter()
            .next()
            .map(|Name(name)| name)
            .ok_or_else(|| anyhow::anyhow!("reading tenant {id}: row vanished").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn stamp(version: i64, expires_at: i64) -> Option<CacheStamp> {
        Some(CacheStamp {
            version,
            expires_at,
        })
    }

    #[test]
    fn a_refresh_that_read_an_older_row_never_overwrites_a_newer_entry() {
        // A slow refresh read version 3 (active, old capture key); a suspension or rotation
        // has since written version 4. Expired or not, version 4 stays.
        assert!(!may_replace(stamp(4, NOW + 60), 3, NOW));
        assert!(!may_replace(stamp(4, NOW - 1), 3, NOW));
    }

    #[test]
    fn a_newer_row_always_replaces_the_entry() {
        assert!(may_replace(stamp(3, NOW + 60), 4, NOW));
        assert!(
            may_replace(None, 1, NOW),
            "no entry, or one that does not parse"
        );
    }

    #[test]
    fn the_same_version_is_rewritten_only_once_it_has_expired() {
        assert!(!may_replace(stamp(4, NOW + 1), 4, NOW));
        assert!(may_replace(stamp(4, NOW), 4, NOW));
    }

    fn tenant() -> Tenant {
        Tenant {
            id: TenantId::parse("0f8fad5b-d9cb-469f-a165-70867728950e").unwrap(),
            tag_prefix: TagPrefix::parse("ib-a7x3k2m1-").unwrap(),
            plan: Plan::Starter,
            status: TenantStatus::Suspended,
            capture_gen: 3,
            settings: Settings::default(),
            limits: Plan::Starter.limits(),
        }
    }

    #[test]
    fn a_cache_entry_carries_its_version_and_expiry() {
        let stamp = CacheStamp {
            version: 7,
            expires_at: NOW + RECORD_TTL_SECS,
        };
        let (back, read) = Tenant::from_cache(&tenant().to_cache(stamp).unwrap()).unwrap();
        assert_eq!((back, read), (tenant(), stamp));
        assert!(!read.expired(NOW));
        assert!(read.expired(NOW + RECORD_TTL_SECS));
    }

    #[test]
    fn an_entry_written_before_versions_reads_as_expired_and_oldest() {
        let old = br#"{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","tag_prefix":"ib-a7x3k2m1-",
            "plan":"starter","status":"active","capture_gen":1}"#;
        let (_, stamp) = Tenant::from_cache(old).unwrap();
        assert!(stamp.expired(NOW));
        assert!(may_replace(Some(stamp), 1, NOW));
    }
}
