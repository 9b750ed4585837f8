//! `dashboard` component: `GET /v1/health` and the tenant dashboard under `/v1/dashboard/...`
//! (`dashboard` token). The route table is below; each handler has a file, and the
//! dashboard's storage reads are [`store`].
//!
//! The entry point takes the streaming form (`IncomingRequest` + `ResponseOutparam`) so the CSV
//! export can stream; every other route goes through spin-sdk's `Router` as an ordinary
//! request → response handler.

// `#[http_component]` expands to the component's exported ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

mod erase_lead;
mod export_leads;
mod get_capture_key;
mod get_health;
mod get_lead;
mod get_me;
mod get_stats;
mod list_leads;
mod retry_lead;
mod rotate_capture_key;
mod settings;
mod settings_store;
mod store;

use platform::ApiError;
use platform::response::{handle, not_allowed, send};
use spin_sdk::http::{IncomingRequest, Method, Params, Request, ResponseOutparam, Router};
use spin_sdk::http_component;

/// The largest body a dashboard request may carry: settings with every origin, rule and funnel
/// allowed fit well within it.
const MAX_BODY_BYTES: usize = 64 * 1024;

#[http_component]
async fn handle_dashboard(incoming: IncomingRequest, out: ResponseOutparam) {
    let req = match platform::request::read_limited(incoming, MAX_BODY_BYTES).await {
        Ok(req) => req,
        Err(e) => return send(out, e.into_response()).await,
    };
    if (req.method(), req.path()) == (&Method::Get, "/v1/dashboard/leads.csv") {
        export_leads::export_leads(&req, out).await;
        return;
    }
    send(out, router().handle_async(req).await).await;
}

/// Every buffered route. A path that matches with another method is `405`, anything else
/// under `/v1/dashboard/...` is a problem+json `404`.
fn router() -> Router {
    let mut router = Router::new();
    router.get("/v1/health", |_: Request, _: Params| {
        handle(get_health::get_health)
    });
    router.any("/v1/health", not_allowed(&["GET"]));
    router.get("/v1/dashboard/stats", |req: Request, _: Params| {
        handle(|| get_stats::get_stats(&req))
    });
    router.any("/v1/dashboard/stats", not_allowed(&["GET"]));
    router.get("/v1/dashboard/me", |req: Request, _: Params| {
        handle(|| get_me::get_me(&req))
    });
    router.any("/v1/dashboard/me", not_allowed(&["GET"]));
    router.get("/v1/dashboard/leads", |req: Request, _: Params| {
        handle(|| list_leads::list_leads(&req))
    });
    router.any("/v1/dashboard/leads", not_allowed(&["GET"]));
    // GET is streamed by the entry point above.
    router.any("/v1/dashboard/leads.csv", not_allowed(&["GET"]));
    router.get("/v1/dashboard/leads/:id", |req: Request, params: Params| {
        handle(|| get_lead::get_lead(&req, params.get("id").unwrap_or_default()))
    });
    router.delete("/v1/dashboard/leads/:id", |req: Request, params: Params| {
        handle(|| erase_lead::erase_lead(&req, params.get("id").unwrap_or_default()))
    });
    router.any("/v1/dashboard/leads/:id", not_allowed(&["GET", "DELETE"]));
    router.post(
        "/v1/dashboard/leads/:id/retry",
        |req: Request, params: Params| {
            handle(|| retry_lead::retry_lead(&req, params.get("id").unwrap_or_default()))
        },
    );
    router.any("/v1/dashboard/leads/:id/retry", not_allowed(&["POST"]));
    router.post("/v1/dashboard/capture-key", |req: Request, _: Params| {
        handle(|| rotate_capture_key::rotate_capture_key(&req))
    });
    router.get("/v1/dashboard/capture-key", |req: Request, _: Params| {
        handle(|| get_capture_key::get_capture_key(&req))
    });
    router.any("/v1/dashboard/capture-key", not_allowed(&["GET", "POST"]));
    router.get("/v1/dashboard/settings", |req: Request, _: Params| {
        handle(|| settings::get_settings(&req))
    });
    router.put("/v1/dashboard/settings", |req: Request, _: Params| {
        handle(|| settings::put_settings(&req))
    });
    router.any("/v1/dashboard/settings", not_allowed(&["GET", "PUT"]));
    router.any("/*", |req: Request, _: Params| {
        ApiError::route_not_found(req.path())
    });
    router
}
