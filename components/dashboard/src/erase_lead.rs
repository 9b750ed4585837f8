//! `DELETE /v1/dashboard/leads/:id`: erases the lead and its timeline (GDPR) and answers `204`.
//! Another tenant's id is a `404`, exactly like a missing one.

use domain::id::LeadId;
use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use spin_sdk::http::{Request, Response};

use crate::store::{Dashboard, lead_not_found};

pub fn erase_lead(req: &Request, id: &str) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let id = LeadId::parse(id).map_err(|_| lead_not_found())?;
    if !Dashboard::new(&ctx)?.erase(&id)? {
        return Err(lead_not_found());
    }
    Ok(Response::builder().status(204).body(Vec::new()).build())
}
