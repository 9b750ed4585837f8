//! The capture burst: `clients` concurrent clients each send `captures` lead posts one after
//! another, every request with its own deadline, against a fresh app whose every SQLite call
//! the local host delays (`CFE_FAULT_SQLITE=latency:…`), the way each statement is a network
//! round trip on libSQL. It counts what came back (2xx, `503`, anything else, no answer within
//! the deadline) and the latency of the answers, runs each setting several times on a fresh
//! database, and reports every run and the medians.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use api_tests::{HostKind, TestApp};
use hdrhistogram::Histogram;
use http_body_util::BodyExt;

use crate::load::{MakeRequest, connect};

/// Burst settings.
#[derive(Debug, Clone)]
pub struct Burst {
    pub clients: usize,
    pub captures: usize,
    pub deadline: Duration,
    pub runs: usize,
    /// `CFE_FAULT_SQLITE` values; empty means no fault (the baseline).
    pub faults: Vec<String>,
}

/// What one run's requests got.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub ok: u64,
    pub unavailable: u64,
    pub other: u64,
    pub first_other: Option<String>,
    pub no_answer: u64,
    /// Leads the database holds afterwards (every `2xx` must be one of them).
    pub stored: i64,
    pub elapsed: Duration,
    /// Latency of the requests that got an answer, microseconds.
    pub latency_us: Histogram<u64>,
}

impl RunOutcome {
    /// Nothing counted yet.
    fn empty() -> Result<Self> {
        Ok(Self {
            ok: 0,
            unavailable: 0,
            other: 0,
            first_other: None,
            no_answer: 0,
            stored: 0,
            elapsed: Duration::ZERO,
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
        })
    }

    fn ms(&self, q: f64) -> f64 {
        if self.latency_us.is_empty() {
            return f64::NAN;
        }
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One client: `captures` requests in a row on one keep-alive connection; a request that gets
/// no answer in time is abandoned with its connection, and the next goes on a new one.
async fn client(
    addr: SocketAddr,
    first: u64,
    captures: usize,
    deadline: Duration,
    make: MakeRequest,
) -> Result<RunOutcome> {
    let mut out = RunOutcome::empty()?;
    let mut sender = None;
    for i in 0..captures {
        let mut conn = match sender.take() {
            Some(conn) => conn,
            None => connect(addr).await?,
        };
        let request = make(first + i as u64);
        let sent = Instant::now();
        let answer = tokio::time::timeout(deadline, async {
            conn.ready().await?;
            let response = conn.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        })
        .await;
        match answer {
            Err(_) => out.no_answer += 1,
            Ok(Err(e)) => {
                out.other += 1;
                out.first_other.get_or_insert_with(|| format!("{e:#}"));
            }
            Ok(Ok((status, body))) => {
                let took = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                out.latency_us.record(took.max(1))?;
                match status {
                    200..=299 => out.ok += 1,
                    503 => out.unavailable += 1,
                    _ => {
                        out.other += 1;
                        out.first_other.get_or_insert_with(|| {
                            format!("{status}: {}", String::from_utf8_lossy(&body))
                        });
                    }
                }
                sender = Some(conn);
            }
        }
    }
    Ok(out)
}

/// One run against a fresh app: the burst, then the count of stored leads.
pub async fn run_once(
    app: &TestApp,
    burst: &Burst,
    make: &MakeRequest,
    tenant: &str,
) -> Result<RunOutcome> {
    let addr = SocketAddr::from(([127, 0, 0, 1], app.port));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..burst.clients {
        let make = make.clone();
        let first = (c * burst.captures) as u64;
        let (captures, deadline) = (burst.captures, burst.deadline);
        tasks.push(tokio::spawn(async move {
            client(addr, first, captures, deadline, make).await
        }));
    }
    let mut total = RunOutcome::empty()?;
    for task in tasks {
        let part = task.await.context("burst client panicked")??;
        total.ok += part.ok;
        total.unavailable += part.unavailable;
        total.other += part.other;
        total.no_answer += part.no_answer;
        total.first_other = total.first_other.or(part.first_other);
        total.latency_us.add(&part.latency_us)?;
    }
    total.elapsed = started.elapsed();
    total.stored = app.lead_count(tenant);
    anyhow::ensure!(
        total.stored >= i64::try_from(total.ok)?,
        "{} captures were acknowledged but only {} leads are stored",
        total.ok,
        total.stored
    );
    Ok(total)
}

/// The report: one line per run, then the medians per setting.
pub fn report(burst: &Burst, host: &HostKind, results: &[(String, Vec<RunOutcome>)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Host: {}. Burst: {} clients × {} captures, {} s deadline per request, a fresh app and \
         database per run; latency over the requests that got an answer.\n",
        match host {
            HostKind::Local(_) => "local host (cfe-host)".to_string(),
            HostKind::Spin(p) => format!("Spin ({})", p.display()),
        },
        burst.clients,
        burst.captures,
        burst.deadline.as_secs_f64(),
    );
    let _ = writeln!(
        out,
        "| CFE_FAULT_SQLITE | run | 2xx | 503 | other | no answer | stored | p50 ms | p99 ms | burst s |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (fault, runs) in results {
        for (i, r) in runs.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
                label(fault),
                i + 1,
                r.ok,
                r.unavailable,
                r.other,
                r.no_answer,
                r.stored,
                r.ms(0.5),
                r.ms(0.99),
                r.elapsed.as_secs_f64()
            );
        }
    }
    let _ = writeln!(
        out,
        "\nMedians of {} runs:\n\n\
         | CFE_FAULT_SQLITE | 2xx | 503 | other | no answer | p50 ms | p99 ms | burst s |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        burst.runs
    );
    for (fault, runs) in results {
        let m = |f: &dyn Fn(&RunOutcome) -> f64| median(runs.iter().map(f).collect());
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} |",
            label(fault),
            m(&|r| r.ok as f64),
            m(&|r| r.unavailable as f64),
            m(&|r| r.other as f64),
            m(&|r| r.no_answer as f64),
            m(&|r| r.ms(0.5)),
            m(&|r| r.ms(0.99)),
            m(&|r| r.elapsed.as_secs_f64()),
        );
    }
    for (fault, runs) in results {
        for r in runs {
            if let Some(first) = &r.first_other {
                let _ = writeln!(
                    out,
                    "\nFirst other answer ({}): {}",
                    label(fault),
                    first.chars().take(300).collect::<String>()
                );
                break;
            }
        }
    }
    out
}

fn label(fault: &str) -> String {
    if fault.is_empty() {
        "(none)".to_string()
    } else {
        format!("`{fault}`")
    }
}
