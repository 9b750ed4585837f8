//! `GET /v1/dashboard/leads/:id`: one lead with its event timeline. Another tenant's id is a
//! `404`, exactly like a missing one.

use domain::id::LeadId;
use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use spin_sdk::http::{Request, Response};

use crate::store::{Dashboard, lead_not_found};

pub fn get_lead(req: &Request, id: &str) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let id = LeadId::parse(id).map_err(|_| lead_not_found())?;
    let lead = Dashboard::new(&ctx)?
        .lead(&id)?
        .ok_or_else(lead_not_found)?;
    platform::response::json(200, &lead)
}
