//! `GET /v1/dashboard/leads?stage=&q=&from=&to=&source=&sync=&tag=&ib_type=&volume=&utm_source=&sort=&limit=&cursor=`:
//! the tenant's leads the filters select, by capture newest first (or `sort=oldest`), by keyset
//! pages.

use domain::dashboard::LeadQuery;
use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use spin_sdk::http::{Request, Response};

use crate::store::Dashboard;

pub fn list_leads(req: &Request) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let query: LeadQuery = platform::request::query(req)?;
    let page = Dashboard::new(&ctx)?.leads(&query)?;
    platform::response::json(200, &page)
}
