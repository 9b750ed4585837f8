//! Verified tenants: the record the gate reads and the request context that hands out the
//! tenant's storage.
//!
//! A [`TenantContext`] exists only once a token has been verified ([`crate::auth`]); it is the
//! only way a tenant's request reaches storage, and what it hands out is scoped ([`TenantDb`]).
//!
//! The gate reads the tenant's row from SQLite, the only shared truth, on the connection the
//! request uses for its own work: one indexed read, no key-value store and no cache. So a
//! suspension, a capture-key rotation or new settings take effect on the next request on every
//! replica, and no request waits on a key-value backend (docs/storage.md).

use anyhow::{Context, Result};
use domain::funnel::TagRules;
use domain::settings::{Settings, ThankYouUrl};
use domain::tenant::{BudgetOverrides, Limits, Plan, TagPrefix, TenantId, TenantStatus};
use spin_sdk::sqlite::Value;

use crate::ApiError;
use crate::db::{Db, FromRow, Row};
use crate::scope::TenantDb;

/// A tenant as the gate sees it. Invariant: read back from storage and parsed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    /// The name given at signup, as the dashboard shows it.
    pub name: String,
    pub tag_prefix: TagPrefix,
    pub plan: Plan,
    pub status: TenantStatus,
    pub capture_gen: i64,
    /// Origins, thank-you URL and tag-rule overrides; read with the tenant, so capture and
    /// callbacks read them at no extra storage call.
    pub settings: Settings,
    /// The plan's limits with the operator's budget overrides applied.
    pub limits: Limits,
}

impl Tenant {
    /// The tenant's current capture token (publishable; no expiry; revoked by rotation).
    pub fn capture_token(&self) -> Result<String, ApiError> {
        capture_token(&self.id, self.capture_gen)
    }
}

/// The `tenants` columns a [`Tenant`] is read from.
pub const TENANT_COLUMNS: &str = "id, name, tag_prefix, plan, status, capture_gen, allowed_origins, thank_you_url, tag_rules, funnel_ids, budget_held_leads, budget_tags, budget_sync_calls";

/// Reads the [`TENANT_COLUMNS`] of a `tenants` row.
impl FromRow for Tenant {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        let plan = row.parsed("plan", Plan::parse)?;
        Ok(Self {
            id: row.parsed("id", TenantId::parse)?,
            name: row.text("name")?.to_string(),
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

/// Reads a tenant from the database, the source of truth; `None` if there is no such tenant.
pub fn load_tenant(db: &Db, id: &TenantId) -> Result<Option<Tenant>> {
    Ok(db
        .query::<Tenant>(
            &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?"),
            &[Value::Text(id.to_string())],
        )?
        .into_iter()
        .next())
}

/// A request's verified tenant. Only [`crate::auth::authenticate`] builds one, and only it
/// hands out the tenant's storage types.
pub struct TenantContext {
    tenant: Tenant,
    /// The request's connection, opened by the gate and shared by everything it hands out.
    db: Db,
}

impl std::fmt::Debug for TenantContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantContext")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl TenantContext {
    pub(crate) fn new(tenant: Tenant, db: Db) -> Self {
        Self { tenant, db }
    }

    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The database, scoped to this tenant (the request's one connection).
    pub fn db(&self) -> Result<TenantDb, ApiError> {
        Ok(TenantDb::on(&self.db, self.tenant.id.clone()))
    }

    /// Runs one `UPDATE tenants … WHERE id = ?` (the tenant id is bound last), then reads the
    /// row back; every later request reads the row as it is now.
    fn update_own_row(&mut self, sql: &str, mut params: Vec<Value>) -> Result<(), ApiError> {
        params.push(Value::Text(self.tenant.id.to_string()));
        self.db.execute(sql, &params)?;
        self.tenant = load_tenant(&self.db, &self.tenant.id)?
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
}
