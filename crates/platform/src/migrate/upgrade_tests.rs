//! The runner on a real SQLite database: a database migrated from scratch and one migrated
//! step by step end with the same schema, and an older database's rows, written through the
//! triggers of its day, survive the upgrade while new writes fire the current triggers.
//!
//! The database is an in-memory SQLite (rusqlite, the library the local host runs), driven
//! through the same [`Sql`] interface as Spin's connection.

use std::cell::RefCell;
use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use domain::schema::split_statements;
use rusqlite::types::{Value as Native, ValueRef};
use serde_json::{Value as Json, json};
use spin_sdk::sqlite::Value;

use super::{
    SCHEMA_MIGRATIONS, Sql, apply_pending, execute_one, latest_version, migrate, schema_objects,
};

/// An in-memory SQLite database, with the statements run on it.
struct Sqlite {
    db: rusqlite::Connection,
    log: RefCell<Vec<String>>,
    /// A statement that contains this fails, as a backend's error would.
    fail_on: Option<&'static str>,
}

impl Sqlite {
    fn new() -> Self {
        Self {
            db: rusqlite::Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}")),
            log: RefCell::new(Vec::new()),
            fail_on: None,
        }
    }

    /// One statement, its rows as JSON values (a blob as hex).
    fn call(&self, sql: &str, params: &[Json]) -> Result<Vec<Vec<Json>>> {
        self.log.borrow_mut().push(sql.to_string());
        if self.fail_on.is_some_and(|needle| sql.contains(needle)) {
            bail!("injected failure on `{sql}`");
        }
        let params = params
            .iter()
            .map(|p| match p {
                Json::Null => Native::Null,
                Json::Number(n) => n
                    .as_i64()
                    .map_or_else(|| Native::Real(n.as_f64().unwrap_or(0.0)), Native::Integer),
                Json::String(text) => Native::Text(text.clone()),
                other => Native::Text(other.to_string()),
            })
            .collect::<Vec<_>>();
        let mut statement = self
            .db
            .prepare(sql)
            .map_err(|e| anyhow!("{e} in `{sql}`"))?;
        let width = statement.column_count();
        let rows = statement
            .query_map(rusqlite::params_from_iter(params), |row| {
                (0..width)
                    .map(|i| {
                        Ok(match row.get_ref(i)? {
                            ValueRef::Null => Json::Null,
                            ValueRef::Integer(n) => json!(n),
                            ValueRef::Real(x) => json!(x),
                            ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                            ValueRef::Blob(b) => {
                                json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>())
                            }
                        })
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(|e| anyhow!("{e} in `{sql}`"))?;
        Ok(rows)
    }

    /// Every statement of `script`, or a panic naming the one that failed.
    fn run(&self, script: &str) {
        for statement in split_statements(script) {
            self.call(statement, &[])
                .unwrap_or_else(|e| panic!("{e:#}"));
        }
    }

    fn query(&self, sql: &str) -> Vec<Vec<Json>> {
        self.call(sql, &[]).unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn number(&self, sql: &str) -> i64 {
        self.query(sql)
            .first()
            .and_then(|row| row.first())
            .and_then(Json::as_i64)
            .unwrap_or_else(|| panic!("no number from `{sql}`"))
    }

    /// `sqlite_master`: (type, name, table, SQL) of every schema object.
    fn schema(&self) -> Vec<Vec<Json>> {
        self.query("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
    }

    /// The first column of every row `sql` returns, as text.
    fn texts(&self, sql: &str) -> Vec<String> {
        self.query(sql)
            .into_iter()
            .filter_map(|row| row.first().and_then(Json::as_str).map(String::from))
            .collect()
    }

    /// The names of the schema's objects of one kind (`table`, `trigger`, `view`).
    fn names(&self, kind: &str) -> Vec<String> {
        self.texts(&format!(
            "SELECT name FROM sqlite_master WHERE type = '{kind}' ORDER BY name"
        ))
    }

    fn columns(&self, table: &str) -> Vec<String> {
        self.texts(&format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
        ))
    }

    /// Every table's rows (but the runner's own record), in a stable order.
    fn data(&self) -> BTreeMap<String, Vec<Vec<Json>>> {
        self.names("table")
            .into_iter()
            .filter(|t| t != "schema_migrations" && t != "sqlite_sequence")
            .map(|table| {
                let columns = self.columns(&table).join(", ");
                let rows = self.query(&format!("SELECT {columns} FROM {table} ORDER BY {columns}"));
                (table, rows)
            })
            .collect()
    }

    /// The database as an older build left it: migrations 1 to `version` applied and recorded.
    fn at_version(version: u32) -> Self {
        let db = Self::new();
        db.run("BEGIN IMMEDIATE");
        execute_one(&db, SCHEMA_MIGRATIONS, &[]).unwrap_or_else(|e| panic!("{e:#}"));
        let reached = apply_pending(&db, 0, version).unwrap_or_else(|e| panic!("{e:#}"));
        db.run("COMMIT");
        assert_eq!(reached, version);
        db
    }
}

impl Sql for Sqlite {
    fn rows(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>> {
        let params = params
            .iter()
            .map(|value| match value {
                Value::Integer(n) => Ok(json!(n)),
                Value::Real(x) => Ok(json!(x)),
                Value::Text(text) => Ok(json!(text)),
                Value::Null => Ok(Json::Null),
                Value::Blob(_) => Err(anyhow!("no blobs in the runner's statements")),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(self
            .call(sql, &params)?
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|value| match value {
                        Json::Number(n) => n
                            .as_i64()
                            .map_or_else(|| Value::Real(n.as_f64().unwrap_or(0.0)), Value::Integer),
                        Json::String(text) => Value::Text(text),
                        _ => Value::Null,
                    })
                    .collect()
            })
            .collect())
    }

    fn in_write_transaction<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        self.call("BEGIN IMMEDIATE", &[])?;
        match work() {
            Ok(done) => {
                self.call("COMMIT", &[])?;
                Ok(done)
            }
            Err(e) => {
                self.call("ROLLBACK", &[])?;
                Err(e)
            }
        }
    }
}

/// Triggers and a view no schema file defines, as an older version may have left: were they
/// still there while migrations run, every backfill and every recorded migration would move
/// the counts.
const STALE: &str = "
CREATE TRIGGER stale_migration_recorded AFTER INSERT ON schema_migrations
BEGIN
    UPDATE lead_facets SET n = n + 1000;
END;
CREATE TRIGGER stale_lead_updated AFTER UPDATE ON leads
BEGIN
    UPDATE daily_rollups SET leads = leads + 1000;
END;
CREATE TRIGGER stale_event_deleted AFTER DELETE ON lead_events
BEGIN
    UPDATE tenants SET lead_count = -1;
END;
CREATE VIEW stale_view AS SELECT id FROM leads;
";

#[test]
fn a_database_migrated_step_by_step_has_the_schema_of_one_migrated_from_scratch() {
    let scratch = Sqlite::new();
    assert_eq!(
        migrate(&scratch).unwrap_or_else(|e| panic!("{e:#}")),
        latest_version()
    );
    let expected = scratch.schema();
    let objects = schema_objects().unwrap_or_else(|e| panic!("{e}"));
    let mut names: Vec<String> = objects.iter().map(|o| o.name().to_string()).collect();
    names.sort();
    assert_eq!(scratch.names("trigger"), names);

    // Either side of each backfill that reads leads (0004, 0013), of 0009 and of 0016, and the
    // version before the latest.
    for version in [1, 3, 4, 9, 12, 13, 15, 16, latest_version() - 1] {
        let db = Sqlite::at_version(version);
        if version >= 4 {
            db.run(STALE);
        }
        assert_eq!(
            migrate(&db).unwrap_or_else(|e| panic!("from version {version}: {e:#}")),
            latest_version()
        );
        assert_eq!(db.schema(), expected, "migrated from version {version}");
    }
}

#[test]
fn a_database_at_the_latest_version_is_left_alone() {
    let db = Sqlite::new();
    migrate(&db).unwrap_or_else(|e| panic!("{e:#}"));
    db.log.borrow_mut().clear();
    assert_eq!(
        migrate(&db).unwrap_or_else(|e| panic!("{e:#}")),
        latest_version()
    );
    assert_eq!(
        *db.log.borrow(),
        ["SELECT MAX(version) FROM schema_migrations"]
    );
}

#[test]
fn the_deliveries_attempted_today_become_the_days_count_of_attempts() {
    let db = Sqlite::at_version(18);
    db.run(
        r#"
        INSERT INTO tenants (id, name, email, tag_prefix, plan, created_at, updated_at)
            VALUES ('t1', 'One', 'one@example.com', 'p1-', 'pro', '2026-01-01T00:00:00Z',
                '2026-01-01T00:00:00Z'),
            ('t2', 'Two', 'two@example.com', 'p2-', 'pro', '2026-01-01T00:00:00Z',
                '2026-01-01T00:00:00Z');
        INSERT INTO alert_deliveries (tenant_id, id, rule_id, event, status, attempts,
                last_attempt_at, created_at)
            VALUES ('t1', 'm1', 'r1', 'lead.captured', 'delivered', 1, CAST(strftime('%s') AS INTEGER),
                '2026-01-02T00:00:00Z'),
            ('t1', 'm2', 'r1', 'lead.captured', 'pending', 2, CAST(strftime('%s') AS INTEGER),
                '2026-01-02T00:00:00Z'),
            ('t1', 'm3', 'r1', 'lead.captured', 'delivered', 1,
                CAST(strftime('%s', 'now', '-2 days') AS INTEGER), '2026-01-02T00:00:00Z'),
            ('t2', 'm4', 'r2', 'lead.captured', 'pending', 0, NULL, '2026-01-02T00:00:00Z');
        "#,
    );
    migrate(&db).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        db.number("SELECT n FROM alert_attempts WHERE tenant_id = 't1' AND day = date('now')"),
        2
    );
    assert_eq!(db.number("SELECT count(*) FROM alert_attempts"), 1);
}

/// Rows as the triggers of versions 12 to 17 wrote them: two tenants; a captured lead and a lead
/// Systeme.io created, with their counts, rollups, facets and rate window; a callback applied;
/// a funnel; an erased lead's tombstone. Before version 13 a lead's first timeline entry is a
/// `lead_events` row; from 13 a capture keeps it in the lead's `first_event`.
fn populate(db: &Sqlite, version: u32) {
    db.run(
        r#"
        INSERT INTO tenants (id, name, email, tag_prefix, plan, lead_count, funnel_ids, version,
                created_at, updated_at)
            VALUES ('t1', 'One', 'one@example.com', 'p1-', 'pro', 2, '[101]', 3,
                '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),
            ('t2', 'Two', 'two@example.com', 'p2-', 'starter', 0, '[]', 1,
                '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
        INSERT INTO tenant_funnels (funnel_id, tenant_id) VALUES (101, 't1');
        INSERT INTO leads (tenant_id, id, email, name, form, tags, source, stage, sync_status,
                client, volume, utm_source, revision, event_seq, emails_opened, created_at,
                updated_at)
            VALUES ('t1', 'l1', 'a@example.com', 'A', 'landing', '["p1-a"]', 'capture', 'engaged',
                'pending', '203.0.113.1', 'high', 'google', 1, 1, 1, '2026-01-02T10:00:00Z',
                '2026-01-02T11:00:00Z'),
            ('t1', 'l2', 'b@example.com', NULL, 'systeme', '[]', 'systeme', 'new', 'synced',
                NULL, NULL, NULL, 0, 0, 0, '2026-01-02T12:00:00Z', '2026-01-02T12:00:00Z');
        INSERT INTO lead_events (tenant_id, lead_id, kind, detail, created_at)
            VALUES ('t1', 'l2', 'systeme_contact', '{"form":"systeme","tags":[]}',
                '2026-01-02T12:00:00Z');
        INSERT INTO lead_events (tenant_id, lead_id, kind, detail, message_id, created_at)
            VALUES ('t1', 'l1', 'email_opened', '{}', 'm1', '2026-01-02T11:00:00Z');
        INSERT INTO applied_events (tenant_id, message_id, event, applied_at, digest)
            VALUES ('t1', 'm1', 'MAIL_OPENED', '2026-01-02T11:00:00Z', 'd1');
        INSERT INTO daily_rollups (tenant_id, day, leads, emails_opened)
            VALUES ('t1', '2026-01-02', 2, 1);
        INSERT INTO lead_facets (tenant_id, facet, value, n) VALUES
            ('t1', 'stage', 'new', 1), ('t1', 'stage', 'engaged', 1),
            ('t1', 'sync', 'pending', 1), ('t1', 'sync', 'synced', 1),
            ('t1', 'ib_type', '', 2), ('t1', 'volume', 'high', 1), ('t1', 'volume', '', 1),
            ('t1', 'utm_source', 'google', 1), ('t1', 'utm_source', '', 1);
        INSERT INTO capture_rate (tenant_id, client, window_start, hits)
            VALUES ('t1', '203.0.113.1', 1767348000, 1);
        INSERT INTO erased_leads (tenant_id, email_hash, lead_id, erased_at)
            VALUES ('t1', 'hash-of-gone', 'l0', '2026-01-01T09:00:00Z');
        "#,
    );
    if version < 13 {
        db.run(
            r#"INSERT INTO lead_events (tenant_id, lead_id, kind, detail, created_at)
                VALUES ('t1', 'l1', 'captured', '{"form":"landing","tags":["p1-a"]}',
                    '2026-01-02T10:00:00Z')"#,
        );
    } else {
        db.run(r#"UPDATE leads SET first_event = '{"form":"landing","tags":["p1-a"]}' WHERE id = 'l1'"#);
    }
    if version >= 15 {
        db.run("INSERT INTO tenant_sync_rules (tenant_id, sync_requires_consent) VALUES ('t1', 1)");
    }
    if version >= 17 {
        db.run("INSERT INTO tenant_spam_rules (tenant_id, min_fill_seconds) VALUES ('t1', 3)");
    }
}

#[test]
fn an_older_databases_rows_survive_the_upgrade_and_new_writes_fire_the_current_triggers() {
    for version in [12, 13, 17] {
        let db = Sqlite::at_version(version);
        populate(&db, version);
        db.run(STALE);
        let before = db.data();
        let columns: BTreeMap<String, Vec<String>> = before
            .keys()
            .map(|table| (table.clone(), db.columns(table)))
            .collect();

        assert_eq!(
            migrate(&db).unwrap_or_else(|e| panic!("{e:#}")),
            latest_version()
        );

        // Every row is kept as it was, in the columns it had; version 13 moved each lead's
        // first timeline entry into the lead's row.
        for (table, rows) in &before {
            let listed = columns.get(table).map(|c| c.join(", ")).unwrap_or_default();
            let mut rows = rows.clone();
            if version < 13 && table == "lead_events" {
                rows.retain(|row| {
                    !matches!(
                        row.get(3).and_then(Json::as_str),
                        Some("captured" | "systeme_contact")
                    )
                });
            }
            assert_eq!(
                db.query(&format!("SELECT {listed} FROM {table} ORDER BY {listed}")),
                rows,
                "{table}, from version {version}"
            );
        }
        assert_eq!(
            db.query("SELECT id, first_event FROM leads ORDER BY id"),
            [
                vec![json!("l1"), json!(r#"{"form":"landing","tags":["p1-a"]}"#)],
                vec![
                    json!("l2"),
                    if version < 13 {
                        json!(r#"{"form":"systeme","tags":[]}"#)
                    } else {
                        Json::Null
                    }
                ],
            ],
            "from version {version}"
        );
        assert!(db.names("view").is_empty());
        assert!(!db.names("trigger").iter().any(|t| t.starts_with("stale_")));

        // A capture's INSERT, as lead-capture writes it, fires the current triggers.
        db.run(
            r#"
            INSERT INTO alert_rules (tenant_id, id, name, event, volume, url, format, created_at,
                    updated_at)
                VALUES ('t1', 'r1', 'High volume', 'lead.captured', 'high', 'https://example.com/h',
                    'json', '2026-01-03T00:00:00Z', '2026-01-03T00:00:00Z');
            INSERT INTO leads (tenant_id, id, email, name, form, tags, source, sync_status, client,
                    volume, utm_source, first_event, created_at, updated_at)
                VALUES ('t1', 'l3', 'c@example.com', 'C', 'landing', '["p1-a"]', 'capture',
                    'pending', '203.0.113.9', 'high', 'google',
                    '{"form":"landing","tags":["p1-a"]}', '2026-01-02T13:00:00Z',
                    '2026-01-02T13:00:00Z');
            UPDATE tenants SET name = 'One Renamed', updated_at = '2026-01-03T00:00:00Z'
                WHERE id = 't1';
            "#,
        );
        let n = |sql: &str| db.number(sql);
        assert_eq!(n("SELECT lead_count FROM tenants WHERE id = 't1'"), 3);
        assert_eq!(n("SELECT version FROM tenants WHERE id = 't1'"), 4);
        assert_eq!(
            n("SELECT leads FROM daily_rollups WHERE tenant_id = 't1' AND day = '2026-01-02'"),
            3
        );
        for (facet, value, count) in [
            ("stage", "new", 2),
            ("sync", "pending", 2),
            ("volume", "high", 2),
            ("utm_source", "google", 2),
            ("ib_type", "", 3),
        ] {
            assert_eq!(
                n(&format!(
                    "SELECT n FROM lead_facets WHERE tenant_id = 't1' AND facet = '{facet}' \
                     AND value = '{value}'"
                )),
                count,
                "{facet} = {value:?}, from version {version}"
            );
        }
        assert_eq!(
            n("SELECT hits FROM capture_rate WHERE client = '203.0.113.9'"),
            1
        );
        assert_eq!(
            n("SELECT COUNT(*) FROM lead_events WHERE lead_id = 'l3'"),
            0
        );
        assert_eq!(
            n("SELECT COUNT(*) FROM alert_deliveries WHERE rule_id = 'r1' AND lead_id = 'l3'"),
            1
        );
    }
}

#[test]
fn a_failed_migration_changes_nothing() {
    let mut db = Sqlite::at_version(13);
    populate(&db, 13);
    db.run(STALE);
    let (schema, data) = (db.schema(), db.data());
    db.fail_on = Some("CREATE TABLE alert_runner");
    let error = migrate(&db)
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(error.contains("applying migration 0018_alerts"), "{error}");
    assert_eq!(
        db.schema(),
        schema,
        "the stale triggers are back, nothing else is new"
    );
    assert_eq!(db.data(), data);
    assert_eq!(db.number("SELECT MAX(version) FROM schema_migrations"), 13);

    db.fail_on = None;
    assert_eq!(
        migrate(&db).unwrap_or_else(|e| panic!("{e:#}")),
        latest_version()
    );
}
