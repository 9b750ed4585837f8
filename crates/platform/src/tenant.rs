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

    /// Runs `sql` on this tenant's own `tenants` row, with `?1` bound to the tenant id and
    /// `params` as `?2`, `?3`, …, then reads the row back: the rest of this request and every
    /// later request see it as it is now.
    pub fn update_own_row(&mut self, sql: OwnRowSql, params: &[Value]) -> Result<(), ApiError> {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(Value::Text(self.tenant.id.to_string()));
        all.extend_from_slice(params);
        self.db.execute(sql.0, &all)?;
        self.tenant = load_tenant(&self.db, &self.tenant.id)?
            .ok_or_else(|| anyhow::anyhow!("updating tenant {}: row vanished", self.tenant.id))?;
        Ok(())
    }
}

/// SQL that updates the verified tenant's own `tenants` row and no other. Invariant, checked at
/// compile time by [`own_row_sql!`]: `UPDATE tenants SET … WHERE id = ?1`, with the filter at
/// the end, and no parenthesis (so no subquery reads another row), `FROM`, `WHERE` other than
/// the final one, comment or second statement. [`TenantContext::update_own_row`] binds `?1` to
/// the verified tenant.
#[derive(Debug, Clone, Copy)]
pub struct OwnRowSql(&'static str);

impl OwnRowSql {
    /// Use through [`own_row_sql!`], which evaluates this in a `const` block so a statement
    /// that could reach another row does not compile.
    pub const fn new(sql: &'static str) -> Self {
        let bytes = sql.as_bytes();
        assert!(
            crate::scope::starts_with(bytes, b"UPDATE tenants SET ")
                && ends_with(bytes, b" WHERE id = ?1")
                && count_ci(bytes, b"where") == 1
                && count_ci(bytes, b"from") == 0
                && count_ci(bytes, b"(") == 0
                && count_ci(bytes, b";") == 0
                && count_ci(bytes, b"--") == 0
                && count_ci(bytes, b"/*") == 0,
            "own-row SQL must be `UPDATE tenants SET … WHERE id = ?1`, without parentheses, \
             FROM, another WHERE, comments or a second statement"
        );
        Self(sql)
    }
}

/// The verified tenant's own-row SQL, checked at compile time:
/// `own_row_sql!("UPDATE tenants SET name = ?2 WHERE id = ?1")`.
///
/// ```
/// let _ = platform::own_row_sql!("UPDATE tenants SET capture_gen = capture_gen + 1 WHERE id = ?1");
/// ```
///
/// A statement that could reach another row does not compile:
///
/// ```compile_fail
/// let _ = platform::own_row_sql!("UPDATE tenants SET plan = ?2 WHERE id = ?1 OR 1 = 1");
/// ```
///
/// ```compile_fail
/// let _ = platform::own_row_sql!("UPDATE tenants SET plan = ?2 -- WHERE id = ?1");
/// ```
///
/// ```compile_fail
/// let _ = platform::own_row_sql!(
///     "UPDATE tenants SET name = (SELECT email FROM leads LIMIT 1) WHERE id = ?1"
/// );
/// ```
#[macro_export]
macro_rules! own_row_sql {
    ($sql:expr $(,)?) => {
        const { $crate::tenant::OwnRowSql::new($sql) }
    };
}

// Runs at compile time only; the bounds check keeps every index in range.
#[allow(clippy::indexing_slicing)]
const fn ends_with(haystack: &[u8], needle: &[u8]) -> bool {
    if needle.len() > haystack.len() {
        return false;
    }
    let offset = haystack.len() - needle.len();
    let mut i = 0;
    while i < needle.len() {
        if haystack[offset + i] != needle[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// How often `needle` (lowercase ASCII) occurs in `haystack`, ignoring ASCII case.
// Runs at compile time only; the loop bounds keep every index in range.
#[allow(clippy::indexing_slicing)]
const fn count_ci(haystack: &[u8], needle: &[u8]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i + needle.len() <= haystack.len() {
        let mut j = 0;
        while j < needle.len() && haystack[i + j].to_ascii_lowercase() == needle[j] {
            j += 1;
        }
        if j == needle.len() {
            count += 1;
        }
        i += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_row_sql_accepts_updates_of_the_tenants_own_row() {
        let sql = own_row_sql!(
            "UPDATE tenants SET capture_gen = capture_gen + 1, updated_at = ?2 WHERE id = ?1"
        );
        assert!(sql.0.starts_with("UPDATE tenants SET"));
    }

    #[test]
    fn the_own_row_check_counts_words_in_any_case() {
        assert_eq!(
            count_ci(b"UPDATE t SET a = 1 Where id = ?1 where", b"where"),
            2
        );
        assert_eq!(count_ci(b"SET a = 1", b"from"), 0);
        assert!(ends_with(b"x WHERE id = ?1", b" WHERE id = ?1"));
        assert!(!ends_with(b"WHERE id = ?12", b" WHERE id = ?1"));
    }
}
