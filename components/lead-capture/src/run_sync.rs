//! `POST /v1/admin/sync?limit=50&retry_failed=true&ignore_backoff=true` (admin token): runs a
//! bounded batch of due Systeme.io syncs and reports what happened. Call it on a schedule (README: cron or a
//! Kubernetes CronJob).

use platform::ApiError;
use platform::auth::authenticate_admin;
use platform::sync::BatchOptions;
use spin_sdk::http::{Request, Response};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

fn bad_query(detail: &str) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_query",
        detail: detail.into(),
    }
}

pub fn run_sync(req: &Request) -> Result<Response, ApiError> {
    let admin = authenticate_admin(req)?;
    let mut options = BatchOptions {
        limit: DEFAULT_LIMIT,
        retry_failed: false,
        ignore_backoff: false,
    };
    let flag = |value: &str, name: &str| match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad_query(&format!("{name} must be true or false"))),
    };
    for (key, value) in url::form_urlencoded::parse(req.query().as_bytes()) {
        match key.as_ref() {
            "limit" => {
                options.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| bad_query("limit must be a whole number from 1 to 500"))?;
            }
            "retry_failed" => options.retry_failed = flag(&value, "retry_failed")?,
            "ignore_backoff" => options.ignore_backoff = flag(&value, "ignore_backoff")?,
            _ => {}
        }
    }
    let report = platform::sync::run_due(&admin, options)?;
    platform::response::json(200, &report)
}
