//! `lead-capture` component: `POST /v1/leads` and its CORS preflight (capture token), and the
//! operator's `POST /v1/admin/sync` (admin token). This file holds the entry point and the
//! route table only.

// `#[http_component]` expands to the component's exported ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

mod capture_lead;
mod preflight_leads;
mod run_sync;

use platform::ApiError;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

#[http_component]
#[allow(clippy::needless_pass_by_value)] // the macro hands the request over by value
fn handle_lead_capture(req: Request) -> Response {
    match (req.method(), req.path()) {
        (Method::Post, "/v1/leads") => capture_lead::capture_lead(&req),
        (Method::Options, "/v1/leads") => {
            platform::response::respond(preflight_leads::preflight_leads(&req))
        }
        (_, "/v1/leads") => ApiError::MethodNotAllowed {
            allowed: &["POST", "OPTIONS"],
        }
        .into_response(),
        (Method::Post, "/v1/admin/sync") => platform::response::respond(run_sync::run_sync(&req)),
        (_, "/v1/admin/sync") => ApiError::MethodNotAllowed { allowed: &["POST"] }.into_response(),
        (_, path) => ApiError::route_not_found(path).into_response(),
    }
}
