//! Interleaved rounds: every scenario runs once per round, in order (A, B, C, A, B, C, …), so a
//! slow minute of the shared machine lands on all of them alike, and each figure is reported as
//! the median over the rounds with its spread (min–max). One noisy run no longer decides a cell.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::load::{self, Load, MakeRequest, Outcome};

/// What to drive, against which app.
pub struct Scenario {
    pub name: String,
    pub addr: SocketAddr,
    pub load: Load,
    pub expect: u16,
    pub make: MakeRequest,
    /// Measure the host's CPU time per request too.
    pub cpu: Option<HostCpu>,
}

/// Whether a scenario's work is done (for example, no alert left to deliver).
pub type Settled = Arc<dyn Fn() -> Result<bool> + Send + Sync>;

/// How to measure a scenario's host CPU time: the host's process group, and when the work the
/// scenario started is done. The time counts from the start of the warm-up until then, so work
/// a request leaves behind (a delivery after the answer) counts against it, not against the
/// next scenario.
#[derive(Clone)]
pub struct HostCpu {
    pub pgid: u32,
    pub settled: Settled,
}

/// How long a scenario's work may take to settle after its load stops.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// Linux's clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, 100 on every architecture
/// this runs on).
const TICKS_PER_SEC: f64 = 100.0;

/// User and system CPU seconds of every live process in process group `pgid`, from `/proc`.
pub fn group_cpu_secs(pgid: u32) -> f64 {
    let ticks: u64 = api_tests::processes_in_group(pgid)
        .into_iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state …`: fields 14 and 15 are utime and stime; comm may hold spaces.
            let rest = &stat[stat.rfind(')')? + 1..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let time = |i: usize| fields.get(i).and_then(|t| t.parse::<u64>().ok());
            Some(time(11)? + time(12)?)
        })
        .sum();
    ticks as f64 / TICKS_PER_SEC
}

/// Waits until `settled` holds.
async fn settle(settled: &Settled) -> Result<()> {
    let since = Instant::now();
    while !settled()? {
        anyhow::ensure!(
            since.elapsed() < SETTLE_LIMIT,
            "the scenario's work did not settle within {} s",
            SETTLE_LIMIT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// A scenario's outcomes, one per round.
pub struct Measured {
    pub name: String,
    pub outcomes: Vec<Outcome>,
}

impl Measured {
    pub fn rps(&self) -> Spread {
        Spread::of(self.outcomes.iter().map(Outcome::rps))
    }

    /// A latency quantile in milliseconds.
    pub fn ms(&self, q: f64) -> Spread {
        Spread::of(self.outcomes.iter().map(|o| o.ms(q)))
    }

    /// This scenario's req/s over `other`'s, round by round (each ratio from one round).
    pub fn rps_over(&self, other: &Measured) -> Spread {
        Spread::of(
            self.outcomes
                .iter()
                .zip(&other.outcomes)
                .map(|(a, b)| a.rps() / b.rps()),
        )
    }

    /// The host's CPU milliseconds per request, when measured.
    pub fn cpu_ms(&self) -> Option<Spread> {
        let values: Option<Vec<f64>> = self
            .outcomes
            .iter()
            .map(|o| o.cpu_ms_per_request())
            .collect();
        values.map(Spread::of)
    }

    /// This scenario's host CPU per request over `other`'s, round by round.
    pub fn cpu_over(&self, other: &Measured) -> Option<Spread> {
        let values: Option<Vec<f64>> = self
            .outcomes
            .iter()
            .zip(&other.outcomes)
            .map(|(a, b)| Some(a.cpu_ms_per_request()? / b.cpu_ms_per_request()?))
            .collect();
        values.map(Spread::of)
    }

    /// This scenario's mean latency minus `other`'s, round by round.
    pub fn mean_ms_minus(&self, other: &Measured) -> Spread {
        Spread::of(
            self.outcomes
                .iter()
                .zip(&other.outcomes)
                .map(|(a, b)| a.mean_ms() - b.mean_ms()),
        )
    }
}

/// The median of a figure over rounds, and its range.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub rounds: usize,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut values: Vec<f64> = values.into_iter().collect();
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => values[n / 2],
            _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        };
        Self {
            median,
            min: values.first().copied().unwrap_or(f64::NAN),
            max: values.last().copied().unwrap_or(f64::NAN),
            rounds: n,
        }
    }

    /// `1,234` for one round; `1,234 (1,200–1,300)` for several: whole numbers (req/s).
    pub fn whole(&self) -> String {
        self.show(|v| thousands(v.round() as i64))
    }

    /// The same with two decimals (latencies, ratios).
    pub fn decimals(&self) -> String {
        self.show(|v| format!("{v:.2}"))
    }

    fn show(&self, f: impl Fn(f64) -> String) -> String {
        if self.rounds <= 1 {
            f(self.median)
        } else {
            format!("{} ({}–{})", f(self.median), f(self.min), f(self.max))
        }
    }
}

/// `12345` → `12,345`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Runs every scenario `rounds` times, interleaved, checking every answer's status.
pub async fn run(scenarios: Vec<Scenario>, rounds: usize) -> Result<Vec<Measured>> {
    let mut measured: Vec<Measured> = scenarios
        .iter()
        .map(|s| Measured {
            name: s.name.clone(),
            outcomes: Vec::new(),
        })
        .collect();
    for round in 1..=rounds.max(1) {
        if rounds > 1 {
            eprintln!("== round {round} of {rounds}");
        }
        for (scenario, into) in scenarios.iter().zip(&mut measured) {
            let cpu_before = scenario.cpu.as_ref().map(|cpu| group_cpu_secs(cpu.pgid));
            let mut outcome = load::run(
                scenario.addr,
                scenario.load,
                scenario.expect,
                scenario.make.clone(),
            )
            .await?;
            if let (Some(cpu), Some(before)) = (&scenario.cpu, cpu_before) {
                settle(&cpu.settled).await?;
                outcome.host_cpu_secs = Some(group_cpu_secs(cpu.pgid) - before);
            }
            eprintln!(
                "{}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms ({} unexpected)",
                scenario.name,
                outcome.rps(),
                outcome.ms(0.5),
                outcome.ms(0.99),
                outcome.unexpected
            );
            anyhow::ensure!(
                outcome.unexpected == 0,
                "{}: {} answers had an unexpected status (first: {:?})",
                scenario.name,
                outcome.unexpected,
                outcome.first_unexpected
            );
            into.outcomes.push(outcome);
        }
    }
    Ok(measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let s = Spread::of([4.0, 1.0, 3.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
    }

    #[test]
    fn one_round_shows_no_spread() {
        assert_eq!(Spread::of([1234.4]).whole(), "1,234");
        assert_eq!(Spread::of([3.0, 1.0, 2.0]).whole(), "2 (1–3)");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(-1_000), "-1,000");
    }
}
