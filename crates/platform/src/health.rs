//! The health check (and readiness probe): SQLite migrated and answering, key-value answering.

use anyhow::{Context, Result};

use crate::db::Db;
use crate::kv::{GlobalKey, GlobalKv};

/// Checks both stores and returns the schema version.
pub fn check() -> Result<u32> {
    let db = Db::open_migrated().context("health: database")?;
    GlobalKv::open()
        .and_then(|kv| kv.get(&GlobalKey::HealthProbe))
        .context("health: key-value store")?;
    db.schema_version()
}
