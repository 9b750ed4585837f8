//! `systeme-events` component: `POST /v1/systeme/events`, Systeme.io's signed webhook. The route
//! table is below; the handler is [`receive_event`], and applying an event to each tenant's
//! lead, counters and timeline is [`store`].

// `#[http_component]` expands to the component's exported ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

mod receive_event;
mod store;

use platform::ApiError;
use platform::request::MAX_BODY_BYTES;
use platform::response::handle;
use spin_sdk::http::{IncomingRequest, Params, Request, Response, Router};
use spin_sdk::http_component;

#[http_component]
async fn handle_systeme_events(incoming: IncomingRequest) -> Response {
    let req = match platform::request::read_limited(incoming, MAX_BODY_BYTES).await {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
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
    router.handle_async(req).await
}
