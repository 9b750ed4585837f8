//! The tenant directory: creating tenants (from a verified signup) and the operator's view of
//! all tenants (from a verified admin token). Neither is reachable from a tenant's context.

use anyhow::{Result, anyhow};
use domain::tenant::{BudgetOverrides, Limits, Plan, TagPrefix, TenantId, TenantStatus};
use platform::ApiError;
use platform::auth::{AdminContext, VerifiedSignup};
use platform::clock::{now_rfc3339, random};
use platform::db::{Db, FromRow, Row};
use platform::storage_error;
use platform::tenant::{capture_token, limits_of};
use serde::Serialize;
use spin_sdk::sqlite::Value;

/// A tenant row as the operator and the signup answer see it.
#[derive(Debug, Clone, Serialize)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub email: String,
    pub tag_prefix: String,
    pub plan: Plan,
    pub limits: Limits,
    pub status: TenantStatus,
    pub usage: Usage,
    pub created_at: String,
    pub updated_at: String,
    /// The Systeme.io funnels the operator assigned to the tenant.
    pub funnel_ids: Vec<i64>,
    #[serde(skip)]
    capture_gen: i64,
}

/// Consumption against the plan's limits.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub leads: i64,
    pub lead_limit: u64,
}

const COLUMNS: &str = "id, name, email, tag_prefix, plan, status, capture_gen, lead_count, created_at, updated_at, funnel_ids, budget_held_leads, budget_tags, budget_sync_calls";

impl FromRow for TenantView {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        let plan = row.parsed("plan", Plan::parse)?;
        Ok(Self {
            id: row.parsed("id", TenantId::parse)?.to_string(),
            name: row.text("name")?.to_string(),
            email: row.text("email")?.to_string(),
            tag_prefix: row.parsed("tag_prefix", TagPrefix::parse)?.to_string(),
            plan,
            limits: limits_of(plan, row),
            status: row.parsed("status", TenantStatus::parse)?,
            capture_gen: row.int("capture_gen")?,
            usage: Usage {
                leads: row.int("lead_count")?,
                lead_limit: plan.limits().leads,
            },
            created_at: row.text("created_at")?.to_string(),
            updated_at: row.text("updated_at")?.to_string(),
            funnel_ids: row.json("funnel_ids")?,
        })
    }
}

impl TenantView {
    /// The tenant's current capture token (publishable; no expiry; revoked by rotation).
    pub fn capture_token(&self) -> Result<String, ApiError> {
        capture_token(
            &TenantId::parse(&self.id).map_err(anyhow::Error::from)?,
            self.capture_gen,
        )
    }
}

fn find(db: &Db, where_clause: &str, param: Value) -> Result<Option<TenantView>> {
    let sql = format!("SELECT {COLUMNS} FROM tenants WHERE {where_clause}");
    Ok(db.query::<TenantView>(&sql, &[param])?.into_iter().next())
}

/// What signup did.
pub enum SignupOutcome {
    Created(TenantView),
    /// The same `webhook-id` was seen before: this is the tenant it created.
    Replayed(TenantView),
}

/// Fresh tag prefixes tried before giving up (a collision among 36^8 is already rare).
const MAX_PREFIX_ATTEMPTS: usize = 8;

/// Creates the tenant for a verified signup, exactly once per `webhook-id`.
///
/// One statement: the insert does nothing when the webhook id, the email or the new tag
/// prefix is taken (each has a unique index), so racing replays and duplicates cannot create
/// two tenants. Only when nothing was inserted does a read tell which it was.
pub fn sign_up(signup: &VerifiedSignup) -> Result<SignupOutcome, ApiError> {
    let db = signup.db()?;
    let webhook = Value::Text(signup.webhook_id.clone());
    let email = Value::Text(signup.signup.email.to_string());
    for _ in 0..MAX_PREFIX_ATTEMPTS {
        let id = TenantId::from_random(random()?);
        let prefix = TagPrefix::from_random(random()?);
        let now = now_rfc3339()?;
        let created = db.query::<TenantView>(
            &format!(
                "INSERT INTO tenants (id, name, email, tag_prefix, plan, status, capture_gen,
                    lead_count, created_at, updated_at, signup_webhook_id)
                 VALUES (?, ?, ?, ?, ?, 'active', 1, 0, ?, ?, ?)
                 ON CONFLICT DO NOTHING
                 RETURNING {COLUMNS}"
            ),
            &[
                Value::Text(id.to_string()),
                Value::Text(signup.signup.name.clone()),
                email.clone(),
                Value::Text(prefix.to_string()),
                Value::Text(signup.signup.plan.as_str().into()),
                Value::Text(now.clone()),
                Value::Text(now),
                webhook.clone(),
            ],
        )?;
        if let Some(view) = created.into_iter().next() {
            return Ok(SignupOutcome::Created(view));
        }
        let by_webhook = "signup_webhook_id = ?1
            OR id = (SELECT tenant_id FROM signup_requests WHERE webhook_id = ?1)";
        if let Some(existing) = find(&db, by_webhook, webhook.clone())? {
            return Ok(SignupOutcome::Replayed(existing));
        }
        if find(&db, "email = ?", email.clone())?.is_some() {
            return Err(ApiError::Conflict {
                code: "email_taken",
                detail: "a tenant with this email already exists".into(),
            });
        }
        // The random prefix (or id) was taken: try another.
    }
    Err(anyhow!("no unused tag prefix after {MAX_PREFIX_ATTEMPTS} attempts").into())
}

/// The operator's view of all tenants. Built only from a verified admin token.
pub struct AdminDirectory {
    db: Db,
}

/// A change to a tenant's plan, status and/or funnel ids (the whole set, sorted).
#[derive(Debug, Default)]
pub struct TenantPatch {
    pub plan: Option<Plan>,
    pub status: Option<TenantStatus>,
    pub funnel_ids: Option<Vec<i64>>,
    pub budgets: Option<BudgetOverrides>,
}

impl AdminDirectory {
    pub fn open(admin: &AdminContext) -> Result<Self, ApiError> {
        Ok(Self { db: admin.db()? })
    }

    /// Tenants ordered by id, after the keyset cursor `after`, at most `limit`.
    pub fn list(&self, after: Option<&TenantId>, limit: u32) -> Result<Vec<TenantView>, ApiError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM tenants WHERE id > ? ORDER BY id LIMIT CAST(? AS INTEGER)"
        );
        let after = after.map(ToString::to_string).unwrap_or_default();
        Ok(self.db.query::<TenantView>(
            &sql,
            &[Value::Text(after), Value::Integer(i64::from(limit))],
        )?)
    }

    /// Applies `patch` in one statement; `None` if no such tenant. The gate reads the row on
    /// every request, so a suspension takes effect on the next request. A funnel another
    /// tenant holds fails the whole statement (`tenant_funnels` is unique per
    /// funnel) and is `409 funnel_taken`.
    pub fn update(
        &self,
        id: &TenantId,
        patch: &TenantPatch,
    ) -> Result<Option<TenantView>, ApiError> {
        let now = now_rfc3339()?;
        let replace = |given: bool| Value::Integer(i64::from(given));
        let budget = |n: Option<u64>| {
            n.map_or(Value::Null, |n| {
                Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
            })
        };
        let funnels = patch
            .funnel_ids
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(anyhow::Error::from)?;
        self.db
            .execute(
                "UPDATE tenants SET plan = COALESCE(?, plan), status = COALESCE(?, status),
                    funnel_ids = COALESCE(?, funnel_ids),
                    budget_held_leads = IIF(?, ?, budget_held_leads),
                    budget_tags = IIF(?, ?, budget_tags),
                    budget_sync_calls = IIF(?, ?, budget_sync_calls),
                    updated_at = ? WHERE id = ?",
                &[
                    patch
                        .plan
                        .map_or(Value::Null, |p| Value::Text(p.as_str().into())),
                    patch
                        .status
                        .map_or(Value::Null, |s| Value::Text(s.as_str().into())),
                    funnels.map_or(Value::Null, Value::Text),
                    replace(patch.budgets.is_some()),
                    budget(patch.budgets.and_then(|b| b.held_leads)),
                    replace(patch.budgets.is_some()),
                    budget(patch.budgets.and_then(|b| b.tags)),
                    replace(patch.budgets.is_some()),
                    budget(patch.budgets.and_then(|b| b.sync_calls_per_minute)),
                    Value::Text(now),
                    Value::Text(id.to_string()),
                ],
            )
            .map_err(|cause| {
                if storage_error::violates_unique(&format!("{cause:#}"), "tenant_funnels") {
                    ApiError::Conflict {
                        code: "funnel_taken",
                        detail: "funnel_ids: a funnel listed belongs to another tenant".into(),
                    }
                } else {
                    cause.into()
                }
            })?;
        // The gate reads this row on every request: the change holds from the next one, on
        // every replica.
        Ok(find(&self.db, "id = ?", Value::Text(id.to_string()))?)
    }
}
