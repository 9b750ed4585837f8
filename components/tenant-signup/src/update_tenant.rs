//! `PATCH /v1/admin/tenants/:id`: changes a tenant's plan and/or status (admin token). A
//! suspended tenant's tokens stop working on the next request, everywhere.

use crate::directory::{AdminDirectory, TenantPatch};
use domain::tenant::{Plan, TenantId, TenantStatus};
use platform::ApiError;
use platform::auth::authenticate_admin;
use serde::Deserialize;
use spin_sdk::http::{Request, Response};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    plan: Option<String>,
    status: Option<String>,
}

fn unprocessable(detail: impl Into<String>) -> ApiError {
    ApiError::Unprocessable {
        code: "invalid_field",
        detail: detail.into(),
    }
}

pub fn update_tenant(req: &Request, id: &str) -> Result<Response, ApiError> {
    let admin = authenticate_admin(req)?;
    let not_found = || ApiError::NotFound {
        code: "tenant_not_found",
        detail: "no such tenant".into(),
    };
    let id = TenantId::parse(id).map_err(|_| not_found())?;
    let body: PatchBody = serde_json::from_slice(req.body()).map_err(|e| ApiError::BadRequest {
        code: "invalid_json",
        detail: format!("the body is not a valid patch: {e}"),
    })?;
    let patch = TenantPatch {
        plan: body
            .plan
            .as_deref()
            .map(Plan::parse)
            .transpose()
            .map_err(|e| unprocessable(e.to_string()))?,
        status: body
            .status
            .as_deref()
            .map(TenantStatus::parse)
            .transpose()
            .map_err(|e| unprocessable(e.to_string()))?,
    };
    if patch.plan.is_none() && patch.status.is_none() {
        return Err(unprocessable("nothing to change: give plan and/or status"));
    }
    let tenant = AdminDirectory::open(&admin)?
        .update(&id, &patch)?
        .ok_or_else(not_found)?;
    platform::response::json(200, &tenant)
}
