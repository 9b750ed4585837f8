//! The tenant directory: creating tenants (from a verified signup) and the operator's view of
//! all tenants (from a verified admin token). Neither is reachable from a tenant's context.

use anyhow::{Context, Result, anyhow};
use domain::tenant::{Limits, Plan, TagPrefix, TenantId, TenantStatus};
use platform::ApiError;
use platform::auth::{AdminContext, VerifiedSignup};
use platform::clock::{now_rfc3339, random};
use platform::db::{Db, FromRow, Row};
use platform::kv::{GlobalKey, GlobalKv};
use platform::tenant::{capture_token, refresh_tenant};
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
    #[serde(skip)]
    capture_gen: i64,
}

/// Consumption against the plan's limits.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub leads: i64,
    pub lead_limit: u64,
}

const COLUMNS: &str =
    "id, name, email, tag_prefix, plan, status, capture_gen, lead_count, created_at, updated_at";

impl FromRow for TenantView {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        let plan = row.parsed("plan", Plan::parse)?;
        Ok(Self {
            id: row.parsed("id", TenantId::parse)?.to_string(),
            name: row.text("name")?.to_string(),
            email: row.text("email")?.to_string(),
            tag_prefix: row.parsed("tag_prefix", TagPrefix::parse)?.to_string(),
            plan,
            limits: plan.limits(),
            status: row.parsed("status", TenantStatus::parse)?,
            capture_gen: row.int("capture_gen")?,
            usage: Usage {
                leads: row.int("lead_count")?,
                lead_limit: plan.limits().leads,
            },
            created_at: row.text("created_at")?.to_string(),
            updated_at: row.text("updated_at")?.to_string(),
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

const MAX_PREFIX_ATTEMPTS: usize = 8;

/// Creates the tenant for a verified signup, exactly once per `webhook-id`.
pub fn sign_up(signup: &VerifiedSignup) -> Result<SignupOutcome, ApiError> {
    let db = signup.db()?;
    let by_webhook = "id = (SELECT tenant_id FROM signup_requests WHERE webhook_id = ?)";
    let webhook = || Value::Text(signup.webhook_id.clone());
    if let Some(existing) = find(&db, by_webhook, webhook())? {
        return Ok(SignupOutcome::Replayed(existing));
    }
    // The write lock makes the checks below and the inserts one atomic step, so a racing
    // replay or a racing duplicate email sees the first one's result.
    db.execute("BEGIN IMMEDIATE", &[])?;
    let outcome = create_locked(&db, signup);
    match &outcome {
        Ok(_) => db.execute("COMMIT", &[]).map(drop)?,
        Err(_) => {
            let _ = db.execute("ROLLBACK", &[]);
        }
    }
    let outcome = outcome?;
    if let SignupOutcome::Created(view) = &outcome {
        // SQLite is the source of truth; these caches make the hot path one read.
        let id = TenantId::parse(&view.id).map_err(anyhow::Error::from)?;
        refresh_tenant(&db, &id)?;
        GlobalKv::open()?.set(
            &GlobalKey::TenantByPrefix(
                &TagPrefix::parse(&view.tag_prefix).map_err(anyhow::Error::from)?,
            ),
            id.as_ref().as_bytes(),
        )?;
    }
    Ok(outcome)
}

fn create_locked(db: &Db, signup: &VerifiedSignup) -> Result<SignupOutcome, ApiError> {
    let by_webhook = "id = (SELECT tenant_id FROM signup_requests WHERE webhook_id = ?)";
    if let Some(existing) = find(db, by_webhook, Value::Text(signup.webhook_id.clone()))? {
        return Ok(SignupOutcome::Replayed(existing));
    }
    let email = signup.signup.email.to_string();
    if find(db, "email = ?", Value::Text(email.clone()))?.is_some() {
        return Err(ApiError::Conflict {
            code: "email_taken",
            detail: "a tenant with this email already exists".into(),
        });
    }
    let prefix = unused_prefix(db)?;
    let id = TenantId::from_random(random()?);
    let now = now_rfc3339()?;
    db.execute(
        "INSERT INTO tenants (id, name, email, tag_prefix, plan, status, capture_gen, lead_count, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'active', 1, 0, ?, ?)",
        &[
            Value::Text(id.to_string()),
            Value::Text(signup.signup.name.clone()),
            Value::Text(email),
            Value::Text(prefix.to_string()),
            Value::Text(signup.signup.plan.as_str().into()),
            Value::Text(now.clone()),
            Value::Text(now.clone()),
        ],
    )
    .context("inserting the tenant")?;
    db.execute(
        "INSERT INTO signup_requests (webhook_id, tenant_id, created_at) VALUES (?, ?, ?)",
        &[
            Value::Text(signup.webhook_id.clone()),
            Value::Text(id.to_string()),
            Value::Text(now),
        ],
    )
    .context("recording the signup webhook")?;
    let view = find(db, "id = ?", Value::Text(id.to_string()))?
        .ok_or_else(|| anyhow!("the tenant just inserted is missing"))?;
    Ok(SignupOutcome::Created(view))
}

/// A random prefix no tenant has. Runs under the write lock, so the check cannot race; the
/// unique index is the backstop.
fn unused_prefix(db: &Db) -> Result<TagPrefix> {
    for _ in 0..MAX_PREFIX_ATTEMPTS {
        let prefix = TagPrefix::from_random(random()?);
        let taken = db.execute(
            "SELECT 1 FROM tenants WHERE tag_prefix = ?",
            &[Value::Text(prefix.to_string())],
        )?;
        if taken.rows.is_empty() {
            return Ok(prefix);
        }
    }
    Err(anyhow!(
        "no unused tag prefix after {MAX_PREFIX_ATTEMPTS} attempts"
    ))
}

/// The operator's view of all tenants. Built only from a verified admin token.
pub struct AdminDirectory {
    db: Db,
}

/// A change to a tenant's plan and/or status.
#[derive(Debug, Default)]
pub struct TenantPatch {
    pub plan: Option<Plan>,
    pub status: Option<TenantStatus>,
}

impl AdminDirectory {
    pub fn open(admin: &AdminContext) -> Result<Self, ApiError> {
        Ok(Self { db: admin.db()? })
    }

    /// Tenants ordered by id, after the keyset cursor `after`, at most `limit`.
    pub fn list(&self, after: Option<&TenantId>, limit: u32) -> Result<Vec<TenantView>, ApiError> {
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id > ? ORDER BY id LIMIT ?");
        let after = after.map(ToString::to_string).unwrap_or_default();
        Ok(self.db.query::<TenantView>(
            &sql,
            &[Value::Text(after), Value::Integer(i64::from(limit))],
        )?)
    }

    /// Applies `patch`; `None` if no such tenant. The gate's cache is updated before returning,
    /// so a suspension takes effect on the next request.
    pub fn update(
        &self,
        id: &TenantId,
        patch: &TenantPatch,
    ) -> Result<Option<TenantView>, ApiError> {
        let now = now_rfc3339()?;
        self.db.execute(
            "UPDATE tenants SET plan = COALESCE(?, plan), status = COALESCE(?, status), updated_at = ? WHERE id = ?",
            &[
                patch.plan.map_or(Value::Null, |p| Value::Text(p.as_str().into())),
                patch.status.map_or(Value::Null, |s| Value::Text(s.as_str().into())),
                Value::Text(now),
                Value::Text(id.to_string()),
            ],
        )?;
        let Some(view) = find(&self.db, "id = ?", Value::Text(id.to_string()))? else {
            return Ok(None);
        };
        refresh_tenant(&self.db, id)?;
        Ok(Some(view))
    }
}
