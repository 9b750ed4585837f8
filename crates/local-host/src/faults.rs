//! Fault injection for tests (never for production): makes a chosen share of SQLite or
//! key-value calls fail as busy or I/O errors, or stall, so the app's retry and `503` paths can
//! be proven without a real libSQL or Redis misbehaving.
//!
//! Configured from the environment when the host starts:
//!
//! ```text
//! CFE_FAULT_SQLITE=busy:0.1        # 10% of SQLite calls fail with "database is locked"
//! CFE_FAULT_SQLITE=io:1            # every SQLite call fails with "disk I/O error"
//! CFE_FAULT_KV=io:0.5              # half the key-value calls fail (backend unreachable)
//! CFE_FAULT_SQLITE=stall:300:0.2   # 20% of SQLite calls wait 300 ms first, then run
//! ```
//!
//! The messages are the ones real backends give, so the component sees what it would see.

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
    /// Wait this long, then run the call.
    Stall(Duration),
}

/// A fault and the share of calls it hits (0.0–1.0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRule {
    pub fault: Fault,
    pub share: f64,
}

impl FaultRule {
    /// Parses `busy:SHARE`, `io:SHARE` or `stall:MILLIS:SHARE`.
    pub fn parse(value: &str) -> Result<Self> {
        let parts: Vec<&str> = value.trim().split(':').collect();
        let share = |s: &str| -> Result<f64> {
            let share: f64 = s.parse().with_context(|| format!("share {s:?}"))?;
            if !(0.0..=1.0).contains(&share) {
                bail!("share {share} is not between 0 and 1");
            }
            Ok(share)
        };
        let rule = match parts.as_slice() {
            ["busy", s] => Self {
                fault: Fault::Busy,
                share: share(s)?,
            },
            ["io", s] => Self {
                fault: Fault::Io,
                share: share(s)?,
            },
            ["stall", ms, s] => Self {
                fault: Fault::Stall(Duration::from_millis(
                    ms.parse().with_context(|| format!("stall millis {ms:?}"))?,
                )),
                share: share(s)?,
            },
            _ => bail!("expected busy:SHARE, io:SHARE or stall:MILLIS:SHARE, not {value:?}"),
        };
        Ok(rule)
    }

    /// Whether this call is hit.
    fn hits(&self) -> bool {
        self.share >= 1.0 || fastrand::f64() < self.share
    }
}

/// The configured faults, read once from the environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct Faults {
    pub sqlite: Option<FaultRule>,
    pub kv: Option<FaultRule>,
}

impl Faults {
    pub fn from_env() -> Result<Self> {
        let rule = |name: &str| -> Result<Option<FaultRule>> {
            match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => FaultRule::parse(&v)
                    .map(Some)
                    .with_context(|| name.to_string()),
                _ => Ok(None),
            }
        };
        Ok(Self {
            sqlite: rule("CFE_FAULT_SQLITE")?,
            kv: rule("CFE_FAULT_KV")?,
        })
    }
}

static FAULTS: LazyLock<Faults> = LazyLock::new(|| Faults::from_env().unwrap_or_default());

/// Checks the environment at start-up, so a typo is a start-up error rather than a test that
/// silently injects nothing; logs what is active.
pub fn check_env() -> Result<()> {
    let faults = Faults::from_env()?;
    if faults.sqlite.is_some() || faults.kv.is_some() {
        eprintln!("cfe-host: FAULT INJECTION ACTIVE (tests only): {faults:?}");
    }
    Ok(())
}

/// Runs an injected SQLite fault, if one hits: `Err(message)` as SQLite would say it.
pub fn sqlite() -> Result<(), String> {
    inject(FAULTS.sqlite, "database is locked", "disk I/O error")
}

/// Runs an injected key-value fault, if one hits: `Err(message)` as a backend would say it.
pub fn kv() -> Result<(), String> {
    inject(
        FAULTS.kv,
        "database is locked",
        "connection refused (injected fault)",
    )
}

fn inject(rule: Option<FaultRule>, busy: &str, io: &str) -> Result<(), String> {
    let Some(rule) = rule.filter(FaultRule::hits) else {
        return Ok(());
    };
    match rule.fault {
        Fault::Busy => Err(busy.to_string()),
        Fault::Io => Err(io.to_string()),
        Fault::Stall(d) => {
            std::thread::sleep(d);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_rules_parse() {
        assert_eq!(
            FaultRule::parse("busy:0.1").unwrap_or_else(|e| panic!("{e}")),
            FaultRule {
                fault: Fault::Busy,
                share: 0.1
            }
        );
        assert_eq!(
            FaultRule::parse("stall:250:1").unwrap_or_else(|e| panic!("{e}")),
            FaultRule {
                fault: Fault::Stall(Duration::from_millis(250)),
                share: 1.0
            }
        );
        for bad in ["", "busy", "busy:2", "io:-1", "stall:x:1", "melt:0.5"] {
            assert!(FaultRule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_full_share_always_hits_and_an_empty_one_never() {
        let always = Some(FaultRule {
            fault: Fault::Io,
            share: 1.0,
        });
        let never = Some(FaultRule {
            fault: Fault::Io,
            share: 0.0,
        });
        for _ in 0..100 {
            assert!(inject(always, "b", "i").is_err());
            assert!(inject(never, "b", "i").is_ok());
        }
    }
}
