//! `GET /v1/health`: proves every required secret is acceptable (`503 insecure_secret`
//! otherwise), then that SQLite answers, migrated to the current schema. The app keeps no state
//! in key-value, so readiness depends on no key-value backend.

use platform::ApiError;
use serde::Serialize;
use spin_sdk::http::Response;

#[derive(Serialize)]
struct Health {
    status: &'static str,
    schema_version: u32,
}

pub fn get_health() -> Result<Response, ApiError> {
    platform::config::check_secrets()?;
    let schema_version = platform::health::check()?;
    platform::response::json(
        200,
        &Health {
            status: "ok",
            schema_version,
        },
    )
}
