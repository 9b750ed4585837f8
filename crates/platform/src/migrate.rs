//! Applies `migrations/NNNN_name.sql` automatically, each exactly once, safely under races.
//!
//! Request paths do not ask: a statement that finds a table or column missing migrates and
//! retries ([`crate::db::Db::execute`]); the readiness probe and the operator's batch migrate
//! up front. When asked, the fast path is one `SELECT MAX(version)`. Slow path (a fresh or older database):
//! `BEGIN IMMEDIATE` takes SQLite's write lock, so a racing request waits (busy timeout) and
//! then finds the work done; every trigger and view is dropped, so no migration's backfill
//! fires a trigger of an older version; pending migrations run one statement per `execute`
//! call, each recorded in `schema_migrations`; then the triggers and views of
//! `schema/default/triggers/` (their one definition, as they are now) are created, and `COMMIT`
//! makes it all visible at once. A failure rolls back, so a half-applied migration is never
//! recorded and the triggers the database had are kept.
//!
//! Migrations therefore hold only tables, indexes and backfills. A change to a trigger file
//! comes with a new migration (which may hold only comments), so that databases at the previous
//! version get it; `schema/default/triggers.lock` pins the trigger files to the version that
//! last changed them, and a test fails when they differ.

use anyhow::{Context, Result};
use domain::schema::{Migration, SchemaObject};
use spin_sdk::sqlite::{Connection, Value};

use crate::connection::{Transaction, execute};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// The embedded migrations, parsed, in version order.
pub fn migrations() -> Result<Vec<Migration>> {
    embedded::MIGRATION_FILES
        .iter()
        .map(|(name, sql)| Migration::parse(name, sql).map_err(anyhow::Error::from))
        .collect()
}

/// The embedded triggers and views, parsed, sorted by name.
pub fn schema_objects() -> Result<Vec<SchemaObject>> {
    embedded::TRIGGER_FILES
        .iter()
        .map(|(name, sql)| SchemaObject::parse(name, sql).map_err(anyhow::Error::from))
        .collect()
}

/// The newest schema version this build knows.
pub fn latest_version() -> u32 {
    u32::try_from(embedded::MIGRATION_FILES.len()).unwrap_or(u32::MAX)
}

/// What the runner needs from a database: one statement per call, and one write transaction.
/// Spin's [`Connection`] is the one the app uses; the tests drive the same runner on another.
trait Sql {
    /// Runs one statement and returns its rows' values, column by column.
    fn rows(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>>;

    /// Runs `work` inside one write transaction (`BEGIN IMMEDIATE`): committed when it succeeds,
    /// rolled back when it fails.
    fn in_write_transaction<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T>;
}

impl Sql for Connection {
    fn rows(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>> {
        Ok(execute(self, sql, params)?
            .rows
            .into_iter()
            .map(|row| row.values)
            .collect())
    }

    fn in_write_transaction<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let transaction = Transaction::begin(self).context("locking the database to migrate")?;
        // A failure drops the guard, which rolls back: a half-applied migration is never recorded.
        let done = work()?;
        transaction.commit().context("committing migrations")?;
        Ok(done)
    }
}

/// The version recorded in `schema_migrations`; `None` when the table does not exist yet.
fn current_version(db: &impl Sql) -> Result<Option<u32>> {
    match db.rows("SELECT MAX(version) FROM schema_migrations", &[]) {
        Ok(rows) => {
            let version = match rows.first().and_then(|row| row.first()) {
                Some(Value::Integer(version)) => *version,
                _ => 0,
            };
            Ok(Some(
                u32::try_from(version).context("schema version out of range")?,
            ))
        }
        Err(e) if format!("{e:#}").contains("no such table") => Ok(None),
        Err(e) => Err(e).context("reading the schema version"),
    }
}

/// Whether `error` says the schema is older than the statement expects (a table or column
/// that a pending migration adds).
pub fn schema_is_behind(error: &anyhow::Error) -> bool {
    let text = format!("{error:#}");
    text.contains("no such table")
        || text.contains("no such column")
        || text.contains("has no column named")
}

/// Brings the database up to [`latest_version`] and returns the version it is at.
pub fn ensure_schema(conn: &Connection) -> Result<u32> {
    migrate(conn)
}

/// The runner's record of the migrations applied.
const SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))";

/// [`ensure_schema`] on any [`Sql`] database.
fn migrate(db: &impl Sql) -> Result<u32> {
    let latest = latest_version();
    if let Some(version) = current_version(db)?
        && version >= latest
    {
        return Ok(version);
    }
    prefer_wal(db);
    db.in_write_transaction(|| {
        execute_one(db, SCHEMA_MIGRATIONS, &[])?;
        let before = current_version(db)?.unwrap_or(0);
        if before >= latest {
            // A racing request migrated while this one waited for the lock.
            return Ok(before);
        }
        drop_triggers_and_views(db)?;
        let version = apply_pending(db, before, latest)?;
        create_triggers_and_views(db)?;
        Ok(version)
    })
}

/// Logs when the backend does not enforce foreign keys (Spin's local SQLite does; a libSQL
/// server may not). The app's integrity does not depend on them, but erasure cascades
/// (`lead_events.lead_id … ON DELETE CASCADE`) do, so an operator should know.
pub(crate) fn check_foreign_keys(conn: &Connection) {
    match conn.execute("PRAGMA foreign_keys", &[]) {
        Ok(result) if result.rows.first().and_then(|r| r.get::<i64>(0)) == Some(1) => {}
        Ok(_) => eprintln!(
            "sqlite: foreign_keys is off on this backend; erasing a lead will not cascade to \
             its timeline (see docs/storage.md)"
        ),
        Err(e) => eprintln!("sqlite: PRAGMA foreign_keys refused ({e:?}); continuing"),
    }
}

/// Switches a local database file to write-ahead logging, once, when it is first migrated: Spin
/// leaves SQLite in rollback-journal mode, where every write transaction costs several fsyncs
/// and readers wait for writers (about 0.5k against 4.5k inserts/s under Spin, docs/spin-behaviour.md). The
/// mode persists in the file. A backend without journal modes (libSQL over HTTP) refuses the
/// pragma; that is fine and only logged.
fn prefer_wal(db: &impl Sql) {
    match db.rows("PRAGMA journal_mode=WAL", &[]) {
        Ok(rows) => {
            let mode = match rows.first().and_then(|row| row.first()) {
                Some(Value::Text(mode)) => mode.as_str(),
                _ => "?",
            };
            if !mode.eq_ignore_ascii_case("wal") {
                eprintln!("sqlite: journal_mode stays {mode:?} (WAL not available)");
            }
        }
        Err(e) => eprintln!("sqlite: journal_mode=WAL refused ({e:#}); continuing"),
    }
}

/// Runs one statement whose rows, if any, are not needed.
fn execute_one(db: &impl Sql, sql: &str, params: &[Value]) -> Result<()> {
    db.rows(sql, params).map(drop)
}

/// Applies every migration newer than `version`, up to `up_to`, each recorded in
/// `schema_migrations`, and returns the version reached.
fn apply_pending(db: &impl Sql, mut version: u32, up_to: u32) -> Result<u32> {
    for migration in migrations()? {
        if migration.version() <= version || migration.version() > up_to {
            continue;
        }
        for statement in migration.statements() {
            execute_one(db, statement, &[]).with_context(|| {
                format!(
                    "applying migration {:04}_{}",
                    migration.version(),
                    migration.name()
                )
            })?;
        }
        execute_one(
            db,
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
            &[
                Value::Integer(i64::from(migration.version())),
                Value::Text(migration.name().into()),
            ],
        )?;
        version = migration.version();
    }
    Ok(version)
}

/// Drops every trigger and view the database has, whichever version created them.
fn drop_triggers_and_views(db: &impl Sql) -> Result<()> {
    let existing = db.rows(
        "SELECT type, name FROM sqlite_master WHERE type IN ('trigger', 'view')",
        &[],
    )?;
    for row in existing {
        let [Value::Text(kind), Value::Text(name)] = row.as_slice() else {
            continue;
        };
        let kind = if kind == "view" { "VIEW" } else { "TRIGGER" };
        let name = name.replace('"', "\"\"");
        execute_one(db, &format!("DROP {kind} IF EXISTS \"{name}\""), &[])
            .with_context(|| format!("dropping {kind} {name}"))?;
    }
    Ok(())
}

/// Creates the current triggers and views, from `schema/default/triggers/`.
fn create_triggers_and_views(db: &impl Sql) -> Result<()> {
    for object in schema_objects()? {
        execute_one(db, object.statement(), &[])
            .with_context(|| format!("creating {}", object.name()))?;
    }
    Ok(())
}

#[cfg(test)]
mod upgrade_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_parse_and_are_contiguous() {
        let all = migrations().unwrap_or_else(|e| panic!("{e}"));
        assert!(!all.is_empty());
        for (i, m) in all.iter().enumerate() {
            assert_eq!(m.version() as usize, i + 1);
        }
        assert_eq!(latest_version() as usize, all.len());
    }

    /// Triggers and views have one definition, their file in `schema/default/triggers/`: no
    /// migration creates or drops one (the runner drops them all before migrating).
    #[test]
    fn no_migration_states_a_trigger_or_view() {
        for migration in migrations().unwrap_or_else(|e| panic!("{e}")) {
            for statement in migration.statements() {
                let code: Vec<String> = statement
                    .lines()
                    .map(|l| l.split("--").next().unwrap_or_default())
                    .flat_map(str::split_whitespace)
                    .take(4)
                    .map(str::to_ascii_uppercase)
                    .collect();
                let verb = code.first().map(String::as_str);
                let states = matches!(verb, Some("CREATE" | "DROP"))
                    && code.iter().skip(1).any(|w| w == "TRIGGER" || w == "VIEW");
                assert!(
                    !states,
                    "migration {:04}_{} states a trigger or view; put it in \
                     schema/default/triggers/ instead:\n{statement}",
                    migration.version(),
                    migration.name()
                );
            }
        }
    }

    #[test]
    fn every_trigger_file_parses() {
        let objects = schema_objects().unwrap_or_else(|e| panic!("{e}"));
        assert!(objects.iter().any(|o| o.name() == "leads_inserted"));
    }

    /// The digest of the trigger files, as `schema/default/triggers.lock` records it.
    fn triggers_digest() -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for (name, sql) in embedded::TRIGGER_FILES {
            hash.update(name.as_bytes());
            hash.update([0]);
            hash.update(sql.as_bytes());
            hash.update([0]);
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// `schema/default/triggers.lock`, one line per change of the trigger files, oldest first:
    /// the migration version that brought the change, and the files' digest.
    #[test]
    fn a_trigger_change_comes_with_a_migration() {
        let lock: Vec<(u32, &str)> = include_str!("../../../schema/default/triggers.lock")
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (version, digest) = l.split_once(' ').unwrap_or((l, ""));
                (version.parse().unwrap_or(0), digest.trim())
            })
            .collect();
        for pair in lock.windows(2) {
            if let [(v1, _), (v2, _)] = pair {
                assert!(
                    v1 < v2,
                    "triggers.lock: versions must increase ({v1}, then {v2})"
                );
            }
        }
        let (latest, digest) = (latest_version(), triggers_digest());
        let (last_version, last_digest) = lock.last().copied().unwrap_or((0, ""));
        assert!(
            last_version <= latest,
            "triggers.lock names version {last_version}, which does not exist"
        );
        assert_eq!(
            last_digest, digest,
            "the trigger files changed since migration {last_version}: a database already at a \
             later version would keep the old triggers. Add a migration (it may hold only \
             comments), then append `<its version> {digest}` to schema/default/triggers.lock"
        );
    }
}
