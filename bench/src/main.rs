//! `cfe-bench`: throughput, latency and scaling of ClientFlow Edge against the ceilings of its
//! host, measured in one run so the ratios hold on a noisy shared machine.
//!
//! It starts the apps on the local host (or on real Spin when `SPIN_BIN` is set) through the
//! test harness, seeds data, and drives load from this process over loopback with its own
//! closed-loop HTTP/1.1 client (`load`). See BENCHMARKS.md.

// A benchmark driver, not a component: a panic here is a failed run with a message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod burst;
mod fake_systeme;
mod load;
mod probes;
mod rounds;
mod seed;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use api_tests::{AppSpec, HostKind, TestApp, TestTenant, admin_token, spawn, workspace_root};
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use load::{Load, MakeRequest};
use rounds::{Measured, Scenario, Spread};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(about = "ClientFlow Edge benchmarks (see BENCHMARKS.md)")]
struct Args {
    /// Seconds of measured load per scenario.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Lead counts of the tenants whose stats are measured.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 100_000, 1_000_000])]
    sizes: Vec<usize>,
    /// Tenants in the database for the stats scenario (the big ones included).
    #[arg(long, default_value_t = 1_000)]
    tenants: usize,
    /// A few seconds in all, small data: proves the harness works (CI).
    #[arg(long)]
    smoke: bool,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only the write paths against their ceiling: the probe's one INSERT (WAL), capture and
    /// callbacks, with their ratios (about 40 s). For iterating on a write path.
    #[arg(long)]
    write_paths: bool,
    /// Only the probe's one-statement ceilings against schema size: a one-row `SELECT` and
    /// `INSERT` (WAL) on a one-table database and on copies of the app's migrated schema (its
    /// `leads` table and indexes; all but the triggers; all), beside Spin 4.0.2's figures.
    #[arg(long)]
    probes: bool,
    /// Runs every scenario this many times, interleaved (A, B, C, A, B, C, …), and reports the
    /// median of each figure with its spread (min–max).
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    repeat: usize,
    /// Only capture for a tenant with one alert rule that every lead matches, and for one with a
    /// rule that never matches, against capture for a tenant without, interleaved, with their
    /// ratios: what an alert costs a capture. The alerts go to a local receiver.
    #[arg(long)]
    alerts: bool,
    /// With `--alerts`: no delivery run starts during the rounds (the bench holds
    /// `alert_runner`), so each capture's CPU is its own; the alerts are then drained in chained
    /// runs and their CPU per delivery is reported apart.
    #[arg(long, requires = "alerts")]
    alerts_deferred: bool,
    /// Only the capture burst: `--burst-clients` clients × `--burst-captures` lead posts
    /// against a fresh app per run, once per `--burst-fault` setting, `--burst-runs` times.
    #[arg(long)]
    burst: bool,
    /// Concurrent clients in the burst.
    #[arg(long, default_value_t = 16)]
    burst_clients: usize,
    /// Lead posts each burst client sends, one after another.
    #[arg(long, default_value_t = 40)]
    burst_captures: usize,
    /// Seconds a burst request may take before it counts as "no answer".
    #[arg(long, default_value_t = 10)]
    burst_deadline: u64,
    /// Fresh-database runs per setting (the report gives each run and the medians).
    #[arg(long, default_value_t = 3)]
    burst_runs: usize,
    /// A `CFE_FAULT_SQLITE` value for the burst (`none` for no fault); may be repeated.
    #[arg(long = "burst-fault", default_values_t = ["none".to_string(), "latency:2ms".to_string(), "latency:10ms".to_string()])]
    burst_faults: Vec<String>,
}

fn addr(app: &TestApp) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], app.port))
}

fn request(
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> http::Request<Full<Bytes>> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1");
    for (k, v) in headers {
        builder = builder.header(*k, v);
    }
    builder.body(Full::new(Bytes::from(body))).unwrap()
}

fn scenario(name: &str, app: &TestApp, load: Load, expect: u16, make: MakeRequest) -> Scenario {
    Scenario {
        name: name.to_string(),
        addr: addr(app),
        load,
        expect,
        make,
        cpu: None,
    }
}

fn get(path: &'static str) -> MakeRequest {
    Arc::new(move |_| request("GET", path, &[], Vec::new()))
}

fn post(path: &'static str) -> MakeRequest {
    Arc::new(move |_| request("POST", path, &[], Vec::new()))
}

async fn spawn_async(spec: AppSpec) -> TestApp {
    tokio::task::spawn_blocking(move || spawn(&spec))
        .await
        .unwrap()
}

fn clientflow(systeme_base: &str, api_key: &str) -> AppSpec {
    AppSpec::clientflow(systeme_base)
        .with_env("SPIN_VARIABLE_SYSTEME_API_KEY", api_key)
        .with_env("SPIN_VARIABLE_CAPTURE_RATE_LIMIT", "1000000000")
}

/// A tenant that captures without limits for the bench's length: the enterprise plan (a starter
/// holds 1,000 leads, then 1,000 more held, then refuses) and no Systeme.io call budget.
async fn bench_tenant(app: &TestApp, name: &str) -> Result<TestTenant> {
    let tenant = app.create_tenant(name).await;
    let resp = app
        .client
        .patch(app.url(&format!("/v1/admin/tenants/{}", tenant.id)))
        .bearer_auth(admin_token())
        .json(&json!({ "plan": "enterprise", "budgets": { "sync_calls_per_minute": 1_000_000 } }))
        .send()
        .await?;
    anyhow::ensure!(
        resp.status() == 200,
        "lifting the bench tenant's limits: {}",
        resp.status()
    );
    Ok(tenant)
}

/// Lead posts with a new email each: numbered by the closure itself, so a scenario repeated
/// in several rounds keeps capturing new leads.
fn capture_requests(token: &str, run: &'static str) -> MakeRequest {
    let auth = format!("Bearer {token}");
    let seq = AtomicU64::new(0);
    Arc::new(move |_| {
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let body = json!({"email": format!("{run}{n}@bench.example.com"), "name": "Bench Lead", "ib_type": "forex-ib", "monthly_leads": "100-500", "utm_source": "bench"});
        request(
            "POST",
            "/v1/leads",
            &[
                ("authorization", auth.clone()),
                ("content-type", "application/json".into()),
            ],
            serde_json::to_vec(&body).unwrap(),
        )
    })
}

fn event_requests(prefix: &str, pool: u64) -> MakeRequest {
    let secret = domain::secret::SystemeSecret::parse(api_tests::SYSTEME_WEBHOOK_SECRET).unwrap();
    let tag = format!("{prefix}email-opened");
    let seq = AtomicU64::new(0);
    Arc::new(move |_| {
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let body = json!({
            "contact": {"id": 900_000 + n % pool, "email": format!("nosync{}@bench.example.com", n % pool), "tags": [{"id": 1, "name": tag}]},
            "tag": {"id": 1, "name": tag},
            // Distinct content per request, across rounds too: callbacks are deduplicated by
            // message id and by a digest of the body, and a replay is not what this scenario
            // measures.
            "bench_seq": n
        })
        .to_string();
        let signature = domain::signature::sign_systeme(&secret, body.as_bytes());
        request(
            "POST",
            "/v1/systeme/events",
            &[
                ("x-webhook-event", "CONTACT_TAG_ADDED".into()),
                ("x-webhook-message-id", format!("bench-{n}")),
                ("x-webhook-signature", signature),
                ("content-type", "application/json".into()),
            ],
            body.into_bytes(),
        )
    })
}

/// Repeats what the local host flagged about the statements the scenarios ran: a statement
/// SQLite compiles twice on every call is a cost Spin pays too.
fn report_host_warnings(app: &TestApp) {
    for line in app.stderr().lines().filter(|l| l.contains("re-prepared")) {
        eprintln!("  host warning: {line}");
    }
}

fn wasm_sizes() -> Vec<(String, u64)> {
    [
        "alerts",
        "dashboard",
        "lead_capture",
        "systeme_events",
        "tenant_signup",
    ]
    .iter()
    .map(|c| {
        let path = workspace_root().join(format!("target/wasm32-wasip2/release/{c}.wasm"));
        (
            c.to_string(),
            std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        )
    })
    .collect()
}

/// `cfe-host: component X ready in 123.4ms` lines from a cold start (empty compile cache).
async fn cold_compile_times() -> Result<Vec<(String, String)>> {
    let cache = tempfile::tempdir()?;
    let spec = clientflow("http://127.0.0.1:9", "")
        .with_env("CFE_HOST_CACHE_DIR", cache.path().to_str().unwrap());
    let app = spawn_async(spec).await;
    let times = app
        .stderr()
        .lines()
        .filter_map(|l| {
            let rest = l.split("component ").nth(1)?;
            let (id, time) = rest.split_once(" ready in ")?;
            Some((id.to_string(), time.trim().to_string()))
        })
        .collect();
    Ok(times)
}

/// A probe whose default database holds `probe_inserts` (the one-INSERT ceiling's table), in
/// Spin's rollback-journal mode or switched to WAL.
async fn insert_probe(wal: bool) -> Result<TestApp> {
    let probe = spawn_async(AppSpec::probe()).await;
    let setup = probe.client.post(probe.url("/probe/setup")).send().await?;
    anyhow::ensure!(setup.status() == 200, "probe setup: {}", setup.status());
    if wal {
        let mode = probe
            .client
            .post(probe.url("/sqlite/default"))
            .json(&json!({"statements": [{"sql": "PRAGMA journal_mode=WAL"}]}))
            .send()
            .await?
            .text()
            .await?;
        anyhow::ensure!(
            mode.contains("wal"),
            "the probe database did not switch to WAL: {mode}"
        );
    }
    Ok(probe)
}

/// The probe's one-statement scenarios on every schema database.
fn probe_scenarios(dbs: &[probes::ProbeDb], load: Load) -> Vec<Scenario> {
    let mut out = Vec::new();
    for (statement, path, method, expect) in probes::STATEMENTS {
        for db in dbs {
            let make = if method == "GET" {
                get(path)
            } else {
                post(path)
            };
            out.push(scenario(
                &probes::scenario_name(statement, db.label),
                &db.app,
                load,
                expect,
                make,
            ));
        }
    }
    out
}

fn find<'a>(measured: &'a [Measured], name: &str) -> Result<&'a Measured> {
    measured
        .iter()
        .find(|m| m.name == name)
        .with_context(|| format!("no scenario named {name:?}"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.duration = args.duration.min(1);
        args.sizes = vec![100, 1_000];
        args.tenants = 20;
    }
    let host = HostKind::from_env();
    let load = Load {
        connections: args.connections,
        warmup: Duration::from_millis(if args.smoke { 200 } else { 1_000 }),
        duration: Duration::from_secs(args.duration),
    };
    if args.burst {
        return run_burst(&args, &host).await;
    }
    if args.probes {
        return run_probes(&args, &host, load).await;
    }
    if args.write_paths {
        return run_write_paths(&args, &host, load).await;
    }
    if args.alerts {
        return run_alerts(&args, &host, load).await;
    }
    run_all(&args, &host, load).await
}

/// `--probes`: only the probe's one-statement scenarios against schema size.
async fn run_probes(args: &Args, host: &HostKind, load: Load) -> Result<()> {
    let started = Instant::now();
    eprintln!("== probe databases: migrating the app's schema");
    let schema = probes::app_schema().await?;
    let dbs = probes::start(&schema).await?;
    let measured = rounds::run(probe_scenarios(&dbs, load), args.repeat).await?;
    let extra = format!("\n{}", probes::report(host, &dbs, &measured));
    print_report(args, host, started, &measured, &[], &extra)
}

/// `--write-paths`: the one-INSERT ceiling, capture and callbacks, and their ratios.
async fn run_write_paths(args: &Args, host: &HostKind, load: Load) -> Result<()> {
    let started = Instant::now();
    let probe = insert_probe(true).await?;
    let app = spawn_async(clientflow("http://127.0.0.1:9", "")).await;
    let tenant = bench_tenant(&app, "Bench Ib").await?;
    let scenarios = vec![
        scenario(
            "probe empty handler",
            &probe,
            load,
            200,
            get("/probe/empty"),
        ),
        scenario(
            "probe one INSERT (WAL)",
            &probe,
            load,
            201,
            post("/probe/insert"),
        ),
        scenario(
            "POST /v1/leads (sync off)",
            &app,
            load,
            201,
            capture_requests(&tenant.capture_token, "nosync"),
        ),
        scenario(
            "POST /v1/systeme/events (tag added)",
            &app,
            load,
            200,
            event_requests(&tenant.tag_prefix, 1_000),
        ),
    ];
    let measured = rounds::run(scenarios, args.repeat).await?;
    report_host_warnings(&app);
    let [empty, insert_wal, capture, events] = [
        "probe empty handler",
        "probe one INSERT (WAL)",
        "POST /v1/leads (sync off)",
        "POST /v1/systeme/events (tag added)",
    ]
    .map(|name| find(&measured, name));
    let (empty, insert_wal, capture, events) = (empty?, insert_wal?, capture?, events?);
    let ratios = [
        (
            "capture (sync off) / one INSERT (WAL)".to_string(),
            capture.rps_over(insert_wal),
        ),
        (
            "events / one INSERT (WAL)".to_string(),
            events.rps_over(insert_wal),
        ),
        (
            "one INSERT (WAL) / empty handler".to_string(),
            insert_wal.rps_over(empty),
        ),
    ];
    print_report(args, host, started, &measured, &ratios, "")
}

/// Counts of the app's alert deliveries by status.
fn alert_counts(app: &TestApp) -> Result<String> {
    let db = app.db();
    let mut stmt = db
        .prepare("SELECT status, count(*) FROM alert_deliveries GROUP BY status ORDER BY status")?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "{} {}",
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?
        ))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?.join(", "))
}

/// Creates a `lead.captured` alert rule for `tenant` (`when` as the API takes it) posting JSON
/// to `url`.
async fn add_alert_rule(
    app: &TestApp,
    tenant: &TestTenant,
    when: serde_json::Value,
    url: &str,
) -> Result<()> {
    let rule = json!({"name": "Bench rule", "when": when,
        "destination": {"url": url, "format": "json"}});
    let resp = app
        .client
        .post(app.url("/v1/dashboard/alerts"))
        .bearer_auth(tenant.dashboard_token())
        .json(&rule)
        .send()
        .await?;
    anyhow::ensure!(
        resp.status() == 201,
        "creating the alert rule: {}",
        resp.status()
    );
    Ok(())
}

/// Pending deliveries plus the delivery run's hold (`alert_runner.until`): 0 once every alert
/// queued so far is out and no run is under way.
fn delivery_work_left(db_path: &std::path::Path) -> Result<i64> {
    Ok(rusqlite::Connection::open(db_path)?.query_row(
        "SELECT (SELECT count(*) FROM alert_deliveries WHERE status = 'pending')
            + (SELECT until FROM alert_runner WHERE id = 1)",
        [],
        |r| r.get(0),
    )?)
}

/// What draining the deferred deliveries cost.
struct Drained {
    deliveries: i64,
    /// The captures that started the runs (each also queued one of the deliveries).
    kicks: i64,
    cpu_ms: f64,
}

impl Drained {
    /// Host CPU per delivery, without the `kicks` captures' own share (`capture_cpu_ms` each).
    fn cpu_ms_per_delivery(&self, capture_cpu_ms: f64) -> f64 {
        (self.cpu_ms - self.kicks as f64 * capture_cpu_ms) / self.deliveries as f64
    }
}

/// With deliveries deferred: lets go of `alert_runner` and drains what the rounds queued the way
/// the app sends alerts while it is up, in chained runs (each started by one more capture for
/// `alerted` while no run holds the runner). Answers how many deliveries went out and the host's
/// CPU meanwhile: the runs' reads and writes, signing, sending and lingers, and the captures
/// that started them.
async fn drain_deferred(app: &TestApp, alerted: &TestTenant) -> Result<Drained> {
    let db_path = app.database_path();
    let delivered = || -> Result<i64> {
        Ok(rusqlite::Connection::open(&db_path)?.query_row(
            "SELECT count(*) FROM alert_deliveries WHERE status = 'delivered'",
            [],
            |r| r.get(0),
        )?)
    };
    let before = delivered()?;
    let cpu_before = rounds::group_cpu_secs(app.process_group());
    rusqlite::Connection::open(&db_path)?
        .execute("UPDATE alert_runner SET until = 0 WHERE id = 1", [])?;
    let since = Instant::now();
    let mut kicks = 0;
    while delivery_work_left(&db_path)? > 0 {
        anyhow::ensure!(
            since.elapsed() < Duration::from_secs(600),
            "the deferred deliveries did not drain within 10 minutes"
        );
        let free: i64 = rusqlite::Connection::open(&db_path)?.query_row(
            "SELECT until = 0 FROM alert_runner WHERE id = 1",
            [],
            |r| r.get(0),
        )?;
        if free == 1 {
            kicks += 1;
            let resp = app
                .client
                .post(app.url("/v1/leads"))
                .bearer_auth(&alerted.capture_token)
                .json(&json!({"email": format!("drain{kicks}@bench.example.com")}))
                .send()
                .await?;
            anyhow::ensure!(resp.status() == 201, "a drain capture: {}", resp.status());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu_ms = (rounds::group_cpu_secs(app.process_group()) - cpu_before) * 1000.0;
    let deliveries = delivered()? - before;
    anyhow::ensure!(deliveries > 0, "nothing was drained");
    Ok(Drained {
        deliveries,
        kicks,
        cpu_ms,
    })
}

/// `--alerts`: capture with one matching alert rule against capture without, and with a rule
/// that never matches (the trigger's check alone).
async fn run_alerts(args: &Args, host: &HostKind, load: Load) -> Result<()> {
    let started = Instant::now();
    let receiver = fake_systeme::start().await?;
    let origin = format!("http://{receiver}");
    let app = spawn_async(
        clientflow("http://127.0.0.1:9", "").with_env("SPIN_VARIABLE_ALERTS_DEV_ORIGIN", &origin),
    )
    .await;
    let plain = bench_tenant(&app, "Bench Plain").await?;
    let alerted = bench_tenant(&app, "Bench Alerted").await?;
    let unmatched = bench_tenant(&app, "Bench Unmatched").await?;
    let hook = format!("{origin}/alert-hook");
    add_alert_rule(&app, &alerted, json!({"event": "lead.captured"}), &hook).await?;
    add_alert_rule(
        &app,
        &unmatched,
        json!({"event": "lead.captured", "utm_source": "no-such-source"}),
        &hook,
    )
    .await?;
    // A long run sends more than the plan's 20,000 delivery attempts a day: the day's count
    // starts far below zero, so no alert is dropped at the limit.
    rusqlite::Connection::open(app.database_path())?.execute(
        "INSERT INTO alert_attempts (tenant_id, day, n) VALUES (?1, date('now'), -1000000000)",
        [&alerted.id],
    )?;
    if args.alerts_deferred {
        rusqlite::Connection::open(app.database_path())?.execute(
            "UPDATE alert_runner SET until = 9999999999 WHERE id = 1",
            [],
        )?;
    }
    let (without, with, idle) = (
        "POST /v1/leads (sync off), no alert rule",
        "POST /v1/leads (sync off), one matching alert rule",
        "POST /v1/leads (sync off), one alert rule that never matches",
    );
    // Host CPU per request counts until no delivery is left pending and the delivery run has
    // let go (its linger included), so each delivery counts against the capture that queued
    // it. With deliveries deferred, a scenario's work ends with its last answer, and the
    // deliveries it queued are drained afterwards (`drain_deferred`).
    let db_path = app.database_path();
    let cpu = rounds::HostCpu {
        pgid: app.process_group(),
        settled: if args.alerts_deferred {
            Arc::new(|| Ok(true))
        } else {
            Arc::new(move || Ok(delivery_work_left(&db_path)? == 0))
        },
    };
    let measured_cpu = |s: Scenario| Scenario {
        cpu: Some(cpu.clone()),
        ..s
    };
    let scenarios = vec![
        measured_cpu(scenario(
            without,
            &app,
            load,
            201,
            capture_requests(&plain.capture_token, "plain"),
        )),
        measured_cpu(scenario(
            with,
            &app,
            load,
            201,
            capture_requests(&alerted.capture_token, "alerted"),
        )),
        measured_cpu(scenario(
            idle,
            &app,
            load,
            201,
            capture_requests(&unmatched.capture_token, "unmatched"),
        )),
    ];
    let measured = rounds::run(scenarios, args.repeat).await?;
    let mut ratios = vec![
        (
            "req/s: capture with one matching rule / capture without".to_string(),
            find(&measured, with)?.rps_over(find(&measured, without)?),
        ),
        (
            "req/s: capture with a rule that never matches / capture without".to_string(),
            find(&measured, idle)?.rps_over(find(&measured, without)?),
        ),
    ];
    for (scenario, name) in [
        (with, "capture with one matching rule"),
        (idle, "capture with a rule that never matches"),
    ] {
        if let Some(ratio) = find(&measured, scenario)?.cpu_over(find(&measured, without)?) {
            ratios.push((
                format!("host CPU per request: {name} / capture without"),
                ratio,
            ));
        }
    }
    let mut extra = String::new();
    if args.alerts_deferred {
        let drained = drain_deferred(&app, &alerted).await?;
        if let (Some(with_cpu), Some(without_cpu)) = (
            find(&measured, with)?.cpu_ms(),
            find(&measured, without)?.cpu_ms(),
        ) {
            let per_delivery = drained.cpu_ms_per_delivery(with_cpu.median);
            extra += &format!(
                "\nDrained afterwards in chained runs started by {} captures: {} deliveries, \
                 {per_delivery:.3} ms of host CPU each.\n\
                 Capture with one matching rule, its delivery included (medians): \
                 ({:.3} + {per_delivery:.3}) / {:.3} ms = {:.2} of capture without.\n",
                drained.kicks,
                drained.deliveries,
                with_cpu.median,
                without_cpu.median,
                (with_cpu.median + per_delivery) / without_cpu.median
            );
        }
    } else {
        // Let the last delivery run finish before counting.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    extra += &format!(
        "\nAlert deliveries at the end (by status): {}; the receiver got {} posts.\n",
        alert_counts(&app)?,
        fake_systeme::alerts_received()
    );
    print_report(args, host, started, &measured, &ratios, &extra)
}

/// The whole benchmark: ceilings, the probe against schema size, capture, callbacks, stats
/// scaling, capture with syncing on, and per-component facts.
async fn run_all(args: &Args, host: &HostKind, load: Load) -> Result<()> {
    let started = Instant::now();
    let single = Load {
        connections: 1,
        ..load
    };

    eprintln!("== probes: the host's ceilings, and one statement against schema size");
    let probe_journal = insert_probe(false).await?;
    let probe_wal = insert_probe(true).await?;
    let schema = probes::app_schema().await?;
    let dbs = probes::start(&schema).await?;

    eprintln!("== clientflow, sync off");
    let app = spawn_async(clientflow("http://127.0.0.1:9", "")).await;
    let tenant = bench_tenant(&app, "Bench Ib").await?;

    eprintln!(
        "== stats scaling: seeding {} tenants and {:?} leads",
        args.tenants, args.sizes
    );
    let stats_app = spawn_async(clientflow("http://127.0.0.1:9", "")).await;
    stats_app.create_tenant("Bench Stats").await;
    let db = stats_app.database_path();
    let big = seed::tenants(&db, 0, args.sizes.len())?;
    seed::tenants(
        &db,
        args.sizes.len(),
        args.tenants.saturating_sub(args.sizes.len() + 1),
    )?;
    let seeding = Instant::now();
    for (i, (t, n)) in big.iter().zip(&args.sizes).enumerate() {
        seed::leads(&db, t, i, *n)?;
    }
    eprintln!("   seeded in {:.1} s", seeding.elapsed().as_secs_f64());

    eprintln!("== clientflow, sync on (fast fake Systeme.io)");
    let fake = fake_systeme::start().await?;
    let sync_app = spawn_async(clientflow(
        &format!("http://{fake}"),
        api_tests::SYSTEME_API_KEY,
    ))
    .await;
    let sync_tenant = bench_tenant(&sync_app, "Bench Sync").await?;

    let mut scenarios = vec![
        scenario(
            "host health route, no component (1 conn)",
            &probe_wal,
            single,
            200,
            get("/.well-known/spin/health"),
        ),
        scenario(
            "probe empty handler (1 conn)",
            &probe_wal,
            single,
            200,
            get("/probe/empty"),
        ),
        scenario(
            "probe empty handler",
            &probe_wal,
            load,
            200,
            get("/probe/empty"),
        ),
        scenario(
            "probe one INSERT (rollback journal)",
            &probe_journal,
            load,
            201,
            post("/probe/insert"),
        ),
        scenario(
            "probe one INSERT (WAL)",
            &probe_wal,
            load,
            201,
            post("/probe/insert"),
        ),
    ];
    scenarios.extend(probe_scenarios(&dbs, load));
    scenarios.push(scenario(
        "POST /v1/leads (sync off)",
        &app,
        load,
        201,
        capture_requests(&tenant.capture_token, "nosync"),
    ));
    scenarios.push(scenario(
        "POST /v1/systeme/events (tag added)",
        &app,
        load,
        200,
        event_requests(&tenant.tag_prefix, 1_000),
    ));
    for (t, n) in big.iter().zip(&args.sizes) {
        let auth = format!("Bearer {}", api_tests::dashboard_token(&t.id));
        let make: MakeRequest = Arc::new(move |_| {
            request(
                "GET",
                "/v1/dashboard/stats?days=30",
                &[("authorization", auth.clone())],
                Vec::new(),
            )
        });
        scenarios.push(scenario(
            &format!("GET /v1/dashboard/stats, {n} leads"),
            &stats_app,
            load,
            200,
            make,
        ));
    }
    scenarios.push(scenario(
        "POST /v1/leads (sync on, fast fake)",
        &sync_app,
        load,
        201,
        capture_requests(&sync_tenant.capture_token, "sync"),
    ));

    let measured = rounds::run(scenarios, args.repeat).await?;
    report_host_warnings(&app);
    report_host_warnings(&stats_app);
    let synced: i64 = sync_app.db().query_row(
        "SELECT COUNT(*) FROM leads WHERE sync_status = 'synced'",
        [],
        |r| r.get(0),
    )?;
    anyhow::ensure!(synced > 0, "no lead was synced against the fake");
    drop((probe_journal, probe_wal, app, stats_app, sync_app));

    let compile = match host {
        HostKind::Local(_) => cold_compile_times().await?,
        HostKind::Spin(_) => Vec::new(),
    };

    let m = |name: &str| find(&measured, name);
    let (host_only, empty_one, empty) = (
        m("host health route, no component (1 conn)")?,
        m("probe empty handler (1 conn)")?,
        m("probe empty handler")?,
    );
    let (insert_journal, insert_wal) = (
        m("probe one INSERT (rollback journal)")?,
        m("probe one INSERT (WAL)")?,
    );
    let (capture, events, capture_sync) = (
        m("POST /v1/leads (sync off)")?,
        m("POST /v1/systeme/events (tag added)")?,
        m("POST /v1/leads (sync on, fast fake)")?,
    );
    let mut ratios = vec![
        (
            "capture (sync off) / one INSERT (WAL)".to_string(),
            capture.rps_over(insert_wal),
        ),
        (
            "capture (sync off) / one INSERT (rollback journal)".to_string(),
            capture.rps_over(insert_journal),
        ),
        (
            "capture (sync on) / capture (sync off)".to_string(),
            capture_sync.rps_over(capture),
        ),
        (
            "events / one INSERT (WAL)".to_string(),
            events.rps_over(insert_wal),
        ),
        (
            "one INSERT (WAL) / empty handler".to_string(),
            insert_wal.rps_over(empty),
        ),
    ];
    if let (Some(small_n), Some(large_n)) = (args.sizes.first(), args.sizes.last()) {
        let small = m(&format!("GET /v1/dashboard/stats, {small_n} leads"))?;
        let large = m(&format!("GET /v1/dashboard/stats, {large_n} leads"))?;
        ratios.push((
            format!("stats p50 latency, {large_n} / {small_n} leads"),
            Spread::of(
                large
                    .outcomes
                    .iter()
                    .zip(&small.outcomes)
                    .map(|(l, s)| l.ms(0.5) / s.ms(0.5)),
            ),
        ));
        ratios.push((
            format!("stats req/s, {large_n} / {small_n} leads"),
            large.rps_over(small),
        ));
    }
    let mut extra = format!(
        "\n{}\nPer-request instantiation on this host (mean latency, 1 connection, empty handler minus the host's own health route): {} ms.\n\n",
        probes::report(host, &dbs, &measured),
        empty_one.mean_ms_minus(host_only).decimals()
    );
    let _ = writeln!(
        extra,
        "| component | .wasm bytes | compile at start-up (cold cache) |\n| --- | ---: | ---: |"
    );
    for (name, bytes) in wasm_sizes() {
        let id = name.replace('_', "-");
        let time = compile
            .iter()
            .find(|(c, _)| *c == id)
            .map_or("n/a", |(_, t)| t.as_str());
        let _ = writeln!(extra, "| {id} | {bytes} | {time} |");
    }
    print_report(args, host, started, &measured, &ratios, &extra)
}

/// Prints the report (and writes it to `--out`): every scenario, then the same-run ratios,
/// then `extra`. With several rounds every figure is the median over the rounds, with the
/// range in parentheses; a ratio is taken within each round.
fn print_report(
    args: &Args,
    host: &HostKind,
    started: Instant,
    measured: &[Measured],
    ratios: &[(String, Spread)],
    extra: &str,
) -> Result<()> {
    let mut report = String::new();
    let rounds = args.repeat.max(1);
    let _ = writeln!(
        report,
        "Host: {}. {} connections, {} s per scenario after warm-up, {}. Total run {:.0} s.\n",
        match host {
            HostKind::Local(_) => "local host (cfe-host)".to_string(),
            HostKind::Spin(p) => format!("Spin ({})", p.display()),
        },
        args.connections,
        args.duration,
        if rounds == 1 {
            "one round".to_string()
        } else {
            format!("{rounds} interleaved rounds (median, with min–max in parentheses)")
        },
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(
        report,
        "| scenario | req/s | p50 ms | p99 ms | p99.9 ms |\n| --- | ---: | ---: | ---: | ---: |"
    );
    for m in measured {
        let _ = writeln!(
            report,
            "| {} | {} | {:.2} | {:.2} | {:.2} |",
            m.name,
            m.rps().whole(),
            m.ms(0.5).median,
            m.ms(0.99).median,
            m.ms(0.999).median
        );
    }
    let cpu: Vec<(&str, Spread)> = measured
        .iter()
        .filter_map(|m| Some((m.name.as_str(), m.cpu_ms()?)))
        .collect();
    two_columns(
        &mut report,
        ("host CPU per request, until its work is done", "ms"),
        &cpu,
    );
    let ratios: Vec<(&str, Spread)> = ratios.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    two_columns(&mut report, ("ratio (within a round)", "value"), &ratios);
    report.push_str(extra);
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// A table of named figures (two decimals), when there are any.
fn two_columns(report: &mut String, (name, value): (&str, &str), rows: &[(&str, Spread)]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(report, "\n| {name} | {value} |\n| --- | ---: |");
    for (name, figure) in rows {
        let _ = writeln!(report, "| {name} | {} |", figure.decimals());
    }
}

/// `--burst`: every setting `--burst-runs` times, each run on a fresh app and database.
async fn run_burst(args: &Args, host: &HostKind) -> Result<()> {
    let burst = burst::Burst {
        clients: args.burst_clients,
        captures: if args.smoke {
            args.burst_captures.min(5)
        } else {
            args.burst_captures
        },
        deadline: Duration::from_secs(args.burst_deadline),
        runs: if args.smoke { 1 } else { args.burst_runs },
        faults: args
            .burst_faults
            .iter()
            .map(|f| {
                if f == "none" {
                    String::new()
                } else {
                    f.clone()
                }
            })
            .collect(),
    };
    // One compile cache for every run: each app gets a fresh state directory.
    let cache = tempfile::tempdir()?;
    let mut results = Vec::new();
    for fault in &burst.faults {
        if !fault.is_empty() && matches!(host, HostKind::Spin(_)) {
            eprintln!(
                "== burst, CFE_FAULT_SQLITE={fault}: skipped (only the local host injects faults)"
            );
            continue;
        }
        let mut runs = Vec::new();
        for run in 1..=burst.runs {
            let mut spec = clientflow("http://127.0.0.1:9", "")
                .with_env("CFE_HOST_CACHE_DIR", cache.path().to_str().unwrap());
            if !fault.is_empty() {
                spec = spec.with_env("CFE_FAULT_SQLITE", fault);
            }
            let app = spawn_async(spec).await;
            let tenant = app.create_tenant("Bench Burst").await;
            let make = capture_requests(&tenant.capture_token, "burst");
            let outcome = burst::run_once(&app, &burst, &make, &tenant.id).await?;
            eprintln!(
                "== burst, CFE_FAULT_SQLITE={fault:?}, run {run}: {} 2xx, {} 503, {} other, {} no answer, p50 {:.1} ms, p99 {:.1} ms, {:.1} s",
                outcome.ok,
                outcome.unavailable,
                outcome.other,
                outcome.no_answer,
                outcome.latency_us.value_at_quantile(0.5) as f64 / 1000.0,
                outcome.latency_us.value_at_quantile(0.99) as f64 / 1000.0,
                outcome.elapsed.as_secs_f64()
            );
            runs.push(outcome);
            drop(app);
        }
        results.push((fault.clone(), runs));
    }
    let report = burst::report(&burst, host, &results);
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}
