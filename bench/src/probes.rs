//! The probe's one-statement ceilings against schema size. A host that opens a new SQLite
//! connection per request (Spin does) parses the whole schema before the first statement, so
//! the same one-row `SELECT` or `INSERT` costs more on a wider schema. The probe runs them on
//! four databases: table `t` alone, and `t` added to the `leads` table with its indexes, to the
//! app's schema without its triggers, and to the app's whole schema, taken from a database the
//! app migrated itself. Each database is the probe's `default` through a runtime config, in WAL
//! mode, as the app's own database is.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use api_tests::{AppSpec, HostKind, TestApp};
use rusqlite::Connection;

use crate::rounds::Measured;

/// One object of the app's migrated schema.
#[derive(Debug, Clone)]
pub struct SchemaObject {
    kind: String,
    name: String,
    table: String,
    sql: String,
}

/// Which app objects a probe database keeps.
type Keep = fn(&SchemaObject) -> bool;

/// The four schemas, narrowest first, and which app objects each keeps.
const SCHEMAS: [(&str, Keep); 4] = [
    ("one table", |_| false),
    ("`leads` + its indexes", |o| {
        o.table == "leads" && (o.kind == "table" || o.kind == "index")
    }),
    ("app schema without triggers", |o| o.kind != "trigger"),
    ("app schema", |_| true),
];

/// Spin 4.0.2's figures for the same probe (wrk, 16 connections, 8 s per scenario, 2 vCPUs), per
/// schema in the order of [`SCHEMAS`]: `SELECT` one row, then `INSERT` one row (WAL).
const SPIN: [[(f64, f64); 4]; 2] = [
    [
        (2_150.0, 2_530.0),
        (1_710.0, 1_800.0),
        (1_190.0, 1_440.0),
        (790.0, 840.0),
    ],
    [
        (1_190.0, 1_330.0),
        (980.0, 1_010.0),
        (815.0, 905.0),
        (610.0, 675.0),
    ],
];

/// The statements, as the probe's routes name them: (label, path, method, expected status).
pub const STATEMENTS: [(&str, &str, &str, u16); 2] = [
    ("`SELECT` one row", "/probe/t/select", "GET", 200),
    ("`INSERT` one row (WAL)", "/probe/t/insert", "POST", 201),
];

/// A database for the probe, with its runtime config, and the probe app serving it.
pub struct ProbeDb {
    pub label: &'static str,
    /// Schema objects a connection parses (table `t` and automatic indexes not counted).
    pub objects: i64,
    /// Bytes of their SQL text.
    pub bytes: i64,
    pub app: TestApp,
    _dir: tempfile::TempDir,
}

/// Migrates a fresh app database (one signup) and reads its schema back.
pub async fn app_schema() -> Result<Vec<SchemaObject>> {
    let app = tokio::task::spawn_blocking(|| {
        api_tests::spawn(&AppSpec::clientflow("http://127.0.0.1:9"))
    })
    .await?;
    app.create_tenant("Probe Schema").await;
    let conn = app.db();
    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema
         WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
         ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END,
                  rowid",
    )?;
    let objects = stmt
        .query_map([], |r| {
            Ok(SchemaObject {
                kind: r.get(0)?,
                name: r.get(1)?,
                table: r.get(2)?,
                sql: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
        .context("reading the app's schema")?;
    anyhow::ensure!(
        objects.iter().any(|o| o.name == "leads"),
        "the migrated app database has no leads table"
    );
    Ok(objects)
}

/// Builds the four databases and starts one probe on each.
pub async fn start(schema: &[SchemaObject]) -> Result<Vec<ProbeDb>> {
    let mut out = Vec::new();
    for (label, keep) in SCHEMAS {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("probe.db");
        let (objects, bytes) = build(&db, schema.iter().filter(|o| keep(o)))
            .with_context(|| format!("building the {label} database"))?;
        let config = dir.path().join("runtime-config.toml");
        std::fs::write(
            &config,
            format!(
                "[sqlite_database.default]\ntype = \"spin\"\npath = {:?}\n",
                db.to_str().context("a temp path that is not UTF-8")?
            ),
        )?;
        let spec = AppSpec::probe().with_runtime_config(&config, Some(&db));
        let app = tokio::task::spawn_blocking(move || api_tests::spawn(&spec)).await?;
        out.push(ProbeDb {
            label,
            objects,
            bytes,
            app,
            _dir: dir,
        });
    }
    Ok(out)
}

/// Creates `objects` and table `t` (one row) in a new WAL database; returns what a connection
/// parses besides `t`: object count and SQL bytes.
fn build<'a>(db: &Path, objects: impl Iterator<Item = &'a SchemaObject>) -> Result<(i64, i64)> {
    let conn = Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    for o in objects {
        conn.execute_batch(&o.sql)
            .with_context(|| format!("creating {} {}", o.kind, o.name))?;
    }
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
         INSERT INTO t (id, v) VALUES (1, 'x');",
    )?;
    let counted = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(sql)), 0) FROM sqlite_schema
         WHERE sql IS NOT NULL AND name <> 't'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(counted)
}

/// Where the probe scenarios' names point: `probe t: <statement>, <schema>`.
pub fn scenario_name(statement: &str, schema: &str) -> String {
    format!("probe {statement}, {schema}")
}

/// The probe table: this host's medians (and spread) beside Spin's figures, and their ratio.
pub fn report(host: &HostKind, dbs: &[ProbeDb], measured: &[Measured]) -> String {
    let host_name = match host {
        HostKind::Local(_) => "local host",
        HostKind::Spin(_) => "this Spin",
    };
    let mut out = String::new();
    let _ = write!(out, "| probe: one statement per request |");
    for db in dbs {
        if db.objects == 0 {
            let _ = write!(out, " {} |", db.label);
        } else {
            let _ = write!(
                out,
                " {} ({} objects, {:.1} KB) |",
                db.label,
                db.objects,
                db.bytes as f64 / 1024.0
            );
        }
    }
    let _ = writeln!(out, "\n| --- |{}", " ---: |".repeat(dbs.len()));
    for (s, (statement, ..)) in STATEMENTS.iter().enumerate() {
        let cells: Vec<_> = dbs
            .iter()
            .map(|db| {
                let name = scenario_name(statement, db.label);
                measured.iter().find(|m| m.name == name)
            })
            .collect();
        let _ = write!(out, "| {statement}, {host_name} |");
        for cell in &cells {
            let _ = write!(out, " {} |", cell.map_or("n/a".into(), |m| m.rps().whole()));
        }
        let _ = write!(out, "\n| {statement}, Spin 4.0.2 |");
        for (lo, hi) in SPIN[s].iter().take(dbs.len()) {
            let _ = write!(
                out,
                " {}–{} |",
                crate::rounds::thousands(*lo as i64),
                crate::rounds::thousands(*hi as i64)
            );
        }
        let _ = write!(
            out,
            "\n| {statement}, {host_name} ÷ Spin (nearest end of its range) |"
        );
        for (cell, (lo, hi)) in cells.iter().zip(SPIN[s]) {
            let ratio = cell.map_or(f64::NAN, |m| {
                let v = m.rps().median;
                v / v.clamp(lo, hi)
            });
            let _ = write!(out, " {ratio:.2} |");
        }
        out.push('\n');
    }
    out
}
