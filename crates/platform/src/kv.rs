//! Key-value access with explicit namespaces.
//!
//! Redis and other shared backends put every store label in one key space (SPIN-NOTES), so
//! namespacing lives in the keys: global entries start with `g:`, a tenant's with `t:<id>:`.
//! Handlers never build raw keys.

use anyhow::{Result, anyhow};
use spin_sdk::key_value::Store;

/// Global, non-tenant entries: prefix → tenant, Systeme.io tag ids, seen message ids, health.
pub struct GlobalKv {
    store: Store,
}

/// Kinds of global entries; each becomes its own key prefix.
#[derive(Debug, Clone, Copy)]
pub enum GlobalKey {
    /// Written by nothing; read by the health check to prove the store answers.
    HealthProbe,
}

impl GlobalKey {
    fn key(self) -> String {
        match self {
            Self::HealthProbe => "g:health".to_string(),
        }
    }
}

impl GlobalKv {
    pub fn open() -> Result<Self> {
        let store = Store::open_default().map_err(|e| anyhow!("opening key-value store: {e:?}"))?;
        Ok(Self { store })
    }

    pub fn get(&self, key: GlobalKey) -> Result<Option<Vec<u8>>> {
        self.store
            .get(&key.key())
            .map_err(|e| anyhow!("reading global key-value entry {key:?}: {e:?}"))
    }
}
