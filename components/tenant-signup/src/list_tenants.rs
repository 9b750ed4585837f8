//! `GET /v1/admin/tenants?limit=&cursor=`: every tenant with its usage (admin token).

use domain::tenant::TenantId;
use platform::ApiError;
use platform::auth::authenticate_admin;
use platform::directory::{AdminDirectory, TenantView};
use serde::Serialize;
use spin_sdk::http::{Request, Response};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 500;

#[derive(Serialize)]
struct Page {
    tenants: Vec<TenantView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

fn invalid(detail: &str) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_query",
        detail: detail.to_string(),
    }
}

pub fn list_tenants(req: &Request) -> Result<Response, ApiError> {
    let admin = authenticate_admin(req)?;
    let mut limit = DEFAULT_LIMIT;
    let mut cursor = None;
    for (key, value) in url_pairs(req.query()) {
        match key.as_str() {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| invalid("limit must be an integer from 1 to 500"))?;
            }
            "cursor" => {
                cursor = Some(
                    TenantId::parse(&value)
                        .map_err(|_| invalid("cursor is not one this API returned"))?,
                );
            }
            _ => {}
        }
    }
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

fn url_pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(query).unwrap_or_default()
}
