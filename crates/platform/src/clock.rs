//! Time and randomness from the host (WASI clocks and `wasi:random`).

use anyhow::{Context, Result};
use time::OffsetDateTime;

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Now as RFC 3339 UTC with millisecond precision, the format every stored timestamp uses.
/// Fixed width (`2026-11-22T09:14:02.123Z`), so timestamps sort correctly as text and the first
/// ten characters are the UTC day.
pub fn now_rfc3339() -> Result<String> {
    Ok(timestamp(OffsetDateTime::now_utc()))
}

/// `t` in the stored timestamp format (see [`now_rfc3339`]).
pub fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A time-ordered id (UUID v7): ids sort by creation, which keyset pagination relies on.
pub fn new_id() -> Result<String> {
    let millis = u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .context("the clock is before 1970")?;
    Ok(
        uuid::Builder::from_unix_timestamp_millis(millis, &random()?)
            .into_uuid()
            .hyphenated()
            .to_string(),
    )
}

/// Random bytes from the host's CSPRNG.
pub fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("reading host randomness: {e}"))?;
    Ok(bytes)
}
