//! `POST /v1/admin/sync?limit=50&retry_failed=true&ignore_backoff=true` (admin token): runs a
//! bounded batch of due Systeme.io syncs and reports what happened, with the admin token's
//! remaining lifetime (`admin_token_expires_in`, seconds) so the scheduled caller sees its token
//! near expiry before it stops working. Call it on a schedule (docs/guide.md: cron or a Kubernetes
//! CronJob).

use platform::ApiError;
use platform::auth::authenticate_admin;
use platform::request::{Flag, Limit};
use serde::{Deserialize, Serialize};
use spin_sdk::http::{Request, Response};

use crate::sync::{BatchOptions, BatchReport, run_due};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

/// The query string; unknown parameters are ignored.
#[derive(Deserialize)]
struct SyncQuery {
    limit: Option<Limit<MAX_LIMIT>>,
    retry_failed: Option<Flag>,
    ignore_backoff: Option<Flag>,
}

/// The answer: the batch's report and the admin token's remaining lifetime.
#[derive(Serialize)]
struct SyncAnswer {
    #[serde(flatten)]
    report: BatchReport,
    /// Seconds until the admin token that asked for this batch expires.
    admin_token_expires_in: i64,
}

pub fn run_sync(req: &Request) -> Result<Response, ApiError> {
    let admin = authenticate_admin(req)?;
    let query: SyncQuery = platform::request::query(req)?;
    let options = BatchOptions {
        limit: query.limit.map_or(DEFAULT_LIMIT, Limit::get),
        retry_failed: query.retry_failed.is_some_and(|f| f.0),
        ignore_backoff: query.ignore_backoff.is_some_and(|f| f.0),
    };
    let report = run_due(&admin, options)?;
    platform::response::json(
        200,
        &SyncAnswer {
            report,
            admin_token_expires_in: admin.expires_in(),
        },
    )
}
