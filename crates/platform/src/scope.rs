//! Storage as one tenant sees it: the one place isolation is enforced.
//!
//! [`TenantDb`] is built from a verified [`crate::tenant::TenantContext`]
//! (or, for the operator's batch and Systeme.io callbacks, from a [`Db`] that only their
//! proofs hand out). They add the tenant themselves: every SQL statement binds `?1` to the
//! tenant id, and [`TenantSql`] refuses, at compile time, SQL that does not filter on
//! `tenant_id = ?1`.
//!
//! The compile-time check is a first line only: it reads bytes, not SQL. The proof is
//! `tests/tenant_sql.rs`, which finds every `tenant_sql!` in the repository, parses each
//! statement with sqlparser (SQLite dialect) and checks that every `SELECT`, `UPDATE` and
//! `DELETE` on a tenant table, in every branch and subquery, has a top-level `AND` conjunct
//! `tenant_id = ?1`, and that every `INSERT` binds `tenant_id` to `?1`.

use anyhow::Result;
use domain::tenant::TenantId;
use spin_sdk::sqlite::{QueryResult, Value};

use crate::db::{Db, FromRow, Params, rows};

/// SQL a tenant may run. Invariant: every tenant table it reads or writes is filtered by
/// `tenant_id = ?1` (or, for an `INSERT`, gets `?1` as its `tenant_id`); [`TenantDb`] always
/// binds `?1` to the verified tenant. [`tenant_sql!`] checks a necessary condition at compile
/// time; `tests/tenant_sql.rs` parses every statement and proves the invariant.
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

// Runs at compile time only (from `tenant_sql!` and `own_row_sql!`); the bounds check keeps
// every index in range.
#[allow(clippy::indexing_slicing)]
pub(crate) const fn starts_with(haystack: &[u8], needle: &[u8]) -> bool {
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
/// Several literals (or macros that expand to one, such as a shared column list) are joined
/// with `concat!` first, and the whole statement is checked.
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
    ($($part:expr),+ $(,)?) => {
        const { $crate::scope::TenantSql::new(concat!($($part),+)) }
    };
}

/// The database, as one tenant sees it.
pub struct TenantDb {
    db: Db,
    tenant: TenantId,
}

impl TenantDb {
    /// A view of an open connection (e.g. inside a transaction) scoped to `tenant`. Only code
    /// that already holds a [`Db`] (an operator or a verified callback) can call it.
    pub fn on(db: &Db, tenant: TenantId) -> Self {
        Self {
            db: db.clone(),
            tenant,
        }
    }

    /// The tenant every statement is scoped to.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Runs `sql` with `?1` bound to this tenant and `params` as `?2`, `?3`, …
    pub fn execute(&self, sql: TenantSql, params: &[Value]) -> Result<QueryResult> {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(Value::Text(self.tenant.to_string()));
        all.extend_from_slice(params);
        self.db.execute(sql.0, &all)
    }

    /// Runs `sql` like [`Self::execute`] and decodes every row it returns.
    pub fn query<T: FromRow>(&self, sql: TenantSql, params: &[Value]) -> Result<Vec<T>> {
        rows(&self.execute(sql, params)?)
    }

    /// Runs `sql` like [`Self::execute`] and decodes its first row, if any.
    pub fn query_one<T: FromRow>(&self, sql: TenantSql, params: &[Value]) -> Result<Option<T>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Runs `sql` with `?1` bound to this tenant and its `:name` parameters to `params`.
    pub fn execute_named(&self, sql: TenantSql, params: &Params) -> Result<QueryResult> {
        let (sql, values) = params.resolve(sql.0, vec![Value::Text(self.tenant.to_string())])?;
        self.db.execute(&sql, &values)
    }

    /// Runs `sql` like [`Self::execute_named`] and decodes its first row, if any.
    pub fn query_one_named<T: FromRow>(
        &self,
        sql: TenantSql,
        params: &Params,
    ) -> Result<Option<T>> {
        Ok(rows::<T>(&self.execute_named(sql, params)?)?
            .into_iter()
            .next())
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
