//! `PATCH /v1/admin/tenants/:id`: changes a tenant's plan, status and/or funnel ids (admin
//! token). A suspended tenant's tokens stop working on the next request, everywhere. Funnel ids
//! replace the tenant's whole set; only the operator assigns them, and a funnel another tenant
//! holds is `409 funnel_taken`.

use crate::directory::{AdminDirectory, TenantPatch};
use domain::settings::parse_funnel_ids;
use domain::tenant::{BudgetOverrides, Plan, TenantId, TenantStatus};
use platform::ApiError;
use platform::auth::authenticate_admin;
use serde::Deserialize;
use spin_sdk::http::{Request, Response};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    plan: Option<String>,
    status: Option<String>,
    funnel_ids: Option<Vec<serde_json::Value>>,
    /// Replaces the tenant's budget overrides whole; a budget left out is the plan's default.
    budgets: Option<BudgetOverrides>,
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
        funnel_ids: body
            .funnel_ids
            .as_deref()
            .map(parse_funnel_ids)
            .transpose()
            .map_err(|e| unprocessable(e.to_string()))?,
        budgets: body.budgets,
    };
    if patch
        .budgets
        .is_some_and(|b| b.sync_calls_per_minute == Some(0))
    {
        return Err(unprocessable(
            "budgets: sync_calls_per_minute must be at least 1",
        ));
    }
    if patch.plan.is_none()
        && patch.status.is_none()
        && patch.funnel_ids.is_none()
        && patch.budgets.is_none()
    {
        return Err(unprocessable(
            "nothing to change: give plan, status, funnel_ids and/or budgets",
        ));
    }
    let tenant = AdminDirectory::open(&admin)?
        .update(&id, &patch)?
        .ok_or_else(not_found)?;
    platform::response::json(200, &tenant)
}
