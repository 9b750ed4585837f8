//! What the CLI reads from its surroundings: the clock and the app's secrets.

use anyhow::{Context, Result};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time now, in seconds.
pub fn now() -> Result<i64> {
    Ok(i64::try_from(
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
    )?)
}

/// A secret from the environment, else from `./.env` (the file `scripts/run` writes), so the
/// CLI and the app share one source of secrets.
pub fn env_secret(name: &str) -> Result<String> {
    if let Ok(value) = std::env::var(name) {
        return Ok(value);
    }
    let from_file = dotenvy::from_path_iter(".env").ok().and_then(|iter| {
        iter.filter_map(Result::ok)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    });
    from_file.with_context(|| format!("{name} is not set (in the environment or .env)"))
}
