//! `GET` / `PUT /v1/dashboard/settings`: the tenant's allowed origins and thank-you URL. A `PUT`
//! replaces them whole and takes effect on the next capture.

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
    let settings = Settings::parse(req.body()).map_err(|e| match e {
        SettingsError::NotJson(_) => ApiError::BadRequest {
            code: "invalid_json",
            detail: e.to_string(),
        },
        SettingsError::Field(f) => ApiError::Unprocessable {
            code: "invalid_field",
            detail: f.to_string(),
        },
    })?;
    ctx.update_settings(&settings)?;
    platform::response::json(200, &ctx.tenant().settings)
}
