//! ClientFlow Edge Spin adapters: the only crate that talks to spin-sdk on behalf of handlers.
//!
//! It owns the mapping of errors to problem+json, the migration runner, the tenant gate and the
//! storage types handlers are given: [`tenant::TenantDb`] and [`tenant::TenantKv`] from a
//! verified tenant, [`directory`] from a verified signup or admin token, [`kv::GlobalKv`] for
//! global entries. Handlers never get a raw connection.

#![forbid(unsafe_code)]

pub mod auth;
pub mod clock;
pub mod dashboard;
pub mod directory;
pub mod error;
pub mod events;
pub mod health;
pub mod kv;
pub mod leads;
pub mod migrate;
pub mod outbound;
pub mod request;
pub mod response;
pub mod secrets;
pub(crate) mod sql;
pub mod sync;
pub mod systeme;
pub mod tenant;

pub use error::ApiError;
