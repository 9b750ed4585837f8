//! Key-value and SQLite behind `fermyon:spin/key-value@2.0.0` and `sqlite@2.0.0`.
//!
//! Like Spin's local defaults: key-value lives in `<state-dir>/sqlite_key_value.db`, one table
//! keyed by (store label, key) behind one shared connection; the default database is
//! `<state-dir>/sqlite_db.db`, and every `open` is its own connection with Spin's pragmas.
//! A key-value label the runtime config maps to `type = "redis"` lives in Redis instead
//! ([`crate::kv_redis`]). Injected faults ([`crate::faults`]) hit every backend alike; their
//! waits happen outside every host lock, so they model round trips to a remote database.

use anyhow::{Context, Result, bail};
use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::types::{Value as SqlValue, ValueRef};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bindings::fermyon::spin::{key_value, sqlite};
use crate::kv_redis::RedisStore;
use crate::resources::SqliteConnection;

/// Every key-value store: labels mapped to Redis by the runtime config, and the rest in one
/// local SQLite file behind one connection, as in Spin.
#[derive(Clone)]
pub struct KeyValueBackend {
    conn: Arc<Mutex<rusqlite::Connection>>,
    redis: Arc<HashMap<String, RedisStore>>,
}

impl KeyValueBackend {
    /// Opens the local file; `redis` holds the labels that live in Redis (connected lazily).
    pub fn open(state_dir: &Path, redis: HashMap<String, RedisStore>) -> Result<Self> {
        let path = state_dir.join("sqlite_key_value.db");
        let conn = rusqlite::Connection::open(&path)
            .with_context(|| format!("opening key-value store {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                PRIMARY KEY (store, key))",
            [],
        )
        .context("creating the key-value table")?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            redis: Arc::new(redis),
        })
    }

    /// What a component's `open` does beyond the access check: Spin pings a Redis store
    /// here, so an unreachable Redis already holds the `open` until it answers.
    pub fn open_store(&self, store: &str) -> Result<(), key_value::Error> {
        match self.redis.get(store) {
            Some(redis) => redis.open(),
            None => Ok(()),
        }
    }

    /// The Redis store behind `store`, if it has one, once an injected fault has had its turn.
    fn redis(&self, store: &str) -> Result<Option<&RedisStore>, key_value::Error> {
        crate::faults::kv().map_err(key_value::Error::Other)?;
        Ok(self.redis.get(store))
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, key_value::Error> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| key_value::Error::Other("key-value store lock poisoned".into()))?;
        tokio::task::block_in_place(|| f(&conn)).map_err(|e| key_value::Error::Other(e.to_string()))
    }

    pub fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, key_value::Error> {
        if let Some(redis) = self.redis(store)? {
            return redis.get(key);
        }
        self.local_get(store, key)
    }

    fn local_get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, key_value::Error> {
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?;
            let mut rows = stmt.query([store, key])?;
            match rows.next()? {
                Some(row) => Ok(Some(row.get(0)?)),
                None => Ok(None),
            }
        })
    }

    pub fn set(&self, store: &str, key: &str, value: &[u8]) -> Result<(), key_value::Error> {
        if let Some(redis) = self.redis(store)? {
            return redis.set(key, value);
        }
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(rusqlite::params![store, key, value])
            .map(drop)
        })
    }

    pub fn delete(&self, store: &str, key: &str) -> Result<(), key_value::Error> {
        if let Some(redis) = self.redis(store)? {
            return redis.delete(key);
        }
        self.with(|c| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .execute([store, key])
                .map(drop)
        })
    }

    pub fn exists(&self, store: &str, key: &str) -> Result<bool, key_value::Error> {
        if let Some(redis) = self.redis(store)? {
            return redis.exists(key);
        }
        self.local_get(store, key).map(|v| v.is_some())
    }

    pub fn get_keys(&self, store: &str) -> Result<Vec<String>, key_value::Error> {
        if let Some(redis) = self.redis(store)? {
            return redis.get_keys();
        }
        self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?;
            stmt.query_map([store], |row| row.get(0))?.collect()
        })
    }
}

/// Where each SQLite database label lives.
#[derive(Clone, Debug)]
pub struct SqliteBackend {
    paths: Arc<HashMap<String, PathBuf>>,
}

impl SqliteBackend {
    /// `default` is `<state-dir>/sqlite_db.db`; other labels come from the runtime config.
    pub fn new(state_dir: &Path, extra: HashMap<String, PathBuf>) -> Self {
        let mut paths = extra;
        paths
            .entry("default".to_string())
            .or_insert_with(|| state_dir.join("sqlite_db.db"));
        Self {
            paths: Arc::new(paths),
        }
    }

    pub fn knows(&self, label: &str) -> bool {
        self.paths.contains_key(label)
    }

    /// What a component's `open` does, as in Spin: it checks the label and opens nothing yet.
    /// The connection opens at the first statement ([`execute_on`]).
    pub async fn open(&self, label: &str) -> Result<SqliteConnection, sqlite::Error> {
        let path = self.paths.get(label).ok_or(sqlite::Error::NoSuchDatabase)?;
        let wait = crate::faults::sqlite_open_wait();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(SqliteConnection {
            path: path.clone(),
            conn: None,
        })
    }
}

/// The handle's `rusqlite::Connection`, opened now if this is the first statement, with
/// rusqlite's defaults as in Spin (`busy_timeout` 5000 ms; foreign keys on through the bundled
/// build's `SQLITE_DEFAULT_FOREIGN_KEYS=1`). Opening reads nothing (the schema is read by the
/// first statement), so it happens on the calling thread, as in Spin.
fn connection(
    handle: &mut SqliteConnection,
) -> Result<Arc<Mutex<rusqlite::Connection>>, sqlite::Error> {
    if let Some(conn) = &handle.conn {
        return Ok(conn.clone());
    }
    let conn =
        rusqlite::Connection::open(&handle.path).map_err(|e| sqlite::Error::Io(e.to_string()))?;
    let conn = Arc::new(Mutex::new(conn));
    handle.conn = Some(conn.clone());
    Ok(conn)
}

/// Runs the first statement of `sql` on tokio's blocking pool, as Spin does, so the calling
/// request's worker thread goes on serving other requests while SQLite works or waits.
pub async fn execute_on(
    handle: &mut SqliteConnection,
    sql: String,
    params: Vec<sqlite::Value>,
) -> Result<sqlite::QueryResult, sqlite::Error> {
    let conn = connection(handle)?;
    tokio::task::spawn_blocking(move || {
        crate::faults::sqlite().map_err(sqlite::Error::Io)?;
        let conn = conn
            .lock()
            .map_err(|_| sqlite::Error::Io("sqlite connection lock poisoned".into()))?;
        execute(&conn, &sql, params)
    })
    .await
    .map_err(|e| sqlite::Error::Io(format!("internal runtime error: {e}")))?
}

fn to_sql(value: sqlite::Value) -> SqlValue {
    match value {
        sqlite::Value::Integer(i) => SqlValue::Integer(i),
        sqlite::Value::Real(f) => SqlValue::Real(f),
        sqlite::Value::Text(t) => SqlValue::Text(t),
        sqlite::Value::Blob(b) => SqlValue::Blob(b),
        sqlite::Value::Null => SqlValue::Null,
    }
}

fn from_sql(value: ValueRef<'_>) -> sqlite::Value {
    match value {
        ValueRef::Integer(i) => sqlite::Value::Integer(i),
        ValueRef::Real(f) => sqlite::Value::Real(f),
        ValueRef::Text(t) => sqlite::Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => sqlite::Value::Blob(b.to_vec()),
        ValueRef::Null => sqlite::Value::Null,
    }
}

/// Runs the first statement of `sql`, as Spin does: any further statements are silently ignored.
fn execute(
    conn: &rusqlite::Connection,
    sql: &str,
    params: Vec<sqlite::Value>,
) -> Result<sqlite::QueryResult, sqlite::Error> {
    let io = |e: rusqlite::Error| sqlite::Error::Io(e.to_string());
    {
        let mut batch = rusqlite::Batch::new(conn, sql);
        let Some(mut stmt) = batch.next().map_err(io)? else {
            return Ok(sqlite::QueryResult {
                columns: vec![],
                rows: vec![],
            });
        };
        let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let params: Vec<SqlValue> = params.into_iter().map(to_sql).collect();
        let mut out = Vec::new();
        {
            let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(io)?;
            while let Some(row) = rows.next().map_err(io)? {
                let values = (0..columns.len())
                    .map(|i| row.get_ref(i).map(from_sql))
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(io)?;
                out.push(sqlite::RowResult { values });
            }
        }
        warn_if_reprepared(&stmt, sql);
        Ok(sqlite::QueryResult { columns, rows: out })
    }
}

/// SQLite compiles a statement again on its first step when its plan depended on a bound
/// value: a parameter in `LIMIT`, or compared with a partial index's constant (SQLite's
/// `sqlite3VdbeSetVarmask`). Spin runs the same SQLite build, so such a statement is compiled
/// twice on every call there too: the host says so, once per statement text, so that a hot
/// path can be fixed (for example `LIMIT CAST(?1 AS INTEGER)`). Tests assert the line is absent.
/// (SQLite counts a re-prepare after another connection changed the schema too, such as a
/// migration racing the statement: rare, and the line names the statement.)
fn warn_if_reprepared(stmt: &rusqlite::Statement<'_>, sql: &str) {
    use std::collections::HashSet;
    use std::sync::LazyLock;
    static SEEN: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);
    if stmt.get_status(rusqlite::StatementStatus::RePrepare) == 0 {
        return;
    }
    let text: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Ok(mut seen) = SEEN.lock()
        && seen.insert(text.clone())
    {
        let head: String = text.chars().take(120).collect();
        eprintln!(
            "cfe-host: sqlite statement re-prepared on every call (a bound value shaped its plan): {head}"
        );
    }
}

/// Checks, at start-up, that every non-default store label a component declares is defined.
pub fn check_labels(kind: &str, declared: &[String], known: &dyn Fn(&str) -> bool) -> Result<()> {
    for label in declared {
        if !known(label) {
            bail!(
                "{kind} {label:?} is declared but not defined: only \"default\" exists unless a \
                 runtime config file (--runtime-config-file) defines it"
            );
        }
    }
    Ok(())
}
