//! `DELETE /v1/dashboard/leads/:id`: erases the lead and its timeline (GDPR) and answers `204`.
//! Another tenant's id is a `404`, exactly like a missing one.

use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use spin_sdk::http::{Request, Response};

use crate::query::lead_not_found;

pub fn erase_lead(req: &Request, id: &str) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    if !ctx.dashboard()?.erase(id)? {
        return Err(lead_not_found());
    }
    Ok(Response::builder().status(204).body(Vec::new()).build())
}
