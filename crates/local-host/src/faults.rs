//! Fault injection for tests (never for production): makes a chosen share of SQLite or
//! key-value calls fail as busy or I/O errors, or stall, and can make every SQLite call pay a
//! network round trip, so the app's retry and `503` paths, and its behaviour on a remote
//! database, can be proven without a real libSQL or Redis misbehaving.
//!
//! Configured from the environment when the host starts. A value is one rule or several,
//! separated by commas; each rule hits independently, in the order written:
//!
//! ```text
//! CFE_FAULT_SQLITE=busy:0.1                 # 10% of SQLite calls fail with "database is locked"
//! CFE_FAULT_SQLITE=io:1                     # every SQLite call fails with "disk I/O error"
//! CFE_FAULT_KV=io:0.5                       # half the key-value calls fail (backend unreachable)
//! CFE_FAULT_SQLITE=stall:300:0.2            # 20% of SQLite calls wait 300 ms first, then run
//! CFE_FAULT_SQLITE=latency:2ms              # every SQLite call waits 2 ms first (a round trip)
//! CFE_FAULT_SQLITE=latency:10ms,stall:3s:0.01   # 10 ms each, and 1% wait 3 s more
//! ```
//!
//! A duration is a number with `us`, `ms` or `s`; a bare number is milliseconds. A share is
//! between 0 and 1. SQLite rules hit every `execute`; an `open` pays their waits but never
//! fails (see [`sqlite_open_wait`]).
//!
//! The messages are the ones real backends give, so the component sees what it would see.
//!
//! The waits model a remote database (libSQL over HTTP, as Spin's `type = "libsql"` does
//! it): each SQLite call is a request to the server and its answer. They happen for each call
//! on its own (an `execute`'s on the blocking thread that then runs it, an `open`'s as a timer),
//! before the call reaches SQLite and outside every lock, so concurrent
//! requests wait side by side, as concurrent HTTP requests to `sqld` do. SQLite's own write
//! lock is held across a wait only where a remote database holds it too: between a
//! `BEGIN IMMEDIATE` and its `COMMIT`, which are separate round trips.

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// What an injected fault does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Fail as if another writer held the lock.
    Busy,
    /// Fail as if the disk or the backend connection failed.
    Io,
    /// Wait this long, then run the call (a stalled round trip).
    Stall(Duration),
    /// Wait this long, then run the call, on every call (the round trip itself).
    Latency(Duration),
}

/// A fault and the share of calls it hits (0.0–1.0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRule {
    pub fault: Fault,
    pub share: f64,
}

/// Parses `250` (milliseconds), `250ms`, `3s`, `1.5s` or `500us`.
fn duration(text: &str) -> Result<Duration> {
    let (number, unit) = match text {
        t if t.ends_with("us") => (&t[..t.len() - 2], 1e-6),
        t if t.ends_with("ms") => (&t[..t.len() - 2], 1e-3),
        t if t.ends_with('s') => (&t[..t.len() - 1], 1.0),
        t => (t, 1e-3),
    };
    let value: f64 = number
        .parse()
        .with_context(|| format!("duration {text:?}"))?;
    if !value.is_finite() || value < 0.0 {
        bail!("duration {text:?} is not a non-negative number");
    }
    Duration::try_from_secs_f64(value * unit).with_context(|| format!("duration {text:?}"))
}

fn share(text: &str) -> Result<f64> {
    let share: f64 = text.parse().with_context(|| format!("share {text:?}"))?;
    if !(0.0..=1.0).contains(&share) {
        bail!("share {share} is not between 0 and 1");
    }
    Ok(share)
}

impl FaultRule {
    /// Parses one rule: `busy:SHARE`, `io:SHARE`, `stall:DURATION:SHARE` or
    /// `latency:DURATION`.
    pub fn parse(value: &str) -> Result<Self> {
        let parts: Vec<&str> = value.trim().split(':').map(str::trim).collect();
        let rule = match parts.as_slice() {
            ["busy", s] => Self {
                fault: Fault::Busy,
                share: share(s)?,
            },
            ["io", s] => Self {
                fault: Fault::Io,
                share: share(s)?,
            },
            ["stall", d, s] => Self {
                fault: Fault::Stall(duration(d)?),
                share: share(s)?,
            },
            ["latency", d] => Self {
                fault: Fault::Latency(duration(d)?),
                share: 1.0,
            },
            _ => bail!(
                "expected busy:SHARE, io:SHARE, stall:DURATION:SHARE or latency:DURATION, \
                 not {value:?}"
            ),
        };
        Ok(rule)
    }

    /// Parses a comma-separated list of rules.
    pub fn parse_all(value: &str) -> Result<Vec<Self>> {
        value.split(',').map(Self::parse).collect()
    }

    /// Whether this call is hit.
    fn hits(&self) -> bool {
        self.share >= 1.0 || fastrand::f64() < self.share
    }
}

/// The configured faults, read once from the environment.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    pub sqlite: Vec<FaultRule>,
    pub kv: Vec<FaultRule>,
}

impl Faults {
    pub fn from_env() -> Result<Self> {
        let rules = |name: &str| -> Result<Vec<FaultRule>> {
            match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => {
                    FaultRule::parse_all(&v).with_context(|| name.to_string())
                }
                _ => Ok(Vec::new()),
            }
        };
        Ok(Self {
            sqlite: rules("CFE_FAULT_SQLITE")?,
            kv: rules("CFE_FAULT_KV")?,
        })
    }
}

static FAULTS: LazyLock<Faults> = LazyLock::new(|| Faults::from_env().unwrap_or_default());

/// Checks the environment at start-up, so a typo is a start-up error rather than a test that
/// silently injects nothing; logs what is active.
pub fn check_env() -> Result<()> {
    let faults = Faults::from_env()?;
    if !faults.sqlite.is_empty() || !faults.kv.is_empty() {
        eprintln!("cfe-host: FAULT INJECTION ACTIVE (tests only): {faults:?}");
    }
    Ok(())
}

/// Runs the injected SQLite faults for one `execute`: waits what the rules say, then
/// `Err(message)` as SQLite would say it if a failure hits. Call it outside every host lock.
pub fn sqlite() -> Result<(), String> {
    inject(&FAULTS.sqlite, "database is locked", "disk I/O error")
}

/// How long one `open` waits under the injected SQLite rules; never a failure. Spin opens a
/// libSQL database lazily (its first statement makes a new HTTP connection to the server), so
/// an open cannot fail there; the wait stands for that connection's set-up.
pub fn sqlite_open_wait() -> Duration {
    FAULTS
        .sqlite
        .iter()
        .filter(|r| r.hits())
        .map(|r| match r.fault {
            Fault::Stall(d) | Fault::Latency(d) => d,
            Fault::Busy | Fault::Io => Duration::ZERO,
        })
        .sum()
}

/// Runs the injected key-value faults for one call: `Err(message)` as a backend would say it.
pub fn kv() -> Result<(), String> {
    inject(
        &FAULTS.kv,
        "database is locked",
        "connection refused (injected fault)",
    )
}

fn inject(rules: &[FaultRule], busy: &str, io: &str) -> Result<(), String> {
    let mut wait = Duration::ZERO;
    let mut outcome = Ok(());
    for rule in rules.iter().filter(|r| r.hits()) {
        match rule.fault {
            Fault::Busy => outcome = outcome.and(Err(busy.to_string())),
            Fault::Io => outcome = outcome.and(Err(io.to_string())),
            Fault::Stall(d) | Fault::Latency(d) => wait += d,
        }
    }
    // A failure comes back from the remote end too: after the round trip.
    if !wait.is_zero() {
        std::thread::sleep(wait);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Vec<FaultRule> {
        FaultRule::parse_all(value).unwrap_or_else(|e| panic!("{value:?}: {e:#}"))
    }

    #[test]
    fn fault_rules_parse() {
        assert_eq!(
            parse("busy:0.1"),
            [FaultRule {
                fault: Fault::Busy,
                share: 0.1
            }]
        );
        assert_eq!(
            parse("stall:250:1"),
            [FaultRule {
                fault: Fault::Stall(Duration::from_millis(250)),
                share: 1.0
            }]
        );
        for bad in ["", "busy", "busy:2", "io:-1", "stall:x:1", "melt:0.5"] {
            assert!(FaultRule::parse_all(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn latency_and_stall_take_durations_with_units_and_combine() {
        assert_eq!(
            parse("latency:2ms"),
            [FaultRule {
                fault: Fault::Latency(Duration::from_millis(2)),
                share: 1.0
            }]
        );
        assert_eq!(
            parse("latency:10ms, stall:3s:0.01"),
            [
                FaultRule {
                    fault: Fault::Latency(Duration::from_millis(10)),
                    share: 1.0
                },
                FaultRule {
                    fault: Fault::Stall(Duration::from_secs(3)),
                    share: 0.01
                },
            ]
        );
        assert_eq!(
            parse("latency:500us,stall:1.5s:0.5,busy:0.1"),
            [
                FaultRule {
                    fault: Fault::Latency(Duration::from_micros(500)),
                    share: 1.0
                },
                FaultRule {
                    fault: Fault::Stall(Duration::from_millis(1500)),
                    share: 0.5
                },
                FaultRule {
                    fault: Fault::Busy,
                    share: 0.1
                },
            ]
        );
        assert_eq!(
            parse("latency:0"),
            [FaultRule {
                fault: Fault::Latency(Duration::ZERO),
                share: 1.0
            }]
        );
        for bad in [
            "latency",
            "latency:",
            "latency:2ms:0.5",
            "latency:-2ms",
            "latency:fast",
            "latency:2h",
            "stall:3s",
            "stall:3s:2",
            "latency:2ms,",
            "latency:2ms,,busy:0.1",
        ] {
            assert!(FaultRule::parse_all(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_full_share_always_hits_and_an_empty_one_never() {
        let always = [FaultRule {
            fault: Fault::Io,
            share: 1.0,
        }];
        let never = [FaultRule {
            fault: Fault::Io,
            share: 0.0,
        }];
        for _ in 0..100 {
            assert!(inject(&always, "b", "i").is_err());
            assert!(inject(&never, "b", "i").is_ok());
        }
    }

    #[test]
    fn latency_waits_on_every_call_and_adds_to_a_stall() {
        let rules = parse("latency:20ms,stall:30ms:1");
        let started = std::time::Instant::now();
        assert!(inject(&rules, "b", "i").is_ok());
        assert!(started.elapsed() >= Duration::from_millis(50));
        let failing = parse("latency:20ms,io:1");
        let started = std::time::Instant::now();
        assert_eq!(inject(&failing, "b", "i"), Err("i".to_string()));
        assert!(
            started.elapsed() >= Duration::from_millis(20),
            "a failure answers after the round trip"
        );
    }
}
