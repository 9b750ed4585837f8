//! The tenant's own row as the dashboard changes it: capture-key rotation and settings. Each
//! change is one `UPDATE` of that row only ([`platform::own_row_sql!`]), after which the request
//! holds the row as it is now; the next request on any replica reads it the same way.

use domain::settings::Settings;
use platform::ApiError;
use platform::own_row_sql;
use platform::tenant::TenantContext;
use spin_sdk::sqlite::Value;

/// Rotates the capture key: the generation goes up by one, so every older capture token stops
/// working on the next request. Returns the new capture token.
pub fn rotate_capture_key(ctx: &mut TenantContext) -> Result<String, ApiError> {
    ctx.update_own_row(
        own_row_sql!(
            "UPDATE tenants SET capture_gen = capture_gen + 1, updated_at = ?2 WHERE id = ?1"
        ),
        &[Value::Text(platform::clock::now_rfc3339()?)],
    )?;
    ctx.tenant().capture_token()
}

/// Replaces the tenant's origins, thank-you URL and tag rules; the next request sees them. Its
/// funnel ids are not written: only the operator assigns funnels.
pub fn update_settings(ctx: &mut TenantContext, settings: &Settings) -> Result<(), ApiError> {
    let origins = serde_json::to_string(&settings.allowed_origins)
        .map_err(|e| ApiError::Unexpected(e.into()))?;
    let rules =
        serde_json::to_string(&settings.tag_rules).map_err(|e| ApiError::Unexpected(e.into()))?;
    let thank_you_url = settings
        .thank_you_url
        .as_ref()
        .map_or(Value::Null, |u| Value::Text(u.as_ref().to_string()));
    ctx.update_own_row(
        own_row_sql!(
            "UPDATE tenants SET allowed_origins = ?2, thank_you_url = ?3, tag_rules = ?4,
                updated_at = ?5 WHERE id = ?1"
        ),
        &[
            Value::Text(origins),
            thank_you_url,
            Value::Text(rules),
            Value::Text(platform::clock::now_rfc3339()?),
        ],
    )
}
