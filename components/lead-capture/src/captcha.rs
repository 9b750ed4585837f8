//! The captcha check of a capture: the visitor's token goes to the tenant's provider
//! (Cloudflare Turnstile or hCaptcha) with the tenant's secret, before anything is stored.
//!
//! The verify endpoints' base URLs are the `turnstile_verify_base` and `hcaptcha_verify_base`
//! variables, which are also in this component's `allowed_outbound_hosts`; a call goes out only
//! for a tenant that turned its captcha on. A missing token, or one the provider refuses, is
//! `422 captcha_failed`. No usable answer (unreachable, timed out, a 5xx, the provider's own
//! internal error) is `503 captcha_unavailable` with `Retry-After`: nothing is stored, and the
//! visitor's retry (the form keeps what they typed) can still store the lead, so no lead is
//! lost without the visitor being told.

use std::time::Duration;

use domain::spam::{Captcha, CaptchaProvider, CaptchaToken, Verdict, verdict};
use platform::ApiError;
use platform::config::variable;
use platform::outbound::{self, Timeouts};

/// A visitor waits on this call: a provider that does not answer within these is unavailable.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    first_byte: Duration::from_secs(4),
    between_bytes: Duration::from_secs(2),
};

/// Seconds a visitor is asked to wait after `503 captcha_unavailable`.
pub const RETRY_AFTER_SECS: u64 = 3;

fn failed() -> ApiError {
    ApiError::Unprocessable {
        code: "captcha_failed",
        detail: "the captcha check failed; complete it again and resend the form".into(),
    }
}

fn unavailable() -> ApiError {
    ApiError::UpstreamUnavailable {
        code: "captcha_unavailable",
        detail: format!(
            "the captcha could not be checked just now; nothing was stored; retry in {RETRY_AFTER_SECS} s"
        ),
        retry_after_secs: RETRY_AFTER_SECS,
    }
}

/// Passes, or refuses the post: `client` is the visitor's address as capture reads it (sent
/// to the provider when it is an IP address).
pub fn check(token: CaptchaToken<'_>, client: &str) -> Result<(), ApiError> {
    match token {
        CaptchaToken::NotRequired => Ok(()),
        CaptchaToken::Missing => Err(failed()),
        CaptchaToken::Verify(captcha, token) => verify(captcha, token, client),
    }
}

fn verify_url(provider: CaptchaProvider) -> anyhow::Result<url::Url> {
    let name = match provider {
        CaptchaProvider::Turnstile => "turnstile_verify_base",
        CaptchaProvider::Hcaptcha => "hcaptcha_verify_base",
    };
    let base = variable(name).map_err(|e| anyhow::anyhow!("variable {name}: {e}"))?;
    let base = url::Url::parse(base.trim())
        .map_err(|e| anyhow::anyhow!("variable {name} is not a URL: {e}"))?;
    anyhow::ensure!(
        matches!(base.scheme(), "http" | "https"),
        "variable {name} must be http(s)"
    );
    Ok(base.join(provider.verify_path())?)
}

fn verify(captcha: &Captcha, token: &str, client: &str) -> Result<(), ApiError> {
    let provider = captcha.provider.as_str();
    let url = verify_url(captcha.provider).map_err(|e| {
        eprintln!("captcha ({provider}) cannot be checked: {e:#}");
        unavailable()
    })?;
    let body = captcha.verify_body(token, Some(client));
    let answer = outbound::send(
        &http::Method::POST,
        &url,
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json"),
        ],
        Some(body.as_bytes()),
        TIMEOUTS,
    )
    .map_err(|e| {
        eprintln!("captcha ({provider}) verify call failed: {e}");
        unavailable()
    })?;
    match verdict(answer.status, &answer.body) {
        Verdict::Passed => Ok(()),
        Verdict::Failed(codes) => {
            // A tenant whose secret is wrong sees `invalid-input-secret` here, in the log.
            eprintln!("captcha ({provider}) refused the token: {codes:?}");
            Err(failed())
        }
        Verdict::Unavailable(why) => {
            eprintln!("captcha ({provider}) gave no usable answer: {why}");
            Err(unavailable())
        }
    }
}
