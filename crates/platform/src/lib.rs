//! ClientFlow Edge Spin adapters: the only crate that talks to spin-sdk on behalf of handlers.
//!
//! It owns the mapping of errors to problem+json, the migration runner, and the storage types
//! handlers are given.

#![forbid(unsafe_code)]

pub mod error;
pub mod kv;
pub mod migrate;
pub mod response;
pub mod sql;

pub use error::ApiError;
