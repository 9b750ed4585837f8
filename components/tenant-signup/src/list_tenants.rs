//! `GET /v1/admin/tenants?limit=&cursor=`: every tenant with its usage (admin token).

use domain::tenant::TenantId;
use platform::ApiError;
use platform::auth::authenticate_admin;
use platform::request::Limit;
use serde::{Deserialize, Serialize};
use spin_sdk::http::{Request, Response};

use crate::directory::{AdminDirectory, TenantView};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 500;

#[derive(Serialize)]
struct Page {
    tenants: Vec<TenantView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// The query string; unknown parameters are ignored, a malformed value is `400`.
#[derive(Deserialize)]
struct ListQuery {
    limit: Option<Limit<MAX_LIMIT>>,
    cursor: Option<TenantCursor>,
}

/// The id of the last tenant of the previous page.
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct TenantCursor(TenantId);

impl TryFrom<String> for TenantCursor {
    type Error = &'static str;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        TenantId::parse(&value)
            .map(Self)
            .map_err(|_| "cursor is not one this API returned")
    }
}

pub fn list_tenants(req: &Request) -> Result<Response, ApiError> {
    let admin = authenticate_admin(req)?;
    let query: ListQuery = platform::request::query(req)?;
    let limit = query.limit.map_or(DEFAULT_LIMIT, Limit::get);
    let cursor = query.cursor.map(|c| c.0);
    let directory = AdminDirectory::open(&admin)?;
    let tenants = directory.list(cursor.as_ref(), limit)?;
    let next_cursor = (tenants.len() == limit as usize)
        .then(|| tenants.last().map(|t| t.id.clone()))
        .flatten();
    platform::response::json(
        200,
        &Page {
            tenants,
            next_cursor,
        },
    )
}
