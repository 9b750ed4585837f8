//! `lead-capture` component: `POST /v1/leads` and its CORS preflight (capture token), and the
//! operator's `POST /v1/admin/sync` (admin token).
//!
//! A capture reads top to bottom here: the route table below, the handler
//! ([`capture_lead`]), the tenant's lead storage ([`store`]), and the durable Systeme.io sync
//! ([`sync`]) with its batch ([`run_sync`]).

// `#[http_component]` expands to the component's exported ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

mod captcha;
mod capture_lead;
mod preflight_leads;
mod run_sync;
mod store;
mod sync;

use platform::ApiError;
use platform::request::MAX_BODY_BYTES;
use platform::response::handle;
use spin_sdk::http::{IncomingRequest, Params, Request, Response, Router};
use spin_sdk::http_component;

#[http_component]
async fn handle_lead_capture(incoming: IncomingRequest) -> Response {
    let req = match platform::request::read_limited(incoming, MAX_BODY_BYTES).await {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
    let mut router = Router::new();
    router.post("/v1/leads", |req: Request, _: Params| {
        capture_lead::capture_lead(&req)
    });
    router.options("/v1/leads", |req: Request, _: Params| {
        handle(|| preflight_leads::preflight_leads(&req))
    });
    router.any("/v1/leads", |_: Request, _: Params| {
        ApiError::MethodNotAllowed {
            allowed: &["POST", "OPTIONS"],
        }
    });
    router.post("/v1/admin/sync", |req: Request, _: Params| {
        handle(|| run_sync::run_sync(&req))
    });
    router.any("/v1/admin/sync", |_: Request, _: Params| {
        ApiError::MethodNotAllowed { allowed: &["POST"] }
    });
    router.any("/*", |req: Request, _: Params| {
        ApiError::route_not_found(req.path())
    });
    router.handle_async(req).await
}
