//! Reads the app's configuration and secrets from Spin variables. A missing or malformed secret is a clear
//! first-request error: the log names the variable, the client gets a generic 500. A secret the
//! repository publishes as an example is refused the same way, and [`check_secrets`] (the
//! readiness probe) answers 503 for either, so such a pod never becomes ready.

use anyhow::{Context, anyhow};
use domain::secret::{SecretError, SystemeSecret, TokenSecret, WebhookSecret, refuse_published};

use crate::ApiError;

/// The Spin variable `name` (declared for this component in spin.toml).
pub fn variable(name: &str) -> Result<String, ApiError> {
    spin_sdk::variables::get(name)
        .map_err(|e| anyhow!("{e:?}"))
        .with_context(|| format!("reading Spin variable `{name}` (declare it for this component and set SPIN_VARIABLE_{})", name.to_uppercase()))
        .map_err(ApiError::from)
}

/// The secret variable `name`, unless it is a value the repository publishes.
fn secret(name: &'static str) -> Result<String, ApiError> {
    let value = variable(name)?;
    refuse_published(name, &value).with_context(|| format!("variable {name}"))?;
    Ok(value)
}

pub fn token_secret() -> Result<TokenSecret, ApiError> {
    let value = secret("token_secret")?;
    Ok(TokenSecret::parse(&value).context("variable token_secret")?)
}

/// `admin_token_secret`: the key of admin tokens only, so whoever holds `token_secret` (the SaaS
/// back end, which mints dashboard tokens) cannot mint an admin token.
pub fn admin_token_secret() -> Result<TokenSecret, ApiError> {
    let value = secret("admin_token_secret")?;
    Ok(TokenSecret::parse_named("admin_token_secret", &value)
        .context("variable admin_token_secret")?)
}

pub fn signup_secret() -> Result<WebhookSecret, ApiError> {
    let value = secret("signup_secret")?;
    Ok(WebhookSecret::parse(&value).context("variable signup_secret")?)
}

pub fn systeme_webhook_secret() -> Result<SystemeSecret, ApiError> {
    let value = secret("systeme_webhook_secret")?;
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

/// A required secret's check: the contract's minimum for it.
type SecretCheck = fn(&str) -> Result<(), SecretError>;

/// Every required secret against the contract's minimum and the values the repository
/// publishes. `GET /v1/health` runs it first, so a pod with a weak or example secret never
/// becomes ready: the answer is `503 insecure_secret`, and the log names each refused variable
/// (never its value). A variable that is not set at all stays the generic 500 it is elsewhere.
pub fn check_secrets() -> Result<(), ApiError> {
    let checks: [(&'static str, SecretCheck); 4] = [
        ("token_secret", |v| TokenSecret::parse(v).map(drop)),
        ("admin_token_secret", |v| {
            TokenSecret::parse_named("admin_token_secret", v).map(drop)
        }),
        ("signup_secret", |v| WebhookSecret::parse(v).map(drop)),
        ("systeme_webhook_secret", |v| {
            SystemeSecret::parse(v).map(drop)
        }),
    ];
    let mut refused = 0;
    for (name, check) in checks {
        let value = variable(name)?;
        if let Err(e) = check(&value).and_then(|()| refuse_published(name, &value)) {
            eprintln!("refusing to serve: variable {name}: {e}");
            refused += 1;
        }
    }
    if refused > 0 {
        return Err(ApiError::Unavailable {
            code: "insecure_secret",
            detail: "A secret variable is weaker than the contract requires or is an example \
                     value published in the repository; the log names it."
                .to_string(),
        });
    }
    Ok(())
}

/// The forwarding header the trusted proxies write (`forwarded_header`; default
/// `x-forwarded-for`).
pub fn forwarded_header() -> Result<domain::client::ForwardedHeader, ApiError> {
    let value = variable("forwarded_header")?;
    Ok(domain::client::ForwardedHeader::parse(&value).context("variable forwarded_header")?)
}

/// The proxies whose forwarding headers name the client (`trusted_proxies`; empty: none).
pub fn trusted_proxies() -> Result<domain::client::TrustedProxies, ApiError> {
    let value = variable("trusted_proxies")?;
    Ok(domain::client::TrustedProxies::parse(&value).context("variable trusted_proxies")?)
}
