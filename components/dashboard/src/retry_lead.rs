//! `POST /v1/dashboard/leads/:id/retry`: queues a failed lead for sync again (attempts reset,
//! due at once; the next sync batch pushes it) and answers `200` with the lead. A lead that has
//! not failed is `409 lead_not_failed`; another tenant's id is a `404`, exactly like a missing
//! one.

use domain::id::LeadId;
use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use platform::clock::now_unix;
use spin_sdk::http::{Request, Response};

use crate::store::{Dashboard, Retried, lead_not_found};

pub fn retry_lead(req: &Request, id: &str) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let id = LeadId::parse(id).map_err(|_| lead_not_found())?;
    let dashboard = Dashboard::new(&ctx)?;
    match dashboard.retry(&id, now_unix())? {
        Retried::Queued => {}
        Retried::NotFailed => {
            return Err(ApiError::Conflict {
                code: "lead_not_failed",
                detail: "only a lead whose sync failed can be retried".into(),
            });
        }
        Retried::NotFound => return Err(lead_not_found()),
    }
    let lead = dashboard.lead(&id)?.ok_or_else(lead_not_found)?;
    platform::response::json(200, &lead.lead)
}
