//! One call on a raw SQLite connection, with the statement named in the error, so a logged
//! failure reads like a story. The database and the migration runner both go through it.

use anyhow::{Context, Result};
use spin_sdk::sqlite::{Connection, QueryResult, Value};

use crate::storage_error::sqlite_error;

/// Opens the `default` database: under Spin a new connection that lives as long as the
/// instance, that is one request (docs/spin-behaviour.md).
pub(crate) fn open_default() -> Result<Connection> {
    Connection::open_default()
        .map_err(|e| sqlite_error(&e))
        .context("opening the default SQLite database")
}

/// Runs one statement (Spin runs only the first statement of a string).
pub(crate) fn execute(conn: &Connection, sql: &str, params: &[Value]) -> Result<QueryResult> {
    conn.execute(sql, params)
        .map_err(|e| sqlite_error(&e))
        .with_context(|| {
            let head: String = sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
            format!("executing `{head} …`")
        })
}

/// An explicit write transaction: `BEGIN IMMEDIATE` now, and `ROLLBACK` when dropped without
/// [`Transaction::commit`], on every path, errors included.
///
/// Prefer one statement (`INSERT … SELECT … RETURNING` with triggers) to a transaction. Over
/// libSQL every statement of an interactive transaction is its own HTTP call on a stream that
/// can outlive the component instance and keep holding the write lock; on local SQLite the
/// connection closes with the instance and that rolls back, but a trap between `BEGIN` and
/// `COMMIT` runs no `Drop`, so only a short transaction with no outbound call inside is safe.
/// See docs/storage.md.
pub struct Transaction<'a> {
    conn: &'a Connection,
    open: bool,
}

impl<'a> Transaction<'a> {
    /// Takes the write lock (`BEGIN IMMEDIATE`), so a racing writer waits and then sees this
    /// transaction's result.
    pub(crate) fn begin(conn: &'a Connection) -> Result<Self> {
        execute(conn, "BEGIN IMMEDIATE", &[]).context("beginning a write transaction")?;
        Ok(Self { conn, open: true })
    }

    /// Commits. A failed `COMMIT` still rolls back when the guard drops.
    pub fn commit(mut self) -> Result<()> {
        execute(self.conn, "COMMIT", &[]).context("committing")?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open
            && let Err(e) = self.conn.execute("ROLLBACK", &[])
        {
            // Nothing else can be done; the connection ends with the request anyway.
            eprintln!("sqlite: rolling back: {e:?}");
        }
    }
}
