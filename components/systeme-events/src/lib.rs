//! `systeme-events` component: `POST /v1/systeme/events`, Systeme.io's signed webhook. The route
//! table is below; the handler is [`receive_event`], and applying an event to each tenant's
//! lead, counters and timeline is [`store`].

// `#[http_component]` expands to the component's exported ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

mod receive_event;
mod store;

use platform::ApiError;
use platform::response::handle;
use spin_sdk::http::{Params, Request, Response, Router};
use spin_sdk::http_component;

#[http_component]
fn handle_systeme_events(req: Request) -> Response {
    let mut router = Router::new();
    router.post("/v1/systeme/events", |req: Request, _: Params| {
        handle(|| receive_event::receive_event(&req))
    });
    router.any("/v1/systeme/events", |_: Request, _: Params| {
        ApiError::MethodNotAllowed { allowed: &["POST"] }
    });
    router.any("/*", |req: Request, _: Params| {
        ApiError::route_not_found(req.path())
    });
    router.handle(req)
}
