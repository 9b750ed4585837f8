//! `GET /v1/health`: proves SQLite (migrated to the current schema) and key-value both answer.

use anyhow::Context;
use platform::ApiError;
use platform::kv::{GlobalKey, GlobalKv};
use platform::sql::Db;
use serde::Serialize;
use spin_sdk::http::Response;

#[derive(Serialize)]
struct Health {
    status: &'static str,
    schema_version: u32,
}

pub fn get_health() -> Result<Response, ApiError> {
    let db = Db::open().context("health: database")?;
    GlobalKv::open()
        .and_then(|kv| kv.get(GlobalKey::HealthProbe))
        .context("health: key-value store")?;
    platform::response::json(
        200,
        &Health {
            status: "ok",
            schema_version: db.schema_version(),
        },
    )
}
