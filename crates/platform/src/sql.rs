//! A SQLite connection with context on every step, so a logged failure reads like a story.

use std::rc::Rc;

use anyhow::{Context, Result, anyhow};
use spin_sdk::sqlite::{Connection, QueryResult, Value};

/// An open connection to the `default` database, with the schema brought up to date. Clones
/// share the connection, so statements of one transaction can go through several scoped views.
#[derive(Clone)]
pub struct Db {
    conn: Rc<Connection>,
    schema_version: u32,
}

impl Db {
    /// Opens the default database and applies pending migrations (see [`crate::migrate`]).
    pub fn open() -> Result<Self> {
        let conn = Connection::open_default()
            .map_err(|e| anyhow!("{e:?}"))
            .context("opening the default SQLite database")?;
        let schema_version = crate::migrate::ensure_schema(&conn)?;
        Ok(Self {
            conn: Rc::new(conn),
            schema_version,
        })
    }

    /// The schema version this connection saw after migrating.
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }

    /// Runs one statement.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<QueryResult> {
        execute(&self.conn, sql, params)
    }
}

/// Runs one statement on a raw connection, naming the statement in the error.
pub fn execute(conn: &Connection, sql: &str, params: &[Value]) -> Result<QueryResult> {
    conn.execute(sql, params)
        .map_err(|e| anyhow!("{e:?}"))
        .with_context(|| {
            let head: String = sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
            format!("executing `{head} …`")
        })
}
