//! Key-value access with explicit namespaces.
//!
//! Redis and other shared backends put every store label in one key space (docs/spin-behaviour.md), so
//! namespacing lives in the keys: global entries start with `g:`, a tenant's with `t:<id>:`.
//! Handlers never build raw keys: they get [`GlobalKv`] with typed [`GlobalKey`]s, or a
//! [`crate::scope::TenantKv`] from a verified tenant.

use anyhow::{Context, Result};
use domain::tags::Tag;
use domain::tenant::TenantId;
use spin_sdk::key_value::Store;

use crate::storage_error::kv_error;

/// Opens the default store.
pub(crate) fn open_store() -> Result<Store> {
    Store::open_default()
        .map_err(|e| kv_error(&e))
        .context("opening the key-value store")
}

/// The key of a tenant-owned entry. The only place a `t:` key is built.
pub(crate) fn tenant_key(tenant: &TenantId, key: &str) -> String {
    format!("t:{tenant}:{key}")
}

/// Global, non-tenant entries.
pub struct GlobalKv {
    store: Store,
}

/// Kinds of global entries; each is its own key prefix.
#[derive(Debug, Clone)]
pub enum GlobalKey<'a> {
    /// Read by the health check to prove the store answers; never written.
    HealthProbe,
    /// Systeme.io tag name → its id in the shared account.
    SystemeTag(&'a Tag),
}

impl GlobalKey<'_> {
    fn key(&self) -> String {
        match self {
            Self::HealthProbe => "g:health".to_string(),
            Self::SystemeTag(tag) => format!("g:systeme-tag:{tag}"),
        }
    }
}

impl GlobalKv {
    /// Opens the default store. Global entries hold no tenant's data: Systeme.io tag ids of the
    /// shared account.
    pub fn open() -> Result<Self> {
        Ok(Self {
            store: open_store()?,
        })
    }

    pub fn get(&self, key: &GlobalKey<'_>) -> Result<Option<Vec<u8>>> {
        self.store
            .get(&key.key())
            .map_err(|e| kv_error(&e))
            .with_context(|| format!("reading global key-value entry {key:?}"))
    }

    pub fn set(&self, key: &GlobalKey<'_>, value: &[u8]) -> Result<()> {
        self.store
            .set(&key.key(), value)
            .map_err(|e| kv_error(&e))
            .with_context(|| format!("writing global key-value entry {key:?}"))
    }
}
