//! Verified tenants and the storage types scoped to them.
//!
//! A [`Tenant`] exists only once a token or signature has been verified (see [`crate::auth`]).
//! [`TenantDb`] and [`TenantKv`] are built only from a [`crate::auth::TenantContext`], and they
//! add the tenant themselves: every SQL statement a handler can run binds `?1` to the tenant id,
//! and [`TenantSql`] refuses, at compile time, SQL that does not filter on `tenant_id = ?1`.
//! This module is the one place that isolation is enforced.

use anyhow::{Context, Result, anyhow};
use domain::funnel::TagRules;
use domain::settings::{Settings, ThankYouUrl};
use domain::tenant::{Plan, TagPrefix, TenantId, TenantStatus};
use serde::{Deserialize, Serialize};
use spin_sdk::key_value::Store;
use spin_sdk::sqlite::{QueryResult, RowResult, Value};

use crate::kv::{open_store, tenant_key};
use crate::sql::Db;

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

/// The `tenants` columns [`Tenant::from_row`] reads, in order.
pub(crate) const TENANT_COLUMNS: &str =
    "id, tag_prefix, plan, status, capture_gen, allowed_origins, thank_you_url, tag_rules";

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

    /// Parses a row of [`TENANT_COLUMNS`].
    pub(crate) fn from_row(row: &RowResult) -> Result<Self> {
        let text = |i: usize| {
            row.get::<&str>(i)
                .ok_or_else(|| anyhow!("tenants row: column {i}"))
        };
        let thank_you_url = row.get::<&str>(6).map(ThankYouUrl::parse).transpose()?;
        Ok(Self {
            id: TenantId::parse(text(0)?)?,
            tag_prefix: TagPrefix::parse(text(1)?)?,
            plan: Plan::parse(text(2)?)?,
            status: TenantStatus::parse(text(3)?)?,
            capture_gen: row
                .get::<i64>(4)
                .ok_or_else(|| anyhow!("tenants row: capture_gen"))?,
            settings: Settings {
                allowed_origins: Settings::origins_from_json(text(5)?)?,
                thank_you_url,
                tag_rules: match row.get::<&str>(7) {
                    Some(json) => serde_json::from_str(json).context("tenants row: tag_rules")?,
                    None => TagRules::default(),
                },
            },
        })
    }

    /// The tenant's current capture token (publishable; no expiry; revoked by rotation).
    pub fn capture_token(&self) -> Result<String, crate::ApiError> {
        capture_token(&self.id, self.capture_gen)
    }
}

/// The capture token of generation `generation` for tenant `id`.
pub(crate) fn capture_token(id: &TenantId, generation: i64) -> Result<String, crate::ApiError> {
    let secret = crate::secrets::token_secret()?;
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

/// Loads a tenant: one key-value read on the hot path; on a miss, the database is the source
/// of truth and the cache is filled again.
pub(crate) fn load_tenant(id: &TenantId) -> Result<Option<Tenant>> {
    let store = open_store()?;
    let key = tenant_key(id, RECORD);
    if let Some(bytes) = store
        .get(&key)
        .map_err(|e| anyhow!("reading {key}: {e:?}"))?
    {
        return Tenant::from_cache(&bytes).map(Some);
    }
    refresh_tenant(&Db::open()?, &store, id)
}

/// Reads a tenant from the database (the source of truth) and rewrites its cache entry; called
/// on a cache miss and after every committed change to a tenant.
pub(crate) fn refresh_tenant(db: &Db, store: &Store, id: &TenantId) -> Result<Option<Tenant>> {
    let result = db.execute(
        &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?"),
        &[Value::Text(id.to_string())],
    )?;
    let Some(row) = result.rows.first() else {
        return Ok(None);
    };
    let tenant = Tenant::from_row(row)?;
    let key = tenant_key(&tenant.id, RECORD);
    store
        .set(&key, &tenant.to_cache()?)
        .map_err(|e| anyhow!("writing {key}: {e:?}"))?;
    Ok(Some(tenant))
}

/// SQL a tenant may run. Invariant (checked at compile time by [`tenant_sql!`]): it filters on
/// `tenant_id = ?1`, or it is an `INSERT` whose first column is `tenant_id` and first value
/// `?1`; [`TenantDb`] always binds `?1` to the verified tenant.
#[derive(Debug, Clone, Copy)]
pub struct TenantSql(&'static str);

impl TenantSql {
    /// Use through [`tenant_sql!`], which evaluates this in a `const` block so a statement
    /// without the tenant filter does not compile.
    pub const fn new(sql: &'static str) -> Self {
        let sql_bytes = sql.as_bytes();
        let filters = filters_on_tenant(sql_bytes);
        let inserts_own_row = starts_with(sql_bytes, b"INSERT INTO ")
            && contains(sql_bytes, b" (tenant_id, ")
            && contains(sql_bytes, b"VALUES (?1, ");
        assert!(
            filters || inserts_own_row,
            "tenant SQL must filter on `tenant_id = ?1` or insert `(tenant_id, …) VALUES (?1, …)`"
        );
        Self(sql)
    }
}

const NEEDLE: &[u8] = b"tenant_id = ?1";

const fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Whether `sql` has a `tenant_id = ?1` that is a real filter: not `?10`, and neither side of it
/// joined by `OR` (`tenant_id = ?1 OR 1 = 1` would match every tenant).
// Runs at compile time only (from `tenant_sql!`); every index is checked against the length.
#[allow(clippy::indexing_slicing)]
const fn filters_on_tenant(sql: &[u8]) -> bool {
    let mut i = 0;
    while i + NEEDLE.len() <= sql.len() {
        let mut j = 0;
        while j < NEEDLE.len() && sql[i + j] == NEEDLE[j] {
            j += 1;
        }
        if j == NEEDLE.len() {
            let after = i + NEEDLE.len();
            let digit_follows = after < sql.len() && sql[after].is_ascii_digit();
            // The next word.
            let mut k = after;
            while k < sql.len() && is_space(sql[k]) {
                k += 1;
            }
            let or_after = k + 2 <= sql.len()
                && (sql[k] == b'O' || sql[k] == b'o')
                && (sql[k + 1] == b'R' || sql[k + 1] == b'r')
                && (k + 2 == sql.len() || is_space(sql[k + 2]) || sql[k + 2] == b'(');
            // The previous word.
            let mut m = i;
            while m > 0 && is_space(sql[m - 1]) {
                m -= 1;
            }
            let or_before = m >= 2
                && (sql[m - 2] == b'O' || sql[m - 2] == b'o')
                && (sql[m - 1] == b'R' || sql[m - 1] == b'r')
                && (m == 2 || is_space(sql[m - 3]) || sql[m - 3] == b')');
            if !digit_follows && !or_after && !or_before {
                return true;
            }
        }
        i += 1;
    }
    false
}

// Runs at compile time only (from `tenant_sql!`); the loop bounds keep every index in range.
#[allow(clippy::indexing_slicing)]
const fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let mut i = 0;
    while i + needle.len() <= haystack.len() {
        let mut j = 0;
        while j < needle.len() && haystack[i + j] == needle[j] {
            j += 1;
        }
        if j == needle.len() {
            return true;
        }
        i += 1;
    }
    false
}

// Runs at compile time only; the bounds check keeps every index in range.
#[allow(clippy::indexing_slicing)]
const fn starts_with(haystack: &[u8], needle: &[u8]) -> bool {
    if needle.len() > haystack.len() {
        return false;
    }
    let mut i = 0;
    while i < needle.len() {
        if haystack[i] != needle[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Tenant-scoped SQL, checked at compile time: `tenant_sql!("SELECT … WHERE tenant_id = ?1")`.
///
/// ```
/// let _ = platform::tenant_sql!("SELECT id FROM leads WHERE tenant_id = ?1");
/// ```
///
/// A statement that does not filter on the tenant does not compile:
///
/// ```compile_fail
/// let _ = platform::tenant_sql!("SELECT id FROM leads");
/// ```
///
/// Nor does a filter that `OR` widens to other tenants, or one on another parameter:
///
/// ```compile_fail
/// let _ = platform::tenant_sql!("SELECT id FROM leads WHERE tenant_id = ?1 OR 1 = 1");
/// ```
///
/// ```compile_fail
/// let _ = platform::tenant_sql!("SELECT id FROM leads WHERE email = ?2 OR tenant_id = ?1");
/// ```
///
/// ```compile_fail
/// let _ = platform::tenant_sql!("SELECT id FROM leads WHERE tenant_id = ?10");
/// ```
///
/// Nor does an insert that takes its tenant from anywhere but `?1`:
///
/// ```compile_fail
/// let _ = platform::tenant_sql!("INSERT INTO leads (tenant_id, id) VALUES (?2, ?3)");
/// ```
#[macro_export]
macro_rules! tenant_sql {
    ($sql:literal) => {
        const { $crate::tenant::TenantSql::new($sql) }
    };
}

/// The database, as one tenant sees it.
pub struct TenantDb {
    db: Db,
    tenant: TenantId,
}

impl TenantDb {
    pub(crate) fn new(tenant: TenantId) -> Result<Self> {
        Ok(Self::on(&Db::open()?, tenant))
    }

    /// A view of an open connection (e.g. inside a transaction) scoped to `tenant`.
    pub(crate) fn on(db: &Db, tenant: TenantId) -> Self {
        Self {
            db: db.clone(),
            tenant,
        }
    }

    /// The tenant every statement is scoped to.
    pub(crate) fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Runs `sql` with `?1` bound to this tenant and `params` as `?2`, `?3`, …
    pub fn execute(&self, sql: TenantSql, params: &[Value]) -> Result<QueryResult> {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(Value::Text(self.tenant.to_string()));
        all.extend_from_slice(params);
        self.db.execute(sql.0, &all)
    }
}

/// The key-value store, as one tenant sees it: every key is under `t:<tenant>:`.
pub struct TenantKv {
    store: Store,
    tenant: TenantId,
}

impl TenantKv {
    pub(crate) fn new(tenant: TenantId) -> Result<Self> {
        Ok(Self {
            store: open_store()?,
            tenant,
        })
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = tenant_key(&self.tenant, key);
        self.store
            .get(&key)
            .map_err(|e| anyhow!("reading {key}: {e:?}"))
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        let key = tenant_key(&self.tenant, key);
        self.store
            .set(&key, value)
            .map_err(|e| anyhow!("writing {key}: {e:?}"))
    }

    pub fn delete(&self, key: &str) -> Result<()> {
        let key = tenant_key(&self.tenant, key);
        self.store
            .delete(&key)
            .map_err(|e| anyhow!("deleting {key}: {e:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_sql_accepts_statements_that_filter_on_the_tenant() {
        let sql = tenant_sql!("SELECT id FROM leads WHERE tenant_id = ?1 AND id = ?2");
        assert!(sql.0.starts_with("SELECT"));
    }

    #[test]
    fn tenant_sql_accepts_inserts_of_the_tenants_own_rows() {
        let sql = tenant_sql!("INSERT INTO daily_rollups (tenant_id, day) VALUES (?1, ?2)");
        assert!(sql.0.starts_with("INSERT"));
        assert!(starts_with(b"INSERT INTO x", b"INSERT INTO "));
        assert!(!starts_with(b"SELECT", b"INSERT INTO "));
    }

    #[test]
    fn the_tenant_filter_must_not_be_widened_by_or() {
        assert!(filters_on_tenant(b"SELECT 1 FROM t WHERE tenant_id = ?1"));
        assert!(filters_on_tenant(
            b"SELECT 1 FROM t WHERE tenant_id = ?1 AND (a = ?2 OR b = ?3)"
        ));
        assert!(filters_on_tenant(
            b"UPDATE t SET x = 1 WHERE tenant_id = ?1\n AND id = ?2"
        ));
        assert!(filters_on_tenant(
            b"SELECT 1 FROM t WHERE (tenant_id = ?1) ORDER BY id"
        ));
        assert!(!filters_on_tenant(
            b"SELECT 1 FROM t WHERE tenant_id = ?1 OR 1 = 1"
        ));
        assert!(!filters_on_tenant(
            b"SELECT 1 FROM t WHERE tenant_id = ?1\n  or(1 = 1)"
        ));
        assert!(!filters_on_tenant(
            b"SELECT 1 FROM t WHERE a = ?2 OR tenant_id = ?1"
        ));
        assert!(!filters_on_tenant(b"SELECT 1 FROM t WHERE tenant_id = ?12"));
        // One real filter is enough, even if another mention is widened.
        assert!(filters_on_tenant(b"SELECT 1 FROM t WHERE tenant_id = ?1 AND id IN (SELECT id FROM u WHERE x = 1 OR tenant_id = ?1)"));
    }

    #[test]
    fn the_tenant_filter_check_finds_the_needle_anywhere() {
        assert!(contains(b"x tenant_id = ?1", b"tenant_id = ?1"));
        assert!(!contains(b"SELECT * FROM leads", b"tenant_id = ?1"));
        assert!(!contains(b"tenant_id = ?2", b"tenant_id = ?1"));
    }
}
