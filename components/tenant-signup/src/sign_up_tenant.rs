//! `POST /v1/tenants`: creates a tenant from a Standard Webhooks-signed body
//! (docs/contract.md, "Signup").

use crate::directory::{SignupOutcome, TenantView, sign_up};
use platform::ApiError;
use platform::auth::verify_signup;
use serde::Serialize;
use spin_sdk::http::{Request, Response};

#[derive(Serialize)]
struct Created<'a> {
    #[serde(flatten)]
    tenant: &'a TenantView,
    capture_token: String,
}

pub fn sign_up_tenant(req: &Request) -> Result<Response, ApiError> {
    let signup = verify_signup(req)?;
    // A replay answers exactly like the first delivery, so a retrying sender sees one result.
    let tenant = match sign_up(&signup)? {
        SignupOutcome::Created(tenant) | SignupOutcome::Replayed(tenant) => tenant,
    };
    let capture_token = tenant.capture_token()?;
    platform::response::json(
        201,
        &Created {
            tenant: &tenant,
            capture_token,
        },
    )
}
