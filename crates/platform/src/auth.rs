//! The gate: each kind of caller is verified here, and each proof hands out only the storage
//! that caller may use.
//!
//! - A tenant ([`authenticate`]): a token from `Authorization: Bearer`, or for capture only the
//!   `key` query parameter (plain HTML forms cannot send headers). Checks: signature, scope,
//!   expiry, `nbf` and lifetime (domain), then the tenant's existence, status and, for capture
//!   tokens, the key generation. Cost: one key-value read. The proof is a [`TenantContext`],
//!   whose storage is scoped to the tenant.
//! - The operator ([`authenticate_admin`]): an `admin` token, signed with its own
//!   `admin_token_secret`; [`AdminContext`] hands out the whole database.
//! - The SaaS back end's signup webhook ([`verify_signup`]): a Standard Webhooks signature;
//!   [`VerifiedSignup`] hands out the database to create the tenant.
//! - Systeme.io's callback ([`verify_systeme_callback`]): an HMAC of the raw body;
//!   [`SystemeCallback`] hands out the database, so the callback can find the tenants it
//!   belongs to and then scope itself to each.

use domain::signature::{SignatureError, verify_standard, verify_systeme};
use domain::tenant::{Signup, SignupError, TenantStatus};
use domain::token::{Scope, TokenError, verify};
use spin_sdk::http::Request;

use crate::ApiError;
use crate::clock::now_unix;
use crate::db::Db;
use crate::tenant::{TenantContext, load_tenant};

/// Proof that the request carried a valid `admin` token.
#[derive(Debug)]
pub struct AdminContext {
    /// The token's `exp`, unix seconds.
    expires_at: i64,
}

impl AdminContext {
    /// Seconds until the admin token expires, so its holder (the sync job) can see a token
    /// close to expiry before it stops working.
    pub fn expires_in(&self) -> i64 {
        self.expires_at.saturating_sub(now_unix())
    }

    /// The whole database, migrated: the operator's batch and directory span every tenant.
    pub fn db(&self) -> Result<Db, ApiError> {
        Ok(Db::open_migrated()?)
    }
}

fn unauthorized(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::Unauthorized {
        code,
        detail: detail.into(),
    }
}

fn token_error(e: &TokenError) -> ApiError {
    match e {
        TokenError::WrongScope { .. } => ApiError::Forbidden {
            code: e.code(),
            detail: e.to_string(),
        },
        _ => unauthorized(e.code(), e.to_string()),
    }
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header(name).and_then(|v| v.as_str())
}

fn bearer(req: &Request) -> Option<String> {
    let (scheme, token) = header(req, "authorization")?.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// The capture token in the `key` query parameter (plain HTML forms), if any.
pub fn query_key(req: &Request) -> Option<String> {
    url::form_urlencoded::parse(req.query().as_bytes())
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.into_owned())
}

fn token(req: &Request, scope: Scope) -> Result<String, ApiError> {
    let token = match scope {
        Scope::Capture => bearer(req).or_else(|| query_key(req)),
        _ => bearer(req),
    };
    token.filter(|t| !t.is_empty()).ok_or_else(|| {
        unauthorized(
            "token_missing",
            match scope {
                Scope::Capture => "send the capture token as `Authorization: Bearer …` or `?key=…`",
                _ => "send the token as `Authorization: Bearer …`",
            },
        )
    })
}

/// Verifies the request's token for `scope` (capture or dashboard) and loads its tenant.
pub fn authenticate(req: &Request, scope: Scope) -> Result<TenantContext, ApiError> {
    let secret = crate::config::token_secret()?;
    let verified =
        verify(&secret, &token(req, scope)?, scope, now_unix()).map_err(|e| token_error(&e))?;
    let Some(id) = verified.tenant else {
        return Err(token_error(&TokenError::InvalidClaims("sub")));
    };
    let db = Db::open()?;
    let tenant = load_tenant(&db, &id)?
        .ok_or_else(|| unauthorized("tenant_unknown", "the token's tenant does not exist"))?;
    if tenant.status == TenantStatus::Suspended {
        return Err(ApiError::Forbidden {
            code: "tenant_suspended",
            detail: "this tenant is suspended".into(),
        });
    }
    if let Some(generation) = verified.generation
        && generation != tenant.capture_gen
    {
        return Err(unauthorized(
            "token_revoked",
            "this capture key has been rotated; use the current one",
        ));
    }
    Ok(TenantContext::new(tenant, db))
}

/// Verifies the request's `admin` token, signed with `admin_token_secret`.
///
/// A token whose signature does not verify with it is tried once more with `token_secret`,
/// only to tell a tenant's token (`403 token_scope`, as on every other route) from a forgery.
/// An `admin` token signed with `token_secret`, which the SaaS back end could mint, stays
/// `401 token_signature`.
pub fn authenticate_admin(req: &Request) -> Result<AdminContext, ApiError> {
    let token = token(req, Scope::Admin)?;
    let now = now_unix();
    match verify(
        &crate::config::admin_token_secret()?,
        &token,
        Scope::Admin,
        now,
    ) {
        Ok(verified) => Ok(AdminContext {
            // `verify` refuses an admin token without `exp`.
            expires_at: verified
                .expires_at
                .ok_or_else(|| token_error(&TokenError::InvalidClaims("exp")))?,
        }),
        Err(TokenError::BadSignature) => {
            match verify(&crate::config::token_secret()?, &token, Scope::Admin, now) {
                Err(e @ TokenError::WrongScope { .. }) => Err(token_error(&e)),
                _ => Err(token_error(&TokenError::BadSignature)),
            }
        }
        Err(e) => Err(token_error(&e)),
    }
}

/// A signup webhook whose Standard Webhooks signature verified. Only [`verify_signup`] builds
/// one; it is what the tenant directory needs to create a tenant.
#[derive(Debug)]
pub struct VerifiedSignup {
    pub webhook_id: String,
    pub signup: Signup,
}

impl VerifiedSignup {
    /// The database, to create the tenant and record the webhook id.
    pub fn db(&self) -> Result<Db, ApiError> {
        Ok(Db::open()?)
    }
}

/// Verifies a signup webhook (signature before parsing) and validates its body.
pub fn verify_signup(req: &Request) -> Result<VerifiedSignup, ApiError> {
    let body = req.body();
    let secret = crate::config::signup_secret()?;
    let id = header(req, "webhook-id");
    verify_standard(
        &secret,
        id,
        header(req, "webhook-timestamp"),
        header(req, "webhook-signature"),
        body,
        now_unix(),
    )
    .map_err(|e: SignatureError| unauthorized(e.code(), e.to_string()))?;
    let signup = Signup::parse(body).map_err(|e| match e {
        SignupError::NotJson => ApiError::BadRequest {
            code: "invalid_json",
            detail: e.to_string(),
        },
        SignupError::Field(f) => ApiError::Unprocessable {
            code: "invalid_field",
            detail: f.to_string(),
        },
    })?;
    Ok(VerifiedSignup {
        webhook_id: id.unwrap_or_default().to_string(),
        signup,
    })
}

/// A Systeme.io callback whose HMAC over the raw body verified, with its message id. Only
/// [`verify_systeme_callback`] builds one. Its body is still unparsed: parsing is the
/// callback feature's business.
#[derive(Debug)]
pub struct SystemeCallback<'a> {
    pub message_id: String,
    /// `x-webhook-event`, empty when absent.
    pub event: &'a str,
    /// The raw body the signature covers.
    pub body: &'a [u8],
}

impl SystemeCallback<'_> {
    /// The database: a callback finds its tenants by tag prefix or buyer, then scopes itself
    /// to each with [`crate::scope::TenantDb::on`].
    pub fn db(&self) -> Result<Db, ApiError> {
        Ok(Db::open()?)
    }
}

/// Checks the signature over the raw body (Systeme.io escapes `/` as `\/`, so
/// nothing is re-serialised), then the message id.
pub fn verify_systeme_callback(req: &Request) -> Result<SystemeCallback<'_>, ApiError> {
    let secret = crate::config::systeme_webhook_secret()?;
    verify_systeme(&secret, header(req, "x-webhook-signature"), req.body()).map_err(|e| {
        ApiError::Unauthorized {
            code: e.code(),
            detail: e.to_string(),
        }
    })?;
    let message_id = header(req, "x-webhook-message-id")
        .map(str::trim)
        .filter(|m| !m.is_empty() && m.len() <= 200)
        .ok_or_else(|| ApiError::BadRequest {
            code: "message_id_missing",
            detail: "x-webhook-message-id is required (1 to 200 characters)".into(),
        })?
        .to_string();
    Ok(SystemeCallback {
        message_id,
        event: header(req, "x-webhook-event").unwrap_or_default(),
        body: req.body(),
    })
}

/// The path prefix of requests between the app's own components (Spin's service chaining,
/// `http://<component>.spin.internal/v1/internal/…`). No public route in spin.toml covers it,
/// so a request with such a path reached the component by chaining.
pub const INTERNAL_PREFIX: &str = "/v1/internal/";

/// Proof that a request came from another component of this app by service chaining: it
/// carries no credential, so what it may do needs none (the `alerts` component's chained
/// route only sends what is already due, as the operator's batch does).
#[derive(Debug)]
pub struct ChainedCall(());

impl ChainedCall {
    /// The whole database: a chained call works across tenants, like the operator's batch.
    pub fn db(&self) -> Result<Db, ApiError> {
        Ok(Db::open()?)
    }
}

/// A request under [`INTERNAL_PREFIX`]; any other path is `404`.
pub fn chained_call(req: &Request) -> Result<ChainedCall, ApiError> {
    if req.path().starts_with(INTERNAL_PREFIX) {
        Ok(ChainedCall(()))
    } else {
        Err(ApiError::route_not_found(req.path()))
    }
}
