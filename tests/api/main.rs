//! Black-box tests over real HTTP against the built `.wasm` components.
//!
//! They run on the local host by default, or on real Spin with `SPIN_BIN=/path/to/spin`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod alerts;
mod dashboard;
mod deploy;
mod events;
mod faults;
mod health;
mod isolation;
mod leads;
mod openapi;
mod origins;
mod replicas;
mod shared_account;
mod spam;
mod statements;
mod stopping;
mod sync;
mod tenants;
mod tokens;
mod trust;
mod trust_sessions;
mod upgrade;
mod web;
