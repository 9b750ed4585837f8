//! `systeme-events` component: `POST /v1/systeme/events`, Systeme.io's signed webhook. This file
//! holds the entry point and the route table only.

// `#[http_component]` expands to the component's exported ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

mod receive_event;

use platform::ApiError;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

#[http_component]
#[allow(clippy::needless_pass_by_value)] // the macro hands the request over by value
fn handle_systeme_events(req: Request) -> Response {
    platform::response::respond(route(&req))
}

fn route(req: &Request) -> Result<Response, ApiError> {
    match (req.method(), req.path()) {
        (Method::Post, "/v1/systeme/events") => receive_event::receive_event(req),
        (_, "/v1/systeme/events") => Err(ApiError::MethodNotAllowed { allowed: &["POST"] }),
        (_, path) => Err(ApiError::route_not_found(path)),
    }
}
