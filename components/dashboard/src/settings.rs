//! `GET` / `PUT /v1/dashboard/settings`: the tenant's allowed origins, thank-you URL and tag
//! rules, and its funnel ids read-only. A `PUT` replaces the rest whole and takes effect on the
//! next capture; funnel ids are the operator's to assign, so a `PUT` may omit them or send the
//! current ones back, and any other list is `422 funnel_ids_read_only`, the same answer
//! whatever it names, so no answer reveals which funnels other tenants hold.

use domain::settings::{Settings, SettingsError};
use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use spin_sdk::http::{Request, Response};

pub fn get_settings(req: &Request) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    platform::response::json(200, &ctx.tenant().settings)
}

pub fn put_settings(req: &Request) -> Result<Response, ApiError> {
    let mut ctx = authenticate(req, Scope::Dashboard)?;
    let settings =
        Settings::parse(req.body(), &ctx.tenant().settings.funnel_ids).map_err(|e| match e {
            SettingsError::NotJson(_) => ApiError::BadRequest {
                code: "invalid_json",
                detail: e.to_string(),
            },
            SettingsError::Field(f) => ApiError::Unprocessable {
                code: "invalid_field",
                detail: f.to_string(),
            },
            SettingsError::FunnelsReadOnly => ApiError::Unprocessable {
                code: "funnel_ids_read_only",
                detail: e.to_string(),
            },
        })?;
    ctx.update_settings(&settings)?;
    platform::response::json(200, &ctx.tenant().settings)
}
