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
mod seed;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use api_tests::{AppSpec, HostKind, TestApp, spawn, workspace_root};
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use load::{Load, MakeRequest, Outcome};
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

struct Row {
    name: String,
    outcome: Outcome,
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

async fn measure(
    rows: &mut Vec<Row>,
    name: &str,
    app: &TestApp,
    load: Load,
    expect: u16,
    make: MakeRequest,
) -> Result<Outcome> {
    let outcome = load::run(addr(app), load, expect, make).await?;
    eprintln!(
        "{name}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms ({} unexpected)",
        outcome.rps(),
        outcome.ms(0.5),
        outcome.ms(0.99),
        outcome.unexpected
    );
    if let Some(first) = &outcome.first_unexpected {
        eprintln!("  first unexpected answer: {first}");
    }
    anyhow::ensure!(
        outcome.unexpected == 0,
        "{name}: {} answers had an unexpected status (first: {:?})",
        outcome.unexpected,
        outcome.first_unexpected
    );
    rows.push(Row {
        name: name.to_string(),
        outcome: outcome.clone(),
    });
    Ok(outcome)
}

fn get(path: &'static str) -> MakeRequest {
    Arc::new(move |_| request("GET", path, &[], Vec::new()))
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

fn capture_requests(token: &str, run: &'static str) -> MakeRequest {
    let auth = format!("Bearer {token}");
    Arc::new(move |n| {
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
    Arc::new(move |n| {
        let body = json!({
            "contact": {"id": 900_000 + n % pool, "email": format!("nosync{}@bench.example.com", n % pool), "tags": [{"id": 1, "name": tag}]},
            "tag": {"id": 1, "name": tag},
            // Distinct content per request: callbacks are deduplicated by message id and by a
            // digest of the body, and a replay is not what this scenario measures.
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
    let single = Load {
        connections: 1,
        ..load
    };
    if args.burst {
        return run_burst(&args, &host).await;
    }
    let started = Instant::now();
    let mut rows = Vec::new();

    // 1. The host's ceilings: the probe component.
    eprintln!("== probe (ceilings)");
    let probe = spawn_async(AppSpec::probe()).await;
    let (host_only, empty_one) = if args.write_paths {
        (None, None)
    } else {
        let host_only = measure(
            &mut rows,
            "host health route, no component (1 conn)",
            &probe,
            single,
            200,
            get("/.well-known/spin/health"),
        )
        .await?;
        let empty_one = measure(
            &mut rows,
            "probe empty handler (1 conn)",
            &probe,
            single,
            200,
            get("/probe/empty"),
        )
        .await?;
        (Some(host_only), Some(empty_one))
    };
    let empty = measure(
        &mut rows,
        "probe empty handler",
        &probe,
        load,
        200,
        get("/probe/empty"),
    )
    .await?;
    probe.client.post(probe.url("/probe/setup")).send().await?;
    let insert_delete = if args.write_paths {
        None
    } else {
        Some(
            measure(
                &mut rows,
                "probe one INSERT (rollback journal)",
                &probe,
                load,
                201,
                Arc::new(|_| request("POST", "/probe/insert", &[], Vec::new())),
            )
            .await?,
        )
    };
    let wal = probe
        .client
        .post(probe.url("/sqlite/default"))
        .json(&json!({"statements": [{"sql": "PRAGMA journal_mode=WAL"}]}))
        .send()
        .await?
        .text()
        .await?;
    anyhow::ensure!(
        wal.contains("wal"),
        "the probe database did not switch to WAL: {wal}"
    );
    let insert_wal = measure(
        &mut rows,
        "probe one INSERT (WAL)",
        &probe,
        load,
        201,
        Arc::new(|_| request("POST", "/probe/insert", &[], Vec::new())),
    )
    .await?;
    drop(probe);

    // 2. ClientFlow Edge with syncing off.
    eprintln!("== clientflow, sync off");
    let app = spawn_async(clientflow("http://127.0.0.1:9", "")).await;
    let tenant = app.create_tenant("Bench Ib").await;
    let capture = measure(
        &mut rows,
        "POST /v1/leads (sync off)",
        &app,
        load,
        201,
        capture_requests(&tenant.capture_token, "nosync"),
    )
    .await?;
    let events = measure(
        &mut rows,
        "POST /v1/systeme/events (tag added)",
        &app,
        load,
        200,
        event_requests(&tenant.tag_prefix, 1_000),
    )
    .await?;
    report_host_warnings(&app);

    if args.write_paths {
        drop(app);
        let ratios = [
            (
                "capture (sync off) / one INSERT (WAL)".to_string(),
                capture.rps() / insert_wal.rps(),
            ),
            (
                "events / one INSERT (WAL)".to_string(),
                events.rps() / insert_wal.rps(),
            ),
            (
                "one INSERT (WAL) / empty handler".to_string(),
                insert_wal.rps() / empty.rps(),
            ),
        ];
        return print_report(&args, &host, started, &rows, &ratios, "");
    }
    // 3. Stats against lead count, with many tenants in the database.
    eprintln!(
        "== stats scaling: seeding {} tenants and {:?} leads",
        args.tenants, args.sizes
    );
    let db = app.database_path();
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
    let mut stats = Vec::new();
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
        let outcome = measure(
            &mut rows,
            &format!("GET /v1/dashboard/stats, {n} leads"),
            &app,
            load,
            200,
            make,
        )
        .await?;
        stats.push((*n, outcome));
    }
    drop(app);

    // 4. Capture with a fast fake Systeme.io (five outbound calls per new lead).
    eprintln!("== clientflow, sync on (fast fake Systeme.io)");
    let fake = fake_systeme::start().await?;
    let app = spawn_async(clientflow(
        &format!("http://{fake}"),
        api_tests::SYSTEME_API_KEY,
    ))
    .await;
    let tenant = app.create_tenant("Bench Sync").await;
    let capture_sync = measure(
        &mut rows,
        "POST /v1/leads (sync on, fast fake)",
        &app,
        load,
        201,
        capture_requests(&tenant.capture_token, "sync"),
    )
    .await?;
    let synced: i64 = app.db().query_row(
        "SELECT COUNT(*) FROM leads WHERE sync_status = 'synced'",
        [],
        |r| r.get(0),
    )?;
    anyhow::ensure!(synced > 0, "no lead was synced against the fake");
    drop(app);

    // 5. Per-component facts.
    let compile = match host {
        HostKind::Local(_) => cold_compile_times().await?,
        HostKind::Spin(_) => Vec::new(),
    };

    let (insert_delete, host_only, empty_one) = (
        insert_delete.context("measured unless --write-paths")?,
        host_only.context("measured unless --write-paths")?,
        empty_one.context("measured unless --write-paths")?,
    );
    let mut ratios = vec![
        (
            "capture (sync off) / one INSERT (WAL)".to_string(),
            capture.rps() / insert_wal.rps(),
        ),
        (
            "capture (sync off) / one INSERT (rollback journal)".to_string(),
            capture.rps() / insert_delete.rps(),
        ),
        (
            "capture (sync on) / capture (sync off)".to_string(),
            capture_sync.rps() / capture.rps(),
        ),
        (
            "events / one INSERT (WAL)".to_string(),
            events.rps() / insert_wal.rps(),
        ),
        (
            "one INSERT (WAL) / empty handler".to_string(),
            insert_wal.rps() / empty.rps(),
        ),
    ];
    if let (Some((small_n, small)), Some((large_n, large))) = (stats.first(), stats.last()) {
        ratios.push((
            format!("stats p50 latency, {large_n} / {small_n} leads"),
            large.ms(0.5) / small.ms(0.5),
        ));
        ratios.push((
            format!("stats req/s, {large_n} / {small_n} leads"),
            large.rps() / small.rps(),
        ));
    }
    let mut extra = format!(
        "\nPer-request instantiation on this host (mean latency, 1 connection, empty handler minus the host's own health route): {:.3} ms.\n\n",
        empty_one.mean_ms() - host_only.mean_ms()
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
    print_report(&args, &host, started, &rows, &ratios, &extra)
}

/// Prints the report (and writes it to `--out`): every scenario, then the same-run ratios,
/// then `extra`.
fn print_report(
    args: &Args,
    host: &HostKind,
    started: Instant,
    rows: &[Row],
    ratios: &[(String, f64)],
    extra: &str,
) -> Result<()> {
    let mut report = String::new();
    let _ = writeln!(
        report,
        "Host: {}. {} connections, {} s per scenario after warm-up. Total run {:.0} s.\n",
        match host {
            HostKind::Local(_) => "local host (cfe-host)".to_string(),
            HostKind::Spin(p) => format!("Spin ({})", p.display()),
        },
        args.connections,
        args.duration,
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(
        report,
        "| scenario | req/s | p50 ms | p99 ms | p99.9 ms |\n| --- | ---: | ---: | ---: | ---: |"
    );
    for row in rows {
        let o = &row.outcome;
        let _ = writeln!(
            report,
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} |",
            row.name,
            o.rps(),
            o.ms(0.5),
            o.ms(0.99),
            o.ms(0.999)
        );
    }
    let _ = writeln!(report, "\n| ratio (same run) | value |\n| --- | ---: |");
    for (name, value) in ratios {
        let _ = writeln!(report, "| {name} | {value:.2} |");
    }
    report.push_str(extra);
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
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
