//! `GET /v1/health` and the migration runner behind it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use api_tests::{assert_problem, json_body, spawn_app};
use domain::schema::{Migration, SchemaObject};

fn migrations_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations")
}

fn migration_count() -> i64 {
    std::fs::read_dir(migrations_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".sql")
        })
        .count() as i64
}

/// Every `migrations/*.sql`, in version order, parsed and split the way the app does it.
fn migration_files() -> Vec<Migration> {
    let mut names: Vec<String> = std::fs::read_dir(migrations_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|name| {
            let sql = std::fs::read_to_string(migrations_dir().join(name)).unwrap();
            // The app embeds its migrations as `&'static str`; a test can afford the leak.
            Migration::parse(name, Box::leak(sql.into_boxed_str()))
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

fn applied(db: &std::path::Path) -> Vec<(i64, String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn health_reports_ok_and_the_current_schema_version() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/v1/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body = json_body(resp).await;
    assert_eq!(
        body,
        serde_json::json!({ "status": "ok", "schema_version": migration_count() })
    );
}

#[tokio::test]
async fn concurrent_first_requests_apply_each_migration_exactly_once() {
    let app = spawn_app().await;
    let requests = (0..12).map(|_| app.client.get(app.url("/v1/health")).send());
    for resp in futures_join(requests).await {
        let resp = resp.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(json_body(resp).await["schema_version"], migration_count());
    }
    let rows = applied(&app.database_path());
    let versions: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(versions, (1..=migration_count()).collect::<Vec<_>>());
}

#[tokio::test]
async fn migrations_are_not_applied_again_after_a_restart() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(app.url("/v1/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let before = applied(&app.database_path());
    let api_tests::SpawnedApp {
        app,
        systeme: _systeme,
    } = app;
    let app = tokio::task::spawn_blocking(move || app.restart())
        .await
        .unwrap();
    assert_eq!(
        app.client
            .get(app.url("/v1/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(applied(&app.database_path()), before);
}

#[tokio::test]
async fn every_migration_statement_was_applied() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/v1/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let conn = app.db();
    let migrations = migration_files();
    // One `schema_migrations` row per file, with the file's version and name.
    let recorded: Vec<(i64, String)> = applied(&app.database_path())
        .into_iter()
        .map(|(version, name, _)| (version, name))
        .collect();
    let files: Vec<(i64, String)> = migrations
        .iter()
        .map(|m| (i64::from(m.version()), m.name().to_string()))
        .collect();
    assert_eq!(
        recorded, files,
        "schema_migrations against migrations/*.sql"
    );
    // Spin runs only the first statement of a string, so each statement must have been executed
    // on its own: replay what the files' schema statements say, in order, and check the result.
    let mut objects: BTreeMap<(&str, String), (bool, Option<String>, &str)> = BTreeMap::new();
    let mut columns: BTreeMap<(String, String), (bool, &str)> = BTreeMap::new();
    let statements: Vec<&str> = migrations.iter().flat_map(|m| m.statements()).collect();
    for stmt in &statements {
        match schema_change(stmt) {
            // Triggers and views are the schema files' (checked below), whatever migrations did.
            SchemaChange::Create { kind, .. } | SchemaChange::Drop { kind, .. }
                if kind == "trigger" || kind == "view" => {}
            SchemaChange::Create { kind, name, table } => {
                objects.insert((kind, name), (true, table, stmt));
            }
            SchemaChange::Drop { kind, name } => {
                if kind == "table" {
                    // SQLite drops the table's indexes, triggers and columns with it.
                    for (present, on_table, _) in objects.values_mut() {
                        if on_table.as_deref() == Some(name.as_str()) {
                            *present = false;
                        }
                    }
                    columns.retain(|(table, _), _| *table != name);
                }
                objects.insert((kind, name), (false, None, stmt));
            }
            SchemaChange::AddColumn { table, column } => {
                columns.insert((table, column), (true, stmt));
            }
            SchemaChange::DropColumn { table, column } => {
                columns.insert((table, column), (false, stmt));
            }
            SchemaChange::Data => {}
        }
    }
    assert!(
        objects.values().filter(|(present, _, _)| *present).count() > 0,
        "no schema objects found in {} statements",
        statements.len()
    );
    for ((kind, name), (present, _, stmt)) in &objects {
        let found: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = ?1 AND name = ?2 COLLATE NOCASE",
                [*kind, name.as_str()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            found,
            i64::from(*present),
            "{kind} {name} should {}exist after:\n{stmt}",
            if *present { "" } else { "not " }
        );
    }
    assert_eq!(
        triggers_and_views(&conn),
        schema_files(),
        "the database's triggers and views against schema/default/triggers/"
    );
    for ((table, column), (present, stmt)) in &columns {
        let found: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2 COLLATE NOCASE",
                [table.as_str(), column.as_str()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            found,
            i64::from(*present),
            "column {table}.{column} should {}exist after:\n{stmt}",
            if *present { "" } else { "not " }
        );
    }
}

/// Every `schema/default/triggers/*.sql`: name → the statement SQLite stores (from `CREATE` on).
fn schema_files() -> BTreeMap<String, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/default/triggers");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|path| {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let sql = std::fs::read_to_string(&path).unwrap();
            let object = SchemaObject::parse(&file, Box::leak(sql.into_boxed_str()))
                .unwrap_or_else(|e| panic!("{e}"));
            let stored = object.statement();
            let create = stored.find("CREATE").unwrap();
            (object.name().to_string(), stored[create..].to_string())
        })
        .collect()
}

/// The database's triggers and views: name → stored SQL.
fn triggers_and_views(conn: &rusqlite::Connection) -> BTreeMap<String, String> {
    rows(
        conn,
        "SELECT name, sql FROM sqlite_master WHERE type IN ('trigger', 'view')",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .into_iter()
    .collect()
}

/// Every schema object but the runner's own bookkeeping table: (type, name, table, SQL).
fn schema_of(db: &Path) -> Vec<(String, String, String, Option<String>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    rows(
        &conn,
        "SELECT type, name, tbl_name, sql FROM sqlite_master
         WHERE tbl_name != 'schema_migrations' ORDER BY type, name",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}

/// A database at version 1 holding a tenant, and a trigger no schema file defines, is migrated
/// by the app to exactly the schema a fresh database gets: same tables, columns, indexes and
/// triggers, the leftover trigger gone, the tenant kept.
#[tokio::test]
async fn a_database_migrated_from_the_first_migration_has_a_fresh_ones_schema() {
    let fresh = spawn_app().await;
    let health = fresh
        .client
        .get(fresh.url("/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let old = spawn_app().await;
    {
        let conn = rusqlite::Connection::open(old.database_path()).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL,
                name TEXT NOT NULL,
                applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
        )
        .unwrap();
        let first = &migration_files()[0];
        for stmt in first.statements() {
            conn.execute_batch(stmt)
                .unwrap_or_else(|e| panic!("{e}: {stmt}"));
        }
        conn.execute(
            "INSERT INTO schema_migrations VALUES (1, ?1, '2026-01-01T00:00:00Z')",
            [first.name()],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO tenants (id, name, email, tag_prefix, plan, created_at, updated_at)
             VALUES ('ten_old', 'Old IB', 'old@example.com', 'old', 'starter',
                '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
             CREATE TRIGGER leftover AFTER UPDATE ON tenants BEGIN SELECT 1; END;",
        )
        .unwrap();
    }
    let health = old.client.get(old.url("/v1/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(json_body(health).await["schema_version"], migration_count());

    let (migrated, created) = (
        schema_of(&old.database_path()),
        schema_of(&fresh.database_path()),
    );
    assert!(created.iter().any(|(kind, ..)| kind == "trigger"));
    assert_eq!(migrated, created);
    let tenants: i64 = old
        .db()
        .query_row(
            "SELECT COUNT(*) FROM tenants WHERE id = 'ten_old'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tenants, 1);
}

/// What one migration statement does to the schema.
#[derive(Debug, PartialEq)]
enum SchemaChange {
    /// `CREATE TABLE | INDEX | TRIGGER | VIEW`; `table` is what an index or trigger is on.
    Create {
        kind: &'static str,
        name: String,
        table: Option<String>,
    },
    Drop {
        kind: &'static str,
        name: String,
    },
    AddColumn {
        table: String,
        column: String,
    },
    DropColumn {
        table: String,
        column: String,
    },
    /// `INSERT`, `UPDATE` and the like: nothing in `sqlite_master` to check.
    Data,
}

/// Reads the kind and names a schema statement acts on from its first words.
fn schema_change(stmt: &str) -> SchemaChange {
    let words = leading_words(stmt, 64);
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or_default();
    let is = |i: usize, keyword: &str| word(i).eq_ignore_ascii_case(keyword);
    let object_kind = |i: usize| -> &'static str {
        match word(i).to_ascii_uppercase().as_str() {
            "TABLE" => "table",
            "INDEX" => "index",
            "TRIGGER" => "trigger",
            "VIEW" => "view",
            _ => panic!("unknown schema object in migration statement (teach this test):\n{stmt}"),
        }
    };
    if is(0, "CREATE") {
        let mut i = 1;
        while ["TEMP", "TEMPORARY", "UNIQUE", "VIRTUAL"]
            .iter()
            .any(|k| is(i, k))
        {
            i += 1;
        }
        let kind = object_kind(i);
        i += 1;
        if is(i, "IF") && is(i + 1, "NOT") && is(i + 2, "EXISTS") {
            i += 3;
        }
        let name = word(i).to_ascii_lowercase();
        let table = match kind {
            "index" | "trigger" => {
                let on = (i + 1..words.len())
                    .find(|&j| is(j, "ON"))
                    .unwrap_or_else(|| panic!("no ON <table> in:\n{stmt}"));
                Some(word(on + 1).to_ascii_lowercase())
            }
            _ => None,
        };
        SchemaChange::Create { kind, name, table }
    } else if is(0, "DROP") {
        let kind = object_kind(1);
        let i = if is(2, "IF") && is(3, "EXISTS") { 4 } else { 2 };
        SchemaChange::Drop {
            kind,
            name: word(i).to_ascii_lowercase(),
        }
    } else if is(0, "ALTER") && is(1, "TABLE") {
        let table = word(2).to_ascii_lowercase();
        let column_at = if is(4, "COLUMN") { 5 } else { 4 };
        let column = word(column_at).to_ascii_lowercase();
        if is(3, "ADD") {
            SchemaChange::AddColumn { table, column }
        } else if is(3, "DROP") {
            SchemaChange::DropColumn { table, column }
        } else {
            panic!("ALTER TABLE other than ADD/DROP COLUMN (teach this test):\n{stmt}")
        }
    } else {
        SchemaChange::Data
    }
}

/// Up to `n` leading words of a statement: comments skipped, identifiers unquoted, a
/// `schema.name` reduced to `name`, and `(` `)` `,` `;` as separators.
fn leading_words(stmt: &str, n: usize) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = stmt;
    while words.len() < n {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || "(),;".contains(c));
        if rest.is_empty() {
            break;
        }
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
            continue;
        }
        if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
            continue;
        }
        let first = rest.chars().next().unwrap_or_default();
        let close = match first {
            '"' => Some('"'),
            '`' => Some('`'),
            '[' => Some(']'),
            _ => None,
        };
        let (word, after) = match close {
            Some(close) => {
                let inner = rest.get(1..).unwrap_or_default();
                let end = inner.find(close).unwrap_or(inner.len());
                (
                    inner.get(..end).unwrap_or_default(),
                    inner.get(end + 1..).unwrap_or_default(),
                )
            }
            None => {
                let end = rest
                    .find(|c: char| c.is_whitespace() || "(),;".contains(c))
                    .unwrap_or(rest.len());
                let word = rest.get(..end).unwrap_or_default();
                let word = word.rsplit_once('.').map_or(word, |(_, name)| name);
                (word, rest.get(end..).unwrap_or_default())
            }
        };
        words.push(word.to_string());
        rest = after;
    }
    words
}

#[test]
fn schema_statements_name_what_they_change() {
    let create = |kind, name: &str, table: Option<&str>| SchemaChange::Create {
        kind,
        name: name.into(),
        table: table.map(Into::into),
    };
    assert_eq!(
        schema_change("-- a comment\nCREATE TABLE IF NOT EXISTS \"Leads\" (id TEXT)"),
        create("table", "leads", None)
    );
    assert_eq!(
        schema_change("CREATE UNIQUE INDEX main.t_e ON t (e)"),
        create("index", "t_e", Some("t"))
    );
    assert_eq!(
        schema_change("CREATE TRIGGER x AFTER UPDATE OF a, b ON [t] WHEN 1 BEGIN SELECT 1; END"),
        create("trigger", "x", Some("t"))
    );
    assert_eq!(
        schema_change("/* why */ DROP INDEX IF EXISTS old"),
        SchemaChange::Drop {
            kind: "index",
            name: "old".into()
        }
    );
    assert_eq!(
        schema_change("ALTER TABLE t ADD COLUMN c TEXT"),
        SchemaChange::AddColumn {
            table: "t".into(),
            column: "c".into()
        }
    );
    assert_eq!(
        schema_change("ALTER TABLE t ADD c TEXT"),
        SchemaChange::AddColumn {
            table: "t".into(),
            column: "c".into()
        }
    );
    assert_eq!(schema_change("INSERT INTO t SELECT 1"), SchemaChange::Data);
}

#[tokio::test]
async fn a_wrong_method_is_a_problem_json_405() {
    let app = spawn_app().await;
    let resp = app.client.post(app.url("/v1/health")).send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "GET");
    assert_problem(resp, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn a_path_no_route_matches_is_spins_empty_404() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.text().await.unwrap(), "");
}

async fn futures_join<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Every row `sql` returns, read by `row`.
fn rows<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], row)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Migration 0013 moves each lead's first timeline entry from `lead_events` into the lead's
/// row: on a database at version 12 holding a captured lead, a lead Systeme.io created and an
/// event (the timeline rows as version 12's triggers wrote them), nothing of the timeline is lost
/// and nothing is left twice; with the current triggers, a lead inserted the old way afterwards
/// still gets its entry.
#[test]
fn migration_0013_moves_first_timeline_entries_into_the_lead_rows() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let apply = |conn: &rusqlite::Connection, m: &Migration| {
        for stmt in m.statements() {
            conn.execute_batch(stmt)
                .unwrap_or_else(|e| panic!("{e}: {stmt}"));
        }
    };
    let (before, after): (Vec<_>, Vec<_>) = migration_files()
        .into_iter()
        .partition(|m| m.version() < 13);
    before.iter().for_each(|m| apply(&conn, m));
    conn.execute_batch(
        "INSERT INTO tenants (id, name, email, tag_prefix, plan, created_at, updated_at)
             VALUES ('t1', 'T', 't@example.com', 'p1-', 'pro', '2026', '2026');
         INSERT INTO leads (tenant_id, id, email, form, tags, sync_status, created_at, updated_at)
             VALUES ('t1', 'l1', 'a@example.com', 'landing', '[\"p1-a\"]', 'pending', 'T1', 'T1');
         INSERT INTO leads (tenant_id, id, email, form, tags, source, sync_status, created_at, updated_at)
             VALUES ('t1', 'l2', 'b@example.com', 'systeme', '[]', 'systeme', 'synced', 'T2', 'T2');
         INSERT INTO lead_events (tenant_id, lead_id, kind, detail, created_at) VALUES
             ('t1', 'l1', 'captured', '{\"form\":\"landing\",\"tags\":[\"p1-a\"]}', 'T1'),
             ('t1', 'l2', 'systeme_contact', '{\"form\":\"systeme\",\"tags\":[]}', 'T2'),
             ('t1', 'l1', 'tag_added', '{\"tag\":\"p1-b\"}', 'T3');
         UPDATE leads SET form = 'webinar' WHERE id = 'l1';",
    )
    .unwrap();
    after.iter().for_each(|m| apply(&conn, m));
    // As the runner does after migrating: the current triggers.
    for create in schema_files().values() {
        conn.execute_batch(create)
            .unwrap_or_else(|e| panic!("{e}: {create}"));
    }
    let firsts: Vec<(String, Option<String>)> = rows(
        &conn,
        "SELECT id, first_event FROM leads ORDER BY id",
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    assert_eq!(
        firsts,
        [
            (
                "l1".into(),
                Some(r#"{"form":"landing","tags":["p1-a"]}"#.into())
            ),
            ("l2".into(), Some(r#"{"form":"systeme","tags":[]}"#.into())),
        ]
    );
    let events: Vec<(String, String)> = rows(
        &conn,
        "SELECT lead_id, kind FROM lead_events ORDER BY id",
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    assert_eq!(events, [("l1".into(), "tag_added".into())]);

    // During a rolling deploy a replica still on the old code inserts leads without
    // `first_event`: their first entry is still written, as a timeline row. The new code's
    // insert writes none.
    conn.execute_batch(
        "INSERT INTO leads (tenant_id, id, email, form, tags, sync_status, created_at, updated_at)
             VALUES ('t1', 'l3', 'c@example.com', 'old-replica', '[]', 'pending', 'T4', 'T4');
         INSERT INTO leads (tenant_id, id, email, form, tags, sync_status, created_at, updated_at,
                 first_event)
             VALUES ('t1', 'l4', 'd@example.com', 'new', '[]', 'pending', 'T5', 'T5',
                 '{\"form\":\"new\",\"tags\":[]}');",
    )
    .unwrap();
    let old_way: Vec<(String, String, String)> = rows(
        &conn,
        "SELECT lead_id, kind, detail FROM lead_events WHERE lead_id IN ('l3', 'l4')",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    );
    assert_eq!(
        old_way,
        [(
            "l3".into(),
            "captured".into(),
            r#"{"form":"old-replica","tags":[]}"#.into()
        )]
    );
}
