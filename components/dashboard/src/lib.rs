//! `dashboard` component: `GET /v1/health` and the tenant dashboard under `/v1/dashboard/...`
//! (`dashboard` token). This file holds the entry point and the route table only.
//!
//! The entry point takes the streaming form (`IncomingRequest` + `ResponseOutparam`) so the CSV
//! export can stream; every other route is an ordinary request → response handler.

// `#[http_component]` expands to the component's exported ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

mod erase_lead;
mod export_leads;
mod get_health;
mod get_lead;
mod get_stats;
mod list_leads;
mod query;
mod rotate_capture_key;
mod settings;

use platform::ApiError;
use spin_sdk::http::conversions::TryFromIncomingRequest;
use spin_sdk::http::{IncomingRequest, Method, Request, Response, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle_dashboard(incoming: IncomingRequest, out: ResponseOutparam) {
    let req = match Request::try_from_incoming_request(incoming).await {
        Ok(req) => req,
        Err(e) => {
            let error = ApiError::BadRequest {
                code: "unreadable_body",
                detail: format!("the request body could not be read: {e}"),
            };
            export_leads::send(out, error.into_response()).await;
            return;
        }
    };
    if (req.method(), req.path()) == (&Method::Get, "/v1/dashboard/leads.csv") {
        export_leads::export_leads(&req, out).await;
        return;
    }
    export_leads::send(out, platform::response::respond(route(&req))).await;
}

fn route(req: &Request) -> Result<Response, ApiError> {
    let path = req.path();
    let lead_id = path
        .strip_prefix("/v1/dashboard/leads/")
        .filter(|id| !id.is_empty() && !id.contains('/'));
    match (req.method(), path, lead_id) {
        (Method::Get, "/v1/health", _) => get_health::get_health(),
        (_, "/v1/health", _) => Err(ApiError::MethodNotAllowed { allowed: &["GET"] }),
        (Method::Get, "/v1/dashboard/stats", _) => get_stats::get_stats(req),
        (_, "/v1/dashboard/stats", _) => Err(ApiError::MethodNotAllowed { allowed: &["GET"] }),
        (Method::Get, "/v1/dashboard/leads", _) => list_leads::list_leads(req),
        (_, "/v1/dashboard/leads" | "/v1/dashboard/leads.csv", _) => {
            Err(ApiError::MethodNotAllowed { allowed: &["GET"] })
        }
        (Method::Get, _, Some(id)) => get_lead::get_lead(req, id),
        (Method::Delete, _, Some(id)) => erase_lead::erase_lead(req, id),
        (_, _, Some(_)) => Err(ApiError::MethodNotAllowed {
            allowed: &["GET", "DELETE"],
        }),
        (Method::Post, "/v1/dashboard/capture-key", _) => {
            rotate_capture_key::rotate_capture_key(req)
        }
        (_, "/v1/dashboard/capture-key", _) => {
            Err(ApiError::MethodNotAllowed { allowed: &["POST"] })
        }
        (Method::Get, "/v1/dashboard/settings", _) => settings::get_settings(req),
        (Method::Put, "/v1/dashboard/settings", _) => settings::put_settings(req),
        (_, "/v1/dashboard/settings", _) => Err(ApiError::MethodNotAllowed {
            allowed: &["GET", "PUT"],
        }),
        _ => Err(ApiError::route_not_found(path)),
    }
}
