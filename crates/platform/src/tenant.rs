//! Verified tenants: the record the gate reads, its key-value cache, and the request context
//! that hands out the tenant's storage.
//!
//! A [`TenantContext`] exists only once a token has been verified ([`crate::auth`]); it is the
//! only way a tenant's request reaches storage, and what it hands out is scoped
//! ([`TenantDb`], [`TenantKv`]). Changes to the tenant's own record (capture-key rotation,
//! settings) rewrite the cache here, so the next request sees them.

use anyhow::{Context, Result};
use domain::funnel::TagRules;
use domain::settings::{Settings, ThankYouUrl};
use domain::tenant::{Plan, TagPrefix, TenantId, TenantStatus};
use serde::{Deserialize, Serialize};
use spin_sdk::sqlite::Value;

use crate::ApiError;
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
}

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
}

impl Tenant {
    fn from_cache(bytes: &[u8]) -> Result<Self> {
        let c: CachedTenant = serde_json::from_slice(bytes).context("parsing cached tenant")?;
        Ok(Self {
            id: TenantId::parse(&c.id)?,
            tag_prefix: TagPrefix::parse(&c.tag_prefix)?,
            plan: c.plan,
            status: c.status,
            capture_gen: c.capture_gen,
            settings: c.settings,
        })
    }

    fn to_cache(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(&CachedTenant {
            id: self.id.to_string(),
            tag_prefix: self.tag_prefix.to_string(),
            plan: self.plan,
            status: self.status,
            capture_gen: self.capture_gen,
            settings: self.settings.clone(),
        })?)
    }

    /// The tenant's current capture token (publishable; no expiry; revoked by rotation).
    pub fn capture_token(&self) -> Result<String, ApiError> {
        capture_token(&self.id, self.capture_gen)
    }
}

/// Reads `SELECT id, tag_prefix, plan, status, capture_gen, allowed_origins, thank_you_url,
/// tag_rules FROM tenants`.
impl FromRow for Tenant {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            id: row.parsed("id", TenantId::parse)?,
            tag_prefix: row.parsed("tag_prefix", TagPrefix::parse)?,
            plan: row.parsed("plan", Plan::parse)?,
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
            },
        })
    }
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

/// Loads a tenant: one key-value read on the hot path; on a miss, the database (`db`, or a
/// connection opened now) is the source of truth and the cache is filled again.
pub fn load_tenant(id: &TenantId, db: Option<&Db>) -> Result<Option<Tenant>> {
    let store = open_store()?;
    let key = tenant_key(id, RECORD);
    if let Some(bytes) = store
        .get(&key)
        .map_err(|e| kv_error(&e))
        .with_context(|| format!("reading {key}"))?
    {
        return Tenant::from_cache(&bytes).map(Some);
    }
    match db {
        Some(db) => refresh_tenant(db, id),
        None => refresh_tenant(&Db::open()?, id),
    }
}

/// Reads a tenant from the database (the source of truth) and rewrites its cache entry; called
/// on a cache miss and after every committed change to a tenant.
pub fn refresh_tenant(db: &Db, id: &TenantId) -> Result<Option<Tenant>> {
    let Some(tenant) = db
        .query::<Tenant>(
            "SELECT id, tag_prefix, plan, status, capture_gen, allowed_origins, thank_you_url,
                tag_rules FROM tenants WHERE id = ?",
            &[Value::Text(id.to_string())],
        )?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let key = tenant_key(&tenant.id, RECORD);
    open_store()?
        .set(&key, &tenant.to_cache()?)
        .map_err(|e| kv_error(&e))
        .with_context(|| format!("writing {key}"))?;
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

    /// Replaces the tenant's settings; the next request sees them.
    pub fn update_settings(&mut self, settings: &Settings) -> Result<(), ApiError> {
        let origins = serde_json::to_string(&settings.allowed_origins)
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        let rules = serde_json::to_string(&settings.tag_rules)
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        self.update_own_row(
            "UPDATE tenants SET allowed_origins = ?, thank_you_url = ?, tag_rules = ?, updated_at = ? WHERE id = ?",
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
}
