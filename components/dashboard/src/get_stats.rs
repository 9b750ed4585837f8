//! `GET /v1/dashboard/stats?days=30`: the tenant's funnel, counters and daily series, served from
//! rollups and facet counts (cost independent of the number of leads).

use domain::dashboard::Days;
use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use platform::clock::now_unix;
use spin_sdk::http::{Request, Response};

use crate::query::{invalid, pairs};

pub fn get_stats(req: &Request) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let pairs = pairs(req);
    let days = pairs
        .iter()
        .find(|(k, _)| k == "days")
        .map(|(_, v)| v.as_str());
    let days = Days::parse(days).map_err(|e| invalid(&e))?;
    let stats = ctx.dashboard()?.stats(days, now_unix())?;
    platform::response::json(200, &stats)
}
