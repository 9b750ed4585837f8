//! `GET /v1/dashboard/capture-key`: the tenant's current capture token, so the dashboard page
//! can fill in the form snippet without rotating. The token is publishable (every landing page
//! carries it) and minted deterministically from the current generation, so this is the same
//! token the signup returned or the last rotation handed out.

use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use serde::Serialize;
use spin_sdk::http::{Request, Response};

#[derive(Serialize)]
struct Current {
    capture_token: String,
}

pub fn get_capture_key(req: &Request) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let capture_token = ctx.tenant().capture_token()?;
    platform::response::json(200, &Current { capture_token })
}
