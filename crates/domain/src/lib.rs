//! ClientFlow Edge domain: pure Rust types and rules, with no spin-sdk dependency, so every rule
//! is unit-tested on the host.

#![forbid(unsafe_code)]

pub mod alerts;
pub mod client;
pub mod dashboard;
pub mod events;
pub mod funnel;
pub mod id;
pub mod lead;
pub mod named_sql;
pub mod schema;
pub mod secret;
pub mod settings;
pub mod signature;
pub mod spam;
pub mod tags;
pub mod tenant;
pub mod token;
