//! `GET /v1/dashboard/me`: who the dashboard token signs in as (tenant id, name, tag prefix and
//! plan), so the page can name the tenant whose data it shows.

use domain::tenant::Plan;
use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use serde::Serialize;
use spin_sdk::http::{Request, Response};

#[derive(Serialize)]
struct Me {
    tenant_id: String,
    name: String,
    tag_prefix: String,
    plan: Plan,
}

pub fn get_me(req: &Request) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let tenant = ctx.tenant();
    platform::response::json(
        200,
        &Me {
            tenant_id: tenant.id.to_string(),
            name: ctx.tenant().name.clone(),
            tag_prefix: tenant.tag_prefix.to_string(),
            plan: tenant.plan,
        },
    )
}
