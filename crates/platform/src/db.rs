//! The SQLite database: an open, migrated connection, and rows decoded by column name into
//! typed structs ([`FromRow`]).
//!
//! A [`Db`] reaches every row of every tenant, so handlers never get one from a tenant's
//! request: only the proofs of [`crate::auth`] that stand for no single tenant (an admin
//! token, a verified signup, a verified Systeme.io callback) hand one out. A tenant's request
//! gets a [`crate::scope::TenantDb`] instead.

use std::cell::Cell;
use std::fmt::Display;
use std::rc::Rc;

use anyhow::{Context, Result, anyhow};
use serde::de::DeserializeOwned;
use spin_sdk::sqlite::{Connection, QueryResult, Value};

use crate::connection;

/// An open connection to the `default` database. Clones share the connection.
///
/// Request paths open it without reading the schema version (one storage call less per
/// request): a statement that fails because a table or column is missing brings the schema up
/// to date ([`crate::migrate`]) and runs once more. `GET /v1/health` (the readiness probe) and
/// the operator's batch open it with [`Db::open_migrated`], so a deploy with a new migration is
/// migrated before traffic arrives even when the migration only changes triggers.
#[derive(Clone)]
pub struct Db {
    conn: Rc<Connection>,
    migrated: Rc<Cell<Option<u32>>>,
}

impl Db {
    /// Opens the default database; pending migrations are applied on first need.
    pub(crate) fn open() -> Result<Self> {
        Ok(Self {
            conn: Rc::new(connection::open_default()?),
            migrated: Rc::new(Cell::new(None)),
        })
    }

    /// Opens the default database, applies pending migrations now, and logs what the backend
    /// lacks (foreign keys).
    pub(crate) fn open_migrated() -> Result<Self> {
        let db = Self::open()?;
        db.migrate()?;
        crate::migrate::check_foreign_keys(&db.conn);
        Ok(db)
    }

    fn migrate(&self) -> Result<u32> {
        let version = crate::migrate::ensure_schema(&self.conn)?;
        self.migrated.set(Some(version));
        Ok(version)
    }

    /// The schema version, migrating first if this connection has not yet.
    pub fn schema_version(&self) -> Result<u32> {
        match self.migrated.get() {
            Some(version) => Ok(version),
            None => self.migrate(),
        }
    }

    /// Runs one statement. A statement that names a table or column the database does not
    /// have yet migrates the schema and runs again, once.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<QueryResult> {
        match connection::execute(&self.conn, sql, params) {
            Err(e) if self.migrated.get().is_none() && crate::migrate::schema_is_behind(&e) => {
                self.migrate()
                    .context("migrating after a statement found the schema behind")?;
                connection::execute(&self.conn, sql, params)
            }
            other => other,
        }
    }

    /// Begins a write transaction, rolled back unless committed (see
    /// [`connection::Transaction`]).
    pub fn transaction(&self) -> Result<connection::Transaction<'_>> {
        connection::Transaction::begin(&self.conn)
    }

    /// Runs one statement and decodes every row it returns.
    pub fn query<T: FromRow>(&self, sql: &str, params: &[Value]) -> Result<Vec<T>> {
        rows(&self.execute(sql, params)?)
    }
}

/// Values bound by name to a statement's `:name` parameters: a long write names each value
/// after its column instead of counting `?N` by hand. The names are numbered after the
/// statement's own `?N` ([`domain::named_sql`]), and every name must be bound exactly once.
#[derive(Debug, Default, Clone)]
pub struct Params {
    values: Vec<(&'static str, Value)>,
}

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `value` to `:name`.
    #[must_use]
    pub fn set(mut self, name: &'static str, value: impl Bind) -> Self {
        self.values.push((name, value.into_value()));
        self
    }

    /// `sql` with its names numbered, and the values in number order: `positional` first (the
    /// statement's `?1` … `?N`), then one per name.
    pub fn resolve(&self, sql: &str, positional: Vec<Value>) -> Result<(String, Vec<Value>)> {
        let numbered = domain::named_sql::number_named(sql)?;
        if numbered.first != positional.len() + 1 {
            return Err(anyhow!(
                "the statement numbers its parameters up to ?{}, but {} positional values are bound",
                numbered.first - 1,
                positional.len()
            ));
        }
        if let Some((unused, _)) = self
            .values
            .iter()
            .find(|(name, _)| !numbered.names.contains(name))
        {
            return Err(anyhow!(
                "`:{unused}` is bound but the statement does not use it"
            ));
        }
        let mut values = positional;
        for name in &numbered.names {
            let (_, value) = self
                .values
                .iter()
                .find(|(bound, _)| bound == name)
                .ok_or_else(|| anyhow!("`:{name}` is used but not bound"))?;
            values.push(value.clone());
        }
        Ok((numbered.sql, values))
    }
}

/// A Rust value as an SQLite value; `None` is `NULL`.
pub trait Bind {
    fn into_value(self) -> Value;
}

impl Bind for Value {
    fn into_value(self) -> Value {
        self
    }
}

impl Bind for &str {
    fn into_value(self) -> Value {
        Value::Text(self.to_string())
    }
}

impl Bind for String {
    fn into_value(self) -> Value {
        Value::Text(self)
    }
}

impl Bind for i64 {
    fn into_value(self) -> Value {
        Value::Integer(self)
    }
}

impl Bind for bool {
    fn into_value(self) -> Value {
        Value::Integer(i64::from(self))
    }
}

impl<T: Bind> Bind for Option<T> {
    fn into_value(self) -> Value {
        self.map_or(Value::Null, Bind::into_value)
    }
}

/// A type read from a result row by column name.
pub trait FromRow: Sized {
    fn from_row(row: &Row<'_>) -> Result<Self>;
}

/// Decodes every row of `result`.
pub fn rows<T: FromRow>(result: &QueryResult) -> Result<Vec<T>> {
    result
        .rows()
        .map(|row| T::from_row(&Row { inner: row }))
        .collect()
}

/// One result row, read by column name. Every accessor names the column in its error.
pub struct Row<'a> {
    inner: spin_sdk::sqlite::Row<'a>,
}

impl<'a> Row<'a> {
    /// A non-null text column.
    pub fn text(&self, column: &str) -> Result<&'a str> {
        self.inner
            .get::<&str>(column)
            .ok_or_else(|| anyhow!("column `{column}`: missing, null or not text"))
    }

    /// A text column that may be null.
    pub fn opt_text(&self, column: &str) -> Option<String> {
        self.inner.get::<&str>(column).map(str::to_string)
    }

    /// A non-null integer column.
    pub fn int(&self, column: &str) -> Result<i64> {
        self.inner
            .get::<i64>(column)
            .ok_or_else(|| anyhow!("column `{column}`: missing, null or not an integer"))
    }

    /// An integer column that may be null.
    pub fn opt_int(&self, column: &str) -> Option<i64> {
        self.inner.get::<i64>(column)
    }

    /// A 0/1 integer column.
    pub fn flag(&self, column: &str) -> Result<bool> {
        self.int(column).map(|i| i != 0)
    }

    /// A text column parsed again into its domain type (values read back are re-validated).
    pub fn parsed<T, E: Display>(
        &self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T> {
        let text = self.text(column)?;
        parse(text).map_err(|e| anyhow!("column `{column}`: {e}"))
    }

    /// A text column holding JSON.
    pub fn json<T: DeserializeOwned>(&self, column: &str) -> Result<T> {
        serde_json::from_str(self.text(column)?)
            .with_context(|| format!("column `{column}`: not the JSON expected"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &Value) -> Option<&str> {
        match value {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    #[test]
    fn named_values_follow_the_positional_ones_in_number_order() {
        let params = Params::new()
            .set("name", Some("Ann"))
            .set("email", "a@x.io");
        let (sql, values) = params
            .resolve(
                "INSERT INTO t (tenant_id, email, name) VALUES (?1, :email, :name)",
                vec![Value::Text("ten".into())],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            sql,
            "INSERT INTO t (tenant_id, email, name) VALUES (?1, ?2, ?3)"
        );
        let values: Vec<Option<&str>> = values.iter().map(text).collect();
        assert_eq!(values, [Some("ten"), Some("a@x.io"), Some("Ann")]);
    }

    #[test]
    fn a_name_unbound_or_unused_or_a_positional_count_that_differs_is_an_error() {
        let sql = "SELECT ?1, :a";
        let one = || vec![Value::Null];
        assert!(Params::new().resolve(sql, one()).is_err());
        assert!(
            Params::new()
                .set("a", 1)
                .set("b", 2)
                .resolve(sql, one())
                .is_err()
        );
        assert!(Params::new().set("a", 1).resolve(sql, vec![]).is_err());
        assert!(Params::new().set("a", 1).resolve(sql, one()).is_ok());
    }
}
