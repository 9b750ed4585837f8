//! `GET` / `PUT /v1/dashboard/settings`: the tenant's allowed origins, thank-you URL and tag
//! rules, and its funnel ids read-only. A `PUT` replaces the rest whole and takes effect on the
//! next capture; funnel ids are the operator's to assign, so a `PUT` may omit them or send the
//! current ones back, and any other list is `422 funnel_ids_read_only`, the same answer
//! whatever it names, so no answer reveals which funnels other tenants hold.
//!
//! The answer also names `effective_tag_rules`: the built-in tag rules with the tenant's on top,
//! what a tag does for this tenant (the page's "Workflows"); a `PUT` ignores it.
//!
//! `sync_requires_consent` travels with the settings but is stored in `tenant_sync_rules`,
//! which capture reads inside its lead write; turning it off queues the leads it held.
//!
//! The spam rules (`captcha`, `min_fill_seconds`; [`domain::spam`]) travel with them too and
//! are stored in `tenant_spam_rules`. A `PUT` that leaves either out keeps it as it is; the
//! captcha secret is taken on `PUT` and never shown (`secret_set: true` instead).

use domain::funnel::TagRules;
use domain::settings::{Settings, SettingsError, SyncRules};
use domain::spam::{SpamRules, SpamRulesView, SpamUpdate};
use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use serde::Serialize;
use spin_sdk::http::{Request, Response};

use crate::settings_store;
use crate::store::Dashboard;

/// The settings as the API shows them: the tenant's settings and its sync rules side by side.
#[derive(Serialize)]
struct SettingsView<'a> {
    #[serde(flatten)]
    settings: &'a Settings,
    #[serde(flatten)]
    rules: SyncRules,
    #[serde(flatten)]
    spam: SpamRulesView,
    effective_tag_rules: TagRules,
}

impl<'a> SettingsView<'a> {
    fn new(settings: &'a Settings, rules: SyncRules, spam: &SpamRules) -> Self {
        Self {
            settings,
            rules,
            spam: spam.view(),
            effective_tag_rules: TagRules::defaults().with_overrides(&settings.tag_rules),
        }
    }
}

pub fn get_settings(req: &Request) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let dashboard = Dashboard::new(&ctx)?;
    let rules = dashboard.sync_rules()?;
    let spam = dashboard.spam_rules()?;
    platform::response::json(
        200,
        &SettingsView::new(&ctx.tenant().settings, rules, &spam),
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
    let spam = updated_spam_rules(req.body(), &dashboard.spam_rules()?)?;
    dashboard.set_sync_rules(rules, platform::clock::now_unix())?;
    dashboard.set_spam_rules(&spam)?;
    settings_store::update_settings(&mut ctx, &settings)?;
    platform::response::json(
        200,
        &SettingsView::new(&ctx.tenant().settings, rules, &spam),
    )
}

/// The stored spam rules with the body's changes (already read as a settings object).
fn updated_spam_rules(body: &[u8], current: &SpamRules) -> Result<SpamRules, ApiError> {
    let invalid = |detail: String| ApiError::Unprocessable {
        code: "invalid_field",
        detail,
    };
    let body: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
            code: "invalid_json",
            detail: e.to_string(),
        })?;
    let update = SpamUpdate::parse(&body).map_err(|e| invalid(e.to_string()))?;
    current.updated(update).map_err(|e| invalid(e.to_string()))
}
