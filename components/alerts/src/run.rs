//! Delivery runs. `POST /v1/admin/alerts/run?limit=&ignore_backoff=` (admin token), every minute from a CronJob
//! or cron: queues the digests that are due, forgets old attempt counts, sends what is due,
//! and reports. The chained
//! `POST /v1/internal/alerts/run`: lead-capture and systeme-events call it after a write that
//! queued an alert; it answers `202` at once and then sends (lib.rs).

use platform::ApiError;
use platform::auth::{ChainedCall, authenticate_admin};
use platform::request::{Flag, Limit};
use serde::{Deserialize, Serialize};
use spin_sdk::http::{Request, Response};

use crate::deliver::{
    Batch, RunReport, forget_old_attempts, queue_digests, remaining_due, run_while_due, send_due,
};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// Seconds a batch or a chained run may spend sending.
const BUDGET_SECS: i64 = 25;

#[derive(Deserialize)]
struct RunQuery {
    limit: Option<Limit<MAX_LIMIT>>,
    ignore_backoff: Option<Flag>,
}

#[derive(Serialize)]
struct RunAnswer {
    #[serde(flatten)]
    report: RunReport,
    admin_token_expires_in: i64,
}

pub fn run_batch(req: &Request) -> Result<Response, ApiError> {
    let admin = authenticate_admin(req)?;
    let query: RunQuery = platform::request::query(req)?;
    let db = admin.db()?;
    let mut report = RunReport::default();
    queue_digests(&db, &mut report)?;
    forget_old_attempts(&db)?;
    let batch = Batch {
        limit: i64::from(query.limit.map_or(DEFAULT_LIMIT, Limit::get)),
        budget_secs: BUDGET_SECS,
        ignore_backoff: query.ignore_backoff.is_some_and(|f| f.0),
    };
    send_due(&db, batch, &mut report)?;
    report.remaining_due = remaining_due(&db)?;
    platform::response::json(
        200,
        &RunAnswer {
            report,
            admin_token_expires_in: admin.expires_in(),
        },
    )
}

/// The chained run, after its `202` is sent.
pub fn run_chained(call: &ChainedCall) -> Result<(), ApiError> {
    let report = run_while_due(&call.db()?, BUDGET_SECS)?;
    if report.failed_attempts > 0 || report.dropped > 0 {
        eprintln!(
            "alerts: {} delivered, {} failed attempts, {} dropped",
            report.delivered, report.failed_attempts, report.dropped
        );
    }
    Ok(())
}
