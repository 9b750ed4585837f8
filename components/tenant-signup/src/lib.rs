//! `tenant-signup` component: `POST /v1/tenants` (signed by the SaaS back end) and the platform
//! operator's `GET /v1/admin/tenants` and `PATCH /v1/admin/tenants/:id`. This file holds the
//! entry point and the route table only.

// `#[http_component]` expands to the component's exported ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

mod list_tenants;
mod sign_up_tenant;
mod update_tenant;

use platform::ApiError;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

#[http_component]
#[allow(clippy::needless_pass_by_value)] // the macro hands the request over by value
fn handle_tenant_signup(req: Request) -> Response {
    platform::response::respond(route(&req))
}

fn route(req: &Request) -> Result<Response, ApiError> {
    let path = req.path();
    let id = path
        .strip_prefix("/v1/admin/tenants/")
        .filter(|id| !id.is_empty() && !id.contains('/'));
    match (req.method(), path, id) {
        (Method::Post, "/v1/tenants", _) => sign_up_tenant::sign_up_tenant(req),
        (_, "/v1/tenants", _) => Err(ApiError::MethodNotAllowed { allowed: &["POST"] }),
        (Method::Get, "/v1/admin/tenants", _) => list_tenants::list_tenants(req),
        (_, "/v1/admin/tenants", _) => Err(ApiError::MethodNotAllowed { allowed: &["GET"] }),
        (Method::Patch, _, Some(id)) => update_tenant::update_tenant(req, id),
        (_, _, Some(_)) => Err(ApiError::MethodNotAllowed {
            allowed: &["PATCH"],
        }),
        _ => Err(ApiError::route_not_found(path)),
    }
}
