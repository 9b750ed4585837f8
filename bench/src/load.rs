//! A closed-loop HTTP/1.1 load generator: `connections` keep-alive connections, each sending
//! its next request as soon as the previous answer is read, for a fixed duration after a
//! warm-up. Latencies go into an HDR histogram (microseconds).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Builds the `n`-th request (`n` is unique across connections).
pub type MakeRequest = Arc<dyn Fn(u64) -> http::Request<Full<Bytes>> + Send + Sync>;

/// One scenario's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Requests answered in the measured window.
    pub requests: u64,
    /// Every request sent, warm-up included.
    pub sent: u64,
    /// The host's CPU time (user and system, its whole process group) from the start of the
    /// warm-up until the scenario's work had settled, when the scenario measures it.
    pub host_cpu_secs: Option<f64>,
    /// Answers whose status was not the expected one.
    pub unexpected: u64,
    pub first_unexpected: Option<String>,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
}

impl Outcome {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// A latency quantile in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn mean_ms(&self) -> f64 {
        self.latency_us.mean() / 1000.0
    }

    /// The host's CPU milliseconds per request sent.
    pub fn cpu_ms_per_request(&self) -> Option<f64> {
        Some(self.host_cpu_secs? * 1000.0 / self.sent.max(1) as f64)
    }
}

/// Load settings.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// Drives `make` against `addr` and checks every status against `expect`.
pub async fn run(addr: SocketAddr, load: Load, expect: u16, make: MakeRequest) -> Result<Outcome> {
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + load.warmup;
    let stop_at = measure_from + load.duration;
    let mut tasks = Vec::new();
    for _ in 0..load.connections {
        let make = make.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            connection(addr, measure_from, stop_at, expect, &make, &counter).await
        }));
    }
    let mut total = Outcome {
        requests: 0,
        sent: 0,
        host_cpu_secs: None,
        unexpected: 0,
        first_unexpected: None,
        elapsed: load.duration,
        latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)?,
    };
    for task in tasks {
        let part = task.await.context("load task panicked")??;
        total.requests += part.requests;
        total.unexpected += part.unexpected;
        total.first_unexpected = total.first_unexpected.or(part.first_unexpected);
        total.latency_us.add(&part.latency_us)?;
    }
    total.sent = counter.load(Ordering::Relaxed);
    Ok(total)
}

pub async fn connect(
    addr: SocketAddr,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await.context("connecting")?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn connection(
    addr: SocketAddr,
    measure_from: Instant,
    stop_at: Instant,
    expect: u16,
    make: &MakeRequest,
    counter: &AtomicU64,
) -> Result<Outcome> {
    let mut sender = connect(addr).await?;
    let mut out = Outcome {
        requests: 0,
        sent: 0,
        host_cpu_secs: None,
        unexpected: 0,
        first_unexpected: None,
        elapsed: Duration::ZERO,
        latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)?,
    };
    loop {
        let now = Instant::now();
        if now >= stop_at {
            return Ok(out);
        }
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let request = make(n);
        if sender.ready().await.is_err() {
            sender = connect(addr).await?;
        }
        let sent = Instant::now();
        let response = sender.send_request(request).await.context("sending")?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading body")?
            .to_bytes();
        let took = sent.elapsed();
        if sent >= measure_from && sent < stop_at {
            out.requests += 1;
            out.latency_us
                .record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1))?;
            if status != expect {
                out.unexpected += 1;
                if out.first_unexpected.is_none() {
                    out.first_unexpected = Some(format!(
                        "{status}: {}",
                        String::from_utf8_lossy(&body)
                            .chars()
                            .take(300)
                            .collect::<String>()
                    ));
                }
            }
        }
    }
}
