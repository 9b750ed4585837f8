//! The tenant gate: one function turns a request and a required scope into a verified context.
//!
//! Token from `Authorization: Bearer`, or, for capture only, the `key` query parameter (plain
//! HTML forms cannot send headers). Checks: signature, scope, expiry (domain), then the tenant's
//! existence, status and, for capture tokens, the key generation. Cost: one key-value read.

use domain::signature::{SignatureError, verify_standard};
use domain::tenant::{Signup, SignupError, TenantStatus};
use domain::token::{Scope, TokenError, verify};
use spin_sdk::http::Request;
use spin_sdk::sqlite::Value;

use crate::ApiError;
use crate::clock::now_unix;
use crate::tenant::{Tenant, TenantDb, TenantKv, load_tenant};

/// A request's verified tenant. Only [`authenticate`] builds one, and only it can build the
/// tenant's storage types.
#[derive(Debug)]
pub struct TenantContext {
    tenant: Tenant,
}

impl TenantContext {
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The database, scoped to this tenant.
    pub fn db(&self) -> Result<TenantDb, ApiError> {
        Ok(TenantDb::new(self.tenant.id.clone())?)
    }

    /// The key-value store, scoped to this tenant.
    pub fn kv(&self) -> Result<TenantKv, ApiError> {
        Ok(TenantKv::new(self.tenant.id.clone())?)
    }
}

/// Proof that the request carried a valid `admin` token.
#[derive(Debug)]
pub struct AdminContext {
    _private: (),
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

fn bearer(req: &Request) -> Option<String> {
    let value = req.header("authorization")?.as_str()?;
    let (scheme, token) = value.trim().split_once(' ')?;
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
    let secret = crate::secrets::token_secret()?;
    let verified =
        verify(&secret, &token(req, scope)?, scope, now_unix()).map_err(|e| token_error(&e))?;
    let Some(id) = verified.tenant else {
        return Err(token_error(&TokenError::InvalidClaims("sub")));
    };
    let tenant = load_tenant(&id)?
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
    Ok(TenantContext { tenant })
}

/// Verifies the request's `admin` token.
pub fn authenticate_admin(req: &Request) -> Result<AdminContext, ApiError> {
    let secret = crate::secrets::token_secret()?;
    verify(
        &secret,
        &token(req, Scope::Admin)?,
        Scope::Admin,
        now_unix(),
    )
    .map_err(|e| token_error(&e))?;
    Ok(AdminContext { _private: () })
}

/// A signup webhook whose Standard Webhooks signature verified. Only [`verify_signup`] builds
/// one; it is what the tenant directory needs to create a tenant.
#[derive(Debug)]
pub struct VerifiedSignup {
    pub webhook_id: String,
    pub signup: Signup,
}

/// Bodies larger than this are refused with 413 before any work.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

/// Verifies a signup webhook (signature before parsing) and validates its body.
pub fn verify_signup(req: &Request) -> Result<VerifiedSignup, ApiError> {
    crate::request::check_body_size(req)?;
    let body = req.body();
    let secret = crate::secrets::signup_secret()?;
    let header = |name: &str| req.header(name).and_then(|v| v.as_str());
    let id = header("webhook-id");
    verify_standard(
        &secret,
        id,
        header("webhook-timestamp"),
        header("webhook-signature"),
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

impl TenantContext {
    /// Runs one `UPDATE tenants … WHERE id = ?` (the tenant id is bound last), then reads the
    /// row back and rewrites the gate's cache, so the next request sees the change.
    fn update_own_row(&mut self, sql: &str, mut params: Vec<Value>) -> Result<(), ApiError> {
        let db = crate::sql::Db::open()?;
        params.push(Value::Text(self.tenant.id.to_string()));
        db.execute(sql, &params)?;
        self.tenant =
            crate::tenant::refresh_tenant(&db, &crate::kv::open_store()?, &self.tenant.id)?
                .ok_or_else(|| {
                    anyhow::anyhow!("updating tenant {}: row vanished", self.tenant.id)
                })?;
        Ok(())
    }

    /// Rotates the capture key: the generation goes up by one, so every older capture token
    /// stops working on the next request. Returns the new capture token.
    pub fn rotate_capture_key(&mut self) -> Result<String, ApiError> {
        self.update_own_row(
            "UPDATE tenants SET capture_gen = capture_gen + 1, updated_at = ? WHERE id = ?",
            vec![Value::Text(crate::clock::now_rfc3339()?)],
        )?;
        self.tenant.capture_token()
    }

    /// Replaces the tenant's settings; the next request sees them.
    pub fn update_settings(
        &mut self,
        settings: &domain::settings::Settings,
    ) -> Result<(), ApiError> {
        let origins = serde_json::to_string(&settings.allowed_origins)
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        let rules = serde_json::to_string(&settings.tag_rules)
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        self.update_own_row(
            "UPDATE tenants SET allowed_origins = ?, thank_you_url = ?, tag_rules = ?, updated_at = ? WHERE id = ?",
            vec![
                Value::Text(origins),
                settings
                    .thank_you_url
                    .as_ref()
                    .map_or(Value::Null, |u| Value::Text(u.as_ref().to_string())),
                Value::Text(rules),
                Value::Text(crate::clock::now_rfc3339()?),
            ],
        )
    }
}
