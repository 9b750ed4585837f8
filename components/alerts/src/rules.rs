//! `/v1/dashboard/alerts` (dashboard token): the tenant's rules, read, created, replaced and
//! deleted, and its signing secret, answered once when made and when rotated.

use domain::alerts::{AlertLimits, RuleError, RuleInput, limits};
use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use serde::Serialize;
use spin_sdk::http::{Request, Response};

use crate::deliver::dev_origin;
use crate::store::{AlertStore, Rule, new_secret_key};

#[derive(Serialize)]
struct RulesView {
    rules: Vec<Rule>,
    signing_secret_set: bool,
    limits: AlertLimits,
    deliveries_today: i64,
}

/// A rule just made, with the signing secret when this made it.
#[derive(Serialize)]
struct Created {
    #[serde(flatten)]
    rule: Rule,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
}

#[derive(Serialize)]
struct NewSecret {
    signing_secret: String,
}

pub fn not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        code: "alert_rule_not_found",
        detail: format!("no alert rule {id}"),
    }
}

fn parse(req: &Request) -> Result<RuleInput, ApiError> {
    RuleInput::parse(req.body(), dev_origin().as_deref()).map_err(|e| match e {
        RuleError::NotJson(_) => ApiError::Unprocessable {
            code: "invalid_field",
            detail: e.to_string(),
        },
        RuleError::Field(_) => ApiError::Unprocessable {
            code: "invalid_field",
            detail: e.to_string(),
        },
        RuleError::Destination(_) => ApiError::Unprocessable {
            code: "destination_refused",
            detail: e.to_string(),
        },
    })
}

pub fn list_rules(req: &Request) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let store = AlertStore::new(ctx.db()?);
    platform::response::json(
        200,
        &RulesView {
            rules: store.rules()?,
            signing_secret_set: store.secret()?.is_some(),
            limits: limits(ctx.tenant().plan),
            deliveries_today: store.attempted_today()?,
        },
    )
}

pub fn create_rule(req: &Request) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let rule = parse(req)?;
    let store = AlertStore::new(ctx.db()?);
    let max = limits(ctx.tenant().plan).rules;
    let Some(rule) = store.create(&rule, max)? else {
        return Err(ApiError::Unprocessable {
            code: "alert_rule_limit",
            detail: format!("the plan allows {max} alert rules; delete one first"),
        });
    };
    let key = new_secret_key()?;
    let signing_secret = store
        .store_secret(&key, false)?
        .then(|| format!("whsec_{key}"));
    platform::response::json(
        201,
        &Created {
            rule,
            signing_secret,
        },
    )
}

pub fn get_rule(req: &Request, id: &str) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let rule = AlertStore::new(ctx.db()?)
        .rule(id)?
        .ok_or_else(|| not_found(id))?;
    platform::response::json(200, &rule)
}

pub fn put_rule(req: &Request, id: &str) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let rule = parse(req)?;
    let rule = AlertStore::new(ctx.db()?)
        .replace(id, &rule)?
        .ok_or_else(|| not_found(id))?;
    platform::response::json(200, &rule)
}

pub fn delete_rule(req: &Request, id: &str) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    if !AlertStore::new(ctx.db()?).delete(id)? {
        return Err(not_found(id));
    }
    Ok(Response::builder().status(204).build())
}

pub fn rotate_secret(req: &Request) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let key = new_secret_key()?;
    AlertStore::new(ctx.db()?).store_secret(&key, true)?;
    platform::response::json(
        201,
        &NewSecret {
            signing_secret: format!("whsec_{key}"),
        },
    )
}
