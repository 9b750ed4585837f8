//! `GET` / `PUT /v1/dashboard/settings`: the tenant's allowed origins, thank-you URL and tag
//! rules, and its funnel ids read-only. A `PUT` replaces the rest whole and takes effect on the
//! next capture; funnel ids are the operator's to assign, so a `PUT` may omit them or send the
//! current ones back, and any other list is `422 funnel_ids_read_only`, the same answer
//! whatever it names, so no answer reveals which funnels other tenants hold.
//!
//! `sync_requires_consent` travels with the settings but is stored in `tenant_sync_rules`,
//! which capture reads inside its lead write; turning it off queues the leads it held.

use domain::settings::{Settings, SettingsError, SyncRules};
use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use serde::Serialize;
use spin_sdk::http::{Request, Response};

use crate::store::Dashboard;

/// The settings as the API shows them: the tenant's settings and its sync rules side by side.
#[derive(Serialize)]
struct SettingsView<'a> {
    #[serde(flatten)]
    settings: &'a Settings,
    #[serde(flatten)]
    rules: SyncRules,
}

pub fn get_settings(req: &Request) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let rules = Dashboard::new(&ctx)?.sync_rules()?;
    platform::response::json(
        200,
        &SettingsView {
            settings: &ctx.tenant().settings,
            rules,
        },
    )
}

pub fn put_settings(req: &Request) -> Result<Response, ApiError> {
    let mut ctx = authenticate(req, Scope::Dashboard)?;
    let (settings, rules) =
        Settings::parse_with_rules(req.body(), &ctx.tenant().settings.funnel_ids).map_err(|e| {
            match e {
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
            }
        })?;
    let dashboard = Dashboard::new(&ctx)?;
    dashboard.set_sync_rules(rules, platform::clock::now_unix())?;
    ctx.update_settings(&settings)?;
    platform::response::json(
        200,
        &SettingsView {
            settings: &ctx.tenant().settings,
            rules,
        },
    )
}
