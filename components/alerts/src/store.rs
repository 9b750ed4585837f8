//! A tenant's alerts as the dashboard sees them: its rules, its signing secret and its delivery
//! log. Built only from a verified tenant, or (for a delivery run) from the tenant a queued
//! delivery names; every statement goes through [`TenantDb`].

use anyhow::{Result, anyhow};
use domain::alerts::{AlertEvent, Destination, Format, RuleInput, When};
use platform::clock::{new_id, now_rfc3339};
use platform::db::{FromRow, Params, Row};
use platform::scope::TenantDb;
use platform::tenant_sql;
use serde::Serialize;
use spin_sdk::sqlite::Value;

/// A rule as the API answers it.
#[derive(Debug, Serialize)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub when: When,
    pub destination: Destination,
    /// `active`, or `disabled_failing` once its deliveries failed for three days.
    pub status: &'static str,
    pub failing_since: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The columns [`Rule`] reads.
macro_rules! rule_columns {
    () => {
        "id, name, enabled, event, volume, ib_type, utm_source, form, tag, stage, opens,
        min_amount_cents, currency, timezone, url, format, failing_since, disabled_at,
        created_at, updated_at"
    };
}

/// Unix seconds as the API's timestamps (`None` out of range).
pub fn rfc3339(unix: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .map(platform::clock::timestamp)
}

/// A stored timestamp as Unix seconds (`None` when it does not parse).
pub fn unix(stamp: &str) -> Option<i64> {
    time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

impl FromRow for Rule {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        let event = row.parsed("event", |e| AlertEvent::parse(e).ok_or("unknown event"))?;
        let when = match event {
            AlertEvent::LeadCaptured => When::LeadCaptured {
                volume: row.opt_text("volume"),
                ib_type: row.opt_text("ib_type"),
                utm_source: row.opt_text("utm_source"),
                form: row.opt_text("form"),
                tag: row.opt_text("tag"),
            },
            AlertEvent::LeadStage => When::LeadStage {
                stage: row.text("stage")?.to_string(),
            },
            AlertEvent::LeadOpened => When::LeadOpened {
                opens: row.int("opens")?,
            },
            AlertEvent::Sale => When::Sale {
                min_amount_cents: row.int("min_amount_cents")?,
                currency: row.opt_text("currency"),
            },
            AlertEvent::Digest => When::Digest {
                timezone: row.opt_text("timezone").unwrap_or_else(|| "UTC".into()),
            },
            AlertEvent::Test => return Err(anyhow!("a rule cannot have the test event")),
        };
        Ok(Self {
            id: row.text("id")?.to_string(),
            name: row.text("name")?.to_string(),
            enabled: row.flag("enabled")?,
            when,
            destination: Destination {
                url: row.text("url")?.to_string(),
                format: row.parsed("format", |f| Format::parse(f).ok_or("unknown format"))?,
            },
            status: if row.opt_text("disabled_at").is_some() {
                "disabled_failing"
            } else {
                "active"
            },
            failing_since: row.opt_int("failing_since").and_then(rfc3339),
            created_at: row.text("created_at")?.to_string(),
            updated_at: row.text("updated_at")?.to_string(),
        })
    }
}

/// A delivery as the log shows it.
#[derive(Debug, Serialize)]
pub struct Delivery {
    pub id: String,
    pub rule_id: String,
    pub rule_name: Option<String>,
    pub event: String,
    pub lead_id: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub last_attempt_at: Option<String>,
    pub next_attempt_at: Option<String>,
}

/// The columns [`Delivery`] reads.
macro_rules! delivery_columns {
    () => {
        "id, rule_id, (SELECT name FROM alert_rules WHERE tenant_id = ?1 AND id = rule_id) AS rule_name,
        event, lead_id, status, attempts, last_status_code, last_error, created_at, last_attempt_at,
        next_attempt_at"
    };
}

impl FromRow for Delivery {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        let status = row.text("status")?.to_string();
        Ok(Self {
            id: row.text("id")?.to_string(),
            rule_id: row.text("rule_id")?.to_string(),
            rule_name: row.opt_text("rule_name"),
            event: row.text("event")?.to_string(),
            lead_id: row.opt_text("lead_id"),
            attempts: row.int("attempts")?,
            last_status_code: row.opt_int("last_status_code"),
            last_error: row.opt_text("last_error"),
            created_at: row.text("created_at")?.to_string(),
            last_attempt_at: row.opt_int("last_attempt_at").and_then(rfc3339),
            next_attempt_at: (status == "pending")
                .then(|| row.opt_int("next_attempt_at").and_then(rfc3339))
                .flatten(),
            status,
        })
    }
}

/// One counted value (a query's `n`).
pub struct Count(pub i64);

impl FromRow for Count {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self(row.int("n")?))
    }
}

/// The tenant's signing secret (the key, base64).
pub struct SecretKey(pub String);

impl FromRow for SecretKey {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self(row.text("secret")?.to_string()))
    }
}

/// How many deliveries the log shows.
pub const LOG_LENGTH: i64 = 100;

/// Days a delivery can be redelivered; older ones are never attempted again.
pub const KEPT_DAYS: i64 = 30;

/// The bindings of a rule's columns.
fn rule_params(rule: &RuleInput) -> Params {
    let mut p = Params::new()
        .set("name", rule.name.as_str())
        .set("enabled", rule.enabled)
        .set("event", rule.when.event().as_str())
        .set("url", rule.destination.url.as_str())
        .set("format", rule.destination.format.as_str())
        .set("now", now_rfc3339().unwrap_or_default());
    let none: Option<&str> = None;
    let no_int: Option<i64> = None;
    let (mut volume, mut ib_type, mut utm_source, mut form, mut tag) =
        (none, none, none, none, none);
    let (mut stage, mut currency, mut timezone) = (none, none, none);
    let (mut opens, mut min_amount) = (no_int, no_int);
    match &rule.when {
        When::LeadCaptured {
            volume: v,
            ib_type: i,
            utm_source: u,
            form: f,
            tag: t,
        } => {
            (volume, ib_type, utm_source, form, tag) = (
                v.as_deref(),
                i.as_deref(),
                u.as_deref(),
                f.as_deref(),
                t.as_deref(),
            );
        }
        When::LeadStage { stage: s } => stage = Some(s),
        When::LeadOpened { opens: n } => opens = Some(*n),
        When::Sale {
            min_amount_cents,
            currency: c,
        } => (min_amount, currency) = (Some(*min_amount_cents), c.as_deref()),
        When::Digest { timezone: tz } => timezone = Some(tz),
    }
    p = p
        .set("volume", volume)
        .set("ib_type", ib_type)
        .set("utm_source", utm_source)
        .set("form", form)
        .set("tag", tag)
        .set("stage", stage)
        .set("opens", opens)
        .set("min_amount_cents", min_amount)
        .set("currency", currency)
        .set("timezone", timezone);
    p
}

/// The tenant's alerts.
pub struct AlertStore {
    db: TenantDb,
}

impl AlertStore {
    pub fn new(db: TenantDb) -> Self {
        Self { db }
    }

    pub fn rules(&self) -> Result<Vec<Rule>> {
        self.db.query(
            tenant_sql!(
                "SELECT ",
                rule_columns!(),
                " FROM alert_rules WHERE tenant_id = ?1 ORDER BY created_at, id"
            ),
            &[],
        )
    }

    pub fn rule(&self, id: &str) -> Result<Option<Rule>> {
        self.db.query_one(
            tenant_sql!(
                "SELECT ",
                rule_columns!(),
                " FROM alert_rules WHERE tenant_id = ?1 AND id = ?2"
            ),
            &[Value::Text(id.to_string())],
        )
    }

    /// Stores a new rule unless the tenant already has `max_rules`; `None` then.
    pub fn create(&self, rule: &RuleInput, max_rules: u64) -> Result<Option<Rule>> {
        let params = rule_params(rule)
            .set("id", new_id()?)
            .set("max_rules", i64::try_from(max_rules).unwrap_or(i64::MAX));
        self.db.query_one_named(
            tenant_sql!(
                "INSERT INTO alert_rules (tenant_id, id, name, enabled, event, volume, ib_type,
                    utm_source, form, tag, stage, opens, min_amount_cents, currency, timezone, url,
                    format, created_at, updated_at)
                 SELECT ?1, :id, :name, :enabled, :event, :volume, :ib_type, :utm_source, :form,
                    :tag, :stage, :opens, :min_amount_cents, :currency, :timezone, :url, :format,
                    :now, :now
                 WHERE (SELECT count(*) FROM alert_rules WHERE tenant_id = ?1) < :max_rules
                 RETURNING ",
                rule_columns!()
            ),
            &params,
        )
    }

    /// Replaces a rule; saving switches a rule that failed for three days back on.
    pub fn replace(&self, id: &str, rule: &RuleInput) -> Result<Option<Rule>> {
        let params = rule_params(rule).set("id", id);
        self.db.query_one_named(
            tenant_sql!(
                "UPDATE alert_rules SET name = :name, enabled = :enabled, event = :event,
                    volume = :volume, ib_type = :ib_type, utm_source = :utm_source, form = :form,
                    tag = :tag, stage = :stage, opens = :opens, min_amount_cents = :min_amount_cents,
                    currency = :currency, timezone = :timezone, url = :url, format = :format,
                    failing_since = NULL, disabled_at = NULL, updated_at = :now
                 WHERE tenant_id = ?1 AND id = :id
                 RETURNING ",
                rule_columns!()
            ),
            &params,
        )
    }

    /// Deletes a rule and drops its pending deliveries; whether it existed.
    pub fn delete(&self, id: &str) -> Result<bool> {
        let deleted = self.db.execute(
            tenant_sql!("DELETE FROM alert_rules WHERE tenant_id = ?1 AND id = ?2 RETURNING id"),
            &[Value::Text(id.to_string())],
        )?;
        self.db.execute(
            tenant_sql!(
                "UPDATE alert_deliveries SET status = 'dropped', last_error = 'rule_deleted'
                 WHERE tenant_id = ?1 AND rule_id = ?2 AND status = 'pending'"
            ),
            &[Value::Text(id.to_string())],
        )?;
        Ok(!deleted.rows.is_empty())
    }

    pub fn secret(&self) -> Result<Option<SecretKey>> {
        self.db.query_one(
            tenant_sql!("SELECT secret FROM alert_secrets WHERE tenant_id = ?1"),
            &[],
        )
    }

    /// Stores `key` (base64) as the signing secret; with `replace` false, only when the tenant
    /// has none yet. Whether it was stored.
    pub fn store_secret(&self, key: &str, replace: bool) -> Result<bool> {
        let params = [Value::Text(key.to_string()), Value::Text(now_rfc3339()?)];
        let stored = if replace {
            self.db.execute(
                tenant_sql!(
                    "INSERT INTO alert_secrets (tenant_id, secret, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant_id) DO UPDATE SET secret = excluded.secret,
                        created_at = excluded.created_at
                     RETURNING tenant_id"
                ),
                &params,
            )?
        } else {
            self.db.execute(
                tenant_sql!(
                    "INSERT INTO alert_secrets (tenant_id, secret, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING RETURNING tenant_id"
                ),
                &params,
            )?
        };
        Ok(!stored.rows.is_empty())
    }

    /// The last [`LOG_LENGTH`] deliveries, newest first.
    pub fn deliveries(&self) -> Result<Vec<Delivery>> {
        self.db.query(
            tenant_sql!(
                "SELECT ",
                delivery_columns!(),
                " FROM alert_deliveries WHERE tenant_id = ?1
                 ORDER BY created_at DESC, id DESC LIMIT ?2"
            ),
            &[Value::Integer(LOG_LENGTH)],
        )
    }

    pub fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        self.db.query_one(
            tenant_sql!(
                "SELECT ",
                delivery_columns!(),
                " FROM alert_deliveries WHERE tenant_id = ?1 AND id = ?2"
            ),
            &[Value::Text(id.to_string())],
        )
    }

    /// Delivery attempts made today (UTC), tests, retries and redeliveries included: what the
    /// plan's daily limit counts.
    pub fn attempted_today(&self) -> Result<i64> {
        Ok(self
            .db
            .query_one::<Count>(
                tenant_sql!(
                    "SELECT COALESCE((SELECT n FROM alert_attempts WHERE tenant_id = ?1 AND day = ?2), 0)
                        AS n"
                ),
                &[Value::Text(utc_today())],
            )?
            .map_or(0, |c| c.0))
    }

    /// Adds `n` attempts to the count of `day` (from [`utc_today`]), in one statement; the
    /// count after.
    pub fn count_attempts(&self, day: &str, n: i64) -> Result<i64> {
        Ok(self
            .db
            .query_one::<Count>(
                tenant_sql!(
                    "INSERT INTO alert_attempts (tenant_id, day, n) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant_id, day) DO UPDATE SET n = n + excluded.n
                     RETURNING n"
                ),
                &[Value::Text(day.to_string()), Value::Integer(n)],
            )?
            .map_or(n, |c| c.0))
    }

    /// Gives back `n` of the attempts [`Self::count_attempts`] added to `day`.
    pub fn give_back_attempts(&self, day: &str, n: i64) -> Result<()> {
        self.db.execute(
            tenant_sql!("UPDATE alert_attempts SET n = n - ?3 WHERE tenant_id = ?1 AND day = ?2"),
            &[Value::Text(day.to_string()), Value::Integer(n)],
        )?;
        Ok(())
    }

    /// Queues a delivery again, with the same id (and a fresh retry schedule), held for the
    /// caller, who sends it now, until `held_until` (then any run may); `None` when there is
    /// no such delivery from the last [`KEPT_DAYS`].
    pub fn redeliver(&self, id: &str, held_until: i64) -> Result<Option<Delivery>> {
        self.db.query_one(
            tenant_sql!(
                "UPDATE alert_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?4
                 WHERE tenant_id = ?1 AND id = ?2 AND created_at >= ?3
                 RETURNING ",
                delivery_columns!()
            ),
            &[
                Value::Text(id.to_string()),
                Value::Text(kept_since()),
                Value::Integer(held_until),
            ],
        )
    }

    /// Queues a `test` delivery for `rule_id`, held for the caller, who sends it now, until
    /// `held_until` (then any run may); its id.
    pub fn queue_test(&self, rule_id: &str, held_until: i64) -> Result<String> {
        let id = format!("msg_{}", hex_id()?);
        self.db.execute(
            tenant_sql!(
                "INSERT INTO alert_deliveries (tenant_id, id, rule_id, event, created_at,
                    next_attempt_at)
                 VALUES (?1, ?2, ?3, 'test', ?4, ?5)"
            ),
            &[
                Value::Text(id.clone()),
                Value::Text(rule_id.to_string()),
                Value::Text(now_rfc3339()?),
                Value::Integer(held_until),
            ],
        )?;
        Ok(id)
    }

    pub fn db(&self) -> &TenantDb {
        &self.db
    }
}

/// Today's date, UTC (`YYYY-MM-DD`).
pub fn utc_today() -> String {
    platform::clock::timestamp(time::OffsetDateTime::now_utc())
        .chars()
        .take(10)
        .collect()
}

/// The oldest `created_at` still kept for redelivery.
fn kept_since() -> String {
    platform::clock::timestamp(time::OffsetDateTime::now_utc() - time::Duration::days(KEPT_DAYS))
}

/// 24 random hex digits, like the ids the triggers give (`'msg_' || lower(hex(randomblob(12)))`).
fn hex_id() -> Result<String> {
    Ok(platform::clock::random::<12>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A new signing secret's key: 32 random bytes, base64.
pub fn new_secret_key() -> Result<String> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.encode(platform::clock::random::<32>()?))
}
