//! `GET /v1/dashboard/stats?days=30`: the tenant's funnel, counters and daily series, served from
//! rollups and facet counts (cost independent of the number of leads).

use domain::dashboard::StatsQuery;
use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use platform::clock::now_unix;
use spin_sdk::http::{Request, Response};

use crate::store::Dashboard;

pub fn get_stats(req: &Request) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let query: StatsQuery = platform::request::query(req)?;
    let stats = Dashboard::new(&ctx)?.stats(query.days, now_unix())?;
    platform::response::json(200, &stats)
}
