//! The health check (and readiness probe): SQLite migrated and answering. The app keeps no
//! state in key-value, so no key-value backend is checked (docs/storage.md).

use anyhow::{Context, Result};

use crate::db::Db;

/// Migrates the database if it is behind and returns the schema version.
pub fn check() -> Result<u32> {
    let db = Db::open_migrated().context("health: database")?;
    db.schema_version()
}
