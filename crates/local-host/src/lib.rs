//! A Spin-compatible local host for ClientFlow Edge, on wasmtime (dev and test only).
//!
//! It runs a `spin.toml` the way `spin up` does for everything a component can observe:
//! routing and `spin-*` headers, a fresh instance per request, `fermyon:spin` key-value (local
//! or Redis), SQLite and variables, `allowed_outbound_hosts`, service chaining to
//! `<component-id>.spin.internal` and private routes, and the runtime config's blocked networks.
//! Production runs on real Spin or SpinKube.

pub mod faults;
pub mod http_client;
pub mod kv_redis;
pub mod manifest;
pub mod outbound;
pub mod resources;
pub mod routes;
pub mod server;
pub mod state;
pub mod storage;
pub mod variables;

/// Host bindings for the `fermyon:spin@2.0.0` interfaces in `wit/spin.wit`.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "fermyon:spin/host",
        // As in Spin, SQLite calls are async: the guest waits on the host's future while the
        // statement runs on tokio's blocking pool, and the worker thread serves other requests.
        imports: {
            "fermyon:spin/sqlite": async,
        },
        with: {
            "fermyon:spin/key-value.store": crate::resources::KvStore,
            "fermyon:spin/sqlite.connection": crate::resources::SqliteConnection,
        },
    });
}
