//! `cfe-ops`: operator tooling. Mints capture and dashboard tokens from `token_secret`, admin
//! tokens from `admin_token_secret`, and signs signup webhooks with `signup_secret`, reading the
//! secrets from the same `SPIN_VARIABLE_*` environment (or `.env`) the app uses; `demo` gives
//! a running app a demo tenant with sample leads and prints its dashboard link.

mod demo;
mod env;

use anyhow::{Result, anyhow};
use clap::{Parser, Subcommand, ValueEnum};
use domain::secret::{TokenSecret, WebhookSecret};
use domain::tenant::TenantId;
use domain::token::{Claims, Scope};
use std::time::Duration;

use env::{env_secret, now};

#[derive(Parser)]
#[command(name = "cfe-ops", about = "ClientFlow Edge operator tooling")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScopeArg {
    Capture,
    Dashboard,
    Admin,
}

#[derive(Subcommand)]
enum Command {
    /// Print a token: capture and dashboard tokens signed with token_secret
    /// (SPIN_VARIABLE_TOKEN_SECRET), admin tokens with admin_token_secret
    /// (SPIN_VARIABLE_ADMIN_TOKEN_SECRET).
    Token {
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// Tenant id (not for admin tokens).
        #[arg(long)]
        tenant: Option<String>,
        /// Lifetime in seconds (default 3600 for dashboard and admin, at most 86400 and 7776000;
        /// none for capture unless given).
        #[arg(long)]
        ttl: Option<i64>,
        /// Capture-key generation (capture tokens).
        #[arg(long, default_value_t = 1)]
        generation: i64,
    },
    /// Sign a signup body with signup_secret (SPIN_VARIABLE_SIGNUP_SECRET) and print the
    /// Standard Webhooks headers as curl `-H` arguments.
    SignSignup {
        /// The exact JSON body that will be sent.
        body: String,
        /// webhook-id (default: a new one from the clock).
        #[arg(long)]
        id: Option<String>,
    },
    /// Wait for the app at --url to be healthy; when it has no tenant yet, create a demo tenant
    /// with a dozen sample leads through the public API; then print one line: the demo tenant's
    /// dashboard link and a curl that posts a lead.
    Demo {
        /// The app's base URL.
        #[arg(long, default_value = "http://127.0.0.1:3000")]
        url: String,
        /// Only print the link (when a demo tenant exists); never create one.
        #[arg(long)]
        no_seed: bool,
        /// Seconds to wait for /v1/health.
        #[arg(long, default_value_t = 600)]
        wait: u64,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Token {
            scope,
            tenant,
            ttl,
            generation,
        } => println!("{}", token(scope, tenant, ttl, generation)?),
        Command::Demo { url, no_seed, wait } => demo::run(&demo::Options {
            url,
            seed: !no_seed,
            wait: Duration::from_secs(wait),
        })?,
        Command::SignSignup { body, id } => {
            let secret = WebhookSecret::parse(&env_secret("SPIN_VARIABLE_SIGNUP_SECRET")?)?;
            let ts = now()?;
            let id = id.unwrap_or_else(|| format!("msg_{ts}"));
            let sig = domain::signature::sign_standard(&secret, &id, ts, body.as_bytes());
            println!(
                "-H 'webhook-id: {id}' -H 'webhook-timestamp: {ts}' -H 'webhook-signature: {sig}'"
            );
        }
    }
    Ok(())
}

/// A token of `scope`, signed with the secret that scope's tokens are verified with; refuses
/// what the app would refuse (no tenant, a lifetime over the scope's maximum).
fn token(
    scope: ScopeArg,
    tenant: Option<String>,
    ttl: Option<i64>,
    generation: i64,
) -> Result<String> {
    let scope = match scope {
        ScopeArg::Capture => Scope::Capture,
        ScopeArg::Dashboard => Scope::Dashboard,
        ScopeArg::Admin => Scope::Admin,
    };
    let secret = match scope {
        Scope::Admin => TokenSecret::parse_named(
            "admin_token_secret",
            &env_secret("SPIN_VARIABLE_ADMIN_TOKEN_SECRET")?,
        )?,
        _ => TokenSecret::parse(&env_secret("SPIN_VARIABLE_TOKEN_SECRET")?)?,
    };
    let sub = match (scope, tenant) {
        (Scope::Admin, _) => None,
        (_, Some(t)) => Some(TenantId::parse(&t)?.to_string()),
        (_, None) => {
            return Err(anyhow!(
                "--tenant is required for {} tokens",
                scope.as_str()
            ));
        }
    };
    let ttl = match (scope, ttl) {
        (Scope::Capture, ttl) => ttl,
        (_, Some(ttl)) => Some(ttl),
        (_, None) => Some(3600),
    };
    if let (Some(max), Some(ttl)) = (scope.max_lifetime_secs(), ttl)
        && ttl > max
    {
        return Err(anyhow!(
            "--ttl {ttl} is over the {max} s that {} tokens may live; the app would refuse it",
            scope.as_str()
        ));
    }
    let exp = ttl.map(|t| now().map(|n| n + t)).transpose()?;
    let generation = (scope == Scope::Capture).then_some(generation);
    let claims = Claims {
        sub,
        scope,
        exp,
        generation,
    };
    Ok(domain::token::mint(&secret, &claims))
}
