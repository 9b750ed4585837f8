//! One call on a raw SQLite connection, with the statement named in the error, so a logged
//! failure reads like a story. The database and the migration runner both go through it.

use anyhow::{Context, Result, anyhow};
use spin_sdk::sqlite::{Connection, QueryResult, Value};

/// Opens the `default` database: under Spin a new connection that lives as long as the
/// instance, that is one request (docs/spin-behaviour.md).
pub(crate) fn open_default() -> Result<Connection> {
    Connection::open_default()
        .map_err(|e| anyhow!("{e:?}"))
        .context("opening the default SQLite database")
}

/// Runs one statement (Spin runs only the first statement of a string).
pub(crate) fn execute(conn: &Connection, sql: &str, params: &[Value]) -> Result<QueryResult> {
    conn.execute(sql, params)
        .map_err(|e| anyhow!("{e:?}"))
        .with_context(|| {
            let head: String = sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
            format!("executing `{head} …`")
        })
}
