//! `dashboard` component: `GET /v1/health` and the tenant dashboard (`/v1/dashboard/...`,
//! `dashboard` token); so far `POST /v1/dashboard/capture-key`. This file holds the entry point and the route table only.

// `#[http_component]` expands to the component's exported ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

mod get_health;
mod rotate_capture_key;
mod settings;

use platform::ApiError;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

#[http_component]
#[allow(clippy::needless_pass_by_value)] // the macro hands the request over by value
fn handle_dashboard(req: Request) -> Response {
    platform::response::respond(route(&req))
}

fn route(req: &Request) -> Result<Response, ApiError> {
    match (req.method(), req.path()) {
        (Method::Get, "/v1/health") => get_health::get_health(),
        (_, "/v1/health") => Err(ApiError::MethodNotAllowed { allowed: &["GET"] }),
        (Method::Post, "/v1/dashboard/capture-key") => rotate_capture_key::rotate_capture_key(req),
        (_, "/v1/dashboard/capture-key") => Err(ApiError::MethodNotAllowed { allowed: &["POST"] }),
        (Method::Get, "/v1/dashboard/settings") => settings::get_settings(req),
        (Method::Put, "/v1/dashboard/settings") => settings::put_settings(req),
        (_, "/v1/dashboard/settings") => Err(ApiError::MethodNotAllowed {
            allowed: &["GET", "PUT"],
        }),
        (_, path) => Err(ApiError::route_not_found(path)),
    }
}
