//! `GET /v1/dashboard/leads?stage=&q=&limit=&cursor=`: the tenant's leads, newest first, by
//! keyset pages.

use domain::dashboard::LeadQuery;
use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use spin_sdk::http::{Request, Response};

use crate::query::{invalid, pairs};

pub fn list_leads(req: &Request) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let pairs = pairs(req);
    let query = LeadQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| invalid(&e))?;
    let page = ctx.dashboard()?.leads(&query)?;
    platform::response::json(200, &page)
}
