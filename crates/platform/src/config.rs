//! Reads the app's configuration and secrets from Spin variables. A missing or malformed secret is a clear
//! first-request error: the log names the variable, the client gets a generic 500.

use anyhow::{Context, anyhow};
use domain::secret::{SystemeSecret, TokenSecret, WebhookSecret};

use crate::ApiError;

/// The Spin variable `name` (declared for this component in spin.toml).
pub fn variable(name: &str) -> Result<String, ApiError> {
    spin_sdk::variables::get(name)
        .map_err(|e| anyhow!("{e:?}"))
        .with_context(|| format!("reading Spin variable `{name}` (declare it for this component and set SPIN_VARIABLE_{})", name.to_uppercase()))
        .map_err(ApiError::from)
}

pub fn token_secret() -> Result<TokenSecret, ApiError> {
    let value = variable("token_secret")?;
    Ok(TokenSecret::parse(&value).context("variable token_secret")?)
}

/// `admin_token_secret`: the key of admin tokens only, so whoever holds `token_secret` (the SaaS
/// back end, which mints dashboard tokens) cannot mint an admin token.
pub fn admin_token_secret() -> Result<TokenSecret, ApiError> {
    let value = variable("admin_token_secret")?;
    Ok(TokenSecret::parse_named("admin_token_secret", &value)
        .context("variable admin_token_secret")?)
}

pub fn signup_secret() -> Result<WebhookSecret, ApiError> {
    let value = variable("signup_secret")?;
    Ok(WebhookSecret::parse(&value).context("variable signup_secret")?)
}

pub fn systeme_webhook_secret() -> Result<SystemeSecret, ApiError> {
    let value = variable("systeme_webhook_secret")?;
    Ok(SystemeSecret::parse(&value).context("variable systeme_webhook_secret")?)
}

/// Capture requests allowed per client address per tenant per minute (`capture_rate_limit`).
pub fn capture_rate_limit() -> Result<u32, ApiError> {
    let value = variable("capture_rate_limit")?;
    Ok(value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            anyhow!("variable capture_rate_limit must be a positive whole number, not {value:?}")
        })?)
}
