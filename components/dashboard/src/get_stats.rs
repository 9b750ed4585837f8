//! `GET /v1/dashboard/stats?days=30` or `?from=2026-11-01&to=2026-11-30`: the tenant's funnel,
//! counters and daily series over the window, and the window of as many days before it, served
//! from rollups and facet counts (cost independent of the number of leads).

use domain::dashboard::{RawStatsQuery, StatsQuery, StatsQueryError};
use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use platform::clock::now_unix;
use spin_sdk::http::{Request, Response};

use crate::store::Dashboard;

pub fn get_stats(req: &Request) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let raw: RawStatsQuery = platform::request::query(req)?;
    let query = StatsQuery::parse(&raw).map_err(|e| match e {
        StatsQueryError::Query(e) => ApiError::BadRequest {
            code: "invalid_query",
            detail: e.to_string(),
        },
        StatsQueryError::Range(reason) => ApiError::Unprocessable {
            code: "invalid_range",
            detail: reason.to_string(),
        },
    })?;
    let stats = Dashboard::new(&ctx)?.stats(query, now_unix())?;
    platform::response::json(200, &stats)
}
