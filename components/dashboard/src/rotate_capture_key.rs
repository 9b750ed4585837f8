//! `POST /v1/dashboard/capture-key`: rotates the tenant's capture token; the old generation
//! stops working at once.

use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use serde::Serialize;
use spin_sdk::http::{Request, Response};

use crate::settings_store;

#[derive(Serialize)]
struct Rotated {
    capture_token: String,
}

pub fn rotate_capture_key(req: &Request) -> Result<Response, ApiError> {
    let mut ctx = authenticate(req, Scope::Dashboard)?;
    let capture_token = settings_store::rotate_capture_key(&mut ctx)?;
    platform::response::json(200, &Rotated { capture_token })
}
