//! `alerts` component: alert rules and their deliveries (docs/alerts.md). The rules API under
//! `/v1/dashboard/alerts` (dashboard token), the operator's batch `POST /v1/admin/alerts/run`
//! (admin token), and the chained `POST /v1/internal/alerts/run` that lead-capture and
//! systeme-events call after a write that queued an alert. The only component allowed to reach
//! arbitrary `https` hosts; the destination guard is [`domain::alerts::check_destination`].
//!
//! Reading order: the route table below, [`rules`] and [`deliveries`] (thin handlers), the
//! tenant's storage ([`store`]), and the sending ([`deliver`]) with its runs ([`run`]).

// `#[http_component]` expands to the component's exported ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

mod deliver;
mod deliveries;
mod rules;
mod run;
mod store;

use platform::ApiError;
use platform::auth::{INTERNAL_PREFIX, chained_call};
use platform::response::{handle, not_allowed, send};
use spin_sdk::http::{IncomingRequest, Params, Request, ResponseOutparam, Router};
use spin_sdk::http_component;

/// Rules are small; a body past this is refused.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The streaming form, so the chained run can answer `202` before it sends.
#[http_component]
async fn handle_alerts(incoming: IncomingRequest, out: ResponseOutparam) {
    let req = match platform::request::read_limited(incoming, MAX_BODY_BYTES).await {
        Ok(req) => req,
        Err(e) => return send(out, e.into_response()).await,
    };
    if req.path().starts_with(INTERNAL_PREFIX) {
        let call = match chained_call(&req) {
            Ok(call) => call,
            Err(e) => return send(out, e.into_response()).await,
        };
        send(out, spin_sdk::http::Response::builder().status(202).build()).await;
        if let Err(e) = run::run_chained(&call) {
            eprintln!("alerts: chained run failed: {e:?}");
        }
        return;
    }
    send(out, router().handle_async(req).await).await;
}

fn router() -> Router {
    let mut r = Router::new();
    r.get("/v1/dashboard/alerts", |req: Request, _: Params| {
        handle(|| rules::list_rules(&req))
    });
    r.post("/v1/dashboard/alerts", |req: Request, _: Params| {
        handle(|| rules::create_rule(&req))
    });
    r.any("/v1/dashboard/alerts", not_allowed(&["GET", "POST"]));
    r.post("/v1/dashboard/alerts/secret", |req: Request, _: Params| {
        handle(|| rules::rotate_secret(&req))
    });
    r.any("/v1/dashboard/alerts/secret", not_allowed(&["POST"]));
    r.get(
        "/v1/dashboard/alerts/deliveries",
        |req: Request, _: Params| handle(|| deliveries::list_deliveries(&req)),
    );
    r.any("/v1/dashboard/alerts/deliveries", not_allowed(&["GET"]));
    r.post(
        "/v1/dashboard/alerts/deliveries/:id/redeliver",
        |req: Request, p: Params| {
            handle(|| deliveries::redeliver(&req, p.get("id").unwrap_or_default()))
        },
    );
    r.any(
        "/v1/dashboard/alerts/deliveries/:id/redeliver",
        not_allowed(&["POST"]),
    );
    r.get("/v1/dashboard/alerts/:id", |req: Request, p: Params| {
        handle(|| rules::get_rule(&req, p.get("id").unwrap_or_default()))
    });
    r.put("/v1/dashboard/alerts/:id", |req: Request, p: Params| {
        handle(|| rules::put_rule(&req, p.get("id").unwrap_or_default()))
    });
    r.delete("/v1/dashboard/alerts/:id", |req: Request, p: Params| {
        handle(|| rules::delete_rule(&req, p.get("id").unwrap_or_default()))
    });
    r.any(
        "/v1/dashboard/alerts/:id",
        not_allowed(&["GET", "PUT", "DELETE"]),
    );
    r.post(
        "/v1/dashboard/alerts/:id/test",
        |req: Request, p: Params| {
            handle(|| deliveries::send_test(&req, p.get("id").unwrap_or_default()))
        },
    );
    r.any("/v1/dashboard/alerts/:id/test", not_allowed(&["POST"]));
    r.post("/v1/admin/alerts/run", |req: Request, _: Params| {
        handle(|| run::run_batch(&req))
    });
    r.any("/v1/admin/alerts/run", not_allowed(&["POST"]));
    r.any("/*", |req: Request, _: Params| {
        ApiError::route_not_found(req.path())
    });
    r
}
