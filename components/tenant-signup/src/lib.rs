//! `tenant-signup` component: `POST /v1/tenants` (signed by the SaaS back end) and the platform
//! operator's `GET /v1/admin/tenants` and `PATCH /v1/admin/tenants/:id`. The route table is
//! below; the handlers have a file each, and the tenant directory they share is [`directory`].

// `#[http_component]` expands to the component's exported ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

mod directory;
mod list_tenants;
mod list_unattributed_sales;
mod sign_up_tenant;
mod update_tenant;

use platform::ApiError;
use platform::request::MAX_BODY_BYTES;
use platform::response::handle;
use spin_sdk::http::{IncomingRequest, Params, Request, Response, Router};
use spin_sdk::http_component;

#[http_component]
async fn handle_tenant_signup(incoming: IncomingRequest) -> Response {
    let req = match platform::request::read_limited(incoming, MAX_BODY_BYTES).await {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
    let mut router = Router::new();
    router.post("/v1/tenants", |req: Request, _: Params| {
        handle(|| sign_up_tenant::sign_up_tenant(&req))
    });
    router.any("/v1/tenants", |_: Request, _: Params| {
        ApiError::MethodNotAllowed { allowed: &["POST"] }
    });
    router.get("/v1/admin/tenants", |req: Request, _: Params| {
        handle(|| list_tenants::list_tenants(&req))
    });
    router.any("/v1/admin/tenants", |_: Request, _: Params| {
        ApiError::MethodNotAllowed { allowed: &["GET"] }
    });
    router.patch("/v1/admin/tenants/:id", |req: Request, params: Params| {
        handle(|| update_tenant::update_tenant(&req, params.get("id").unwrap_or_default()))
    });
    router.any("/v1/admin/tenants/:id", |_: Request, _: Params| {
        ApiError::MethodNotAllowed {
            allowed: &["PATCH"],
        }
    });
    router.get("/v1/admin/sales", |req: Request, _: Params| {
        handle(|| list_unattributed_sales::list_unattributed_sales(&req))
    });
    router.any("/v1/admin/sales", |_: Request, _: Params| {
        ApiError::MethodNotAllowed { allowed: &["GET"] }
    });
    router.any("/*", |req: Request, _: Params| {
        ApiError::route_not_found(req.path())
    });
    router.handle_async(req).await
}
