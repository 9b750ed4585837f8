//! ClientFlow Edge's thin Spin adapters, shared by every component: the database,
//! configuration, the tenant gate, HTTP helpers, outbound HTTP and the clock.
//!
//! Features live in their components; this crate owns only what every component needs and
//! the one place isolation is enforced: [`auth`] verifies callers, and the proofs it returns
//! hand out storage scoped to what the caller may touch ([`scope::TenantDb`] from a
//! [`tenant::TenantContext`]; the whole [`db::Db`] only to the operator and to verified
//! webhooks). Errors become problem+json in one place ([`error`]).

#![forbid(unsafe_code)]

pub mod alerts;
pub mod auth;
pub mod clock;
pub mod config;
mod connection;
pub mod db;
pub mod error;
pub mod health;
pub mod migrate;
pub mod outbound;
pub mod request;
pub mod response;
pub mod retry;
pub mod scope;
pub mod spam_rules;
pub mod storage_error;
pub mod tenant;

pub use error::ApiError;
