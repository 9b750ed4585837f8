//! Applying a verified Systeme.io callback: deduplicate, resolve tenants by tag prefix, apply.
//!
//! 1. The signature was checked on the raw body by [`platform::auth::verify_systeme_callback`]
//!    before anything here runs; the body is parsed by the handler.
//! 2. [`receive`]: a message id already applied is acknowledged and changes nothing (a global
//!    key-value entry answers redeliveries fast; the `systeme_messages` row, written in the same
//!    transaction as the changes, is the truth).
//! 3. Tenants: a tag event belongs to the owner of the tag's prefix; a contact event to every
//!    tenant whose prefix is among the contact's tags; a sale to every tenant with a lead
//!    linked to the buyer. Unknown prefixes are ignored.
//! 4. Each tenant's lead is changed through [`TenantDb`] with only that tenant's tags and data.

use anyhow::{Context, Result};
use domain::events::{Contact, Sale, SystemeEvent, TagRef, utm_from_url};
use domain::funnel::{Delta, Effect, LeadState, Stage, StageOrNew, TagRules};
use domain::id::LeadId;
use domain::tags::Tag;
use domain::tenant::{TagPrefix, TenantId};
use platform::ApiError;
use platform::auth::SystemeCallback;
use platform::clock::{new_id, now_rfc3339};
use platform::db::{Db, FromRow, Row};
use platform::kv::{GlobalKey, GlobalKv};
use platform::scope::TenantDb;
use platform::tenant::{Tenant, load_tenant};
use platform::tenant_sql;
use serde_json::json;
use spin_sdk::sqlite::Value;

/// What happened to a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Applied to the lead of at least one tenant.
    Applied,
    /// This message id was applied before; nothing changed.
    Duplicate,
    /// Acknowledged, nothing to do (unknown event, no known tenant, no matching lead).
    Ignored,
}

/// One tenant's share of an event.
struct Share {
    tenant: Tenant,
    /// For sales: the tenant's lead already matched.
    lead_id: Option<LeadId>,
}

/// Applies a verified callback's parsed `event` exactly once.
pub fn receive(callback: &SystemeCallback<'_>, event: &SystemeEvent) -> Result<Outcome, ApiError> {
    let kv = callback.kv()?;
    let seen = GlobalKey::SystemeMessage(&callback.message_id);
    if kv.get(&seen)?.is_some() {
        return Ok(Outcome::Duplicate);
    }
    if let SystemeEvent::Unknown(name) = event {
        eprintln!(
            "systeme event {name:?} (message {}) ignored: not handled",
            callback.message_id
        );
        return Ok(Outcome::Ignored);
    }
    let db = callback.db()?;
    let shares = shares(&db, &kv, event)?;
    if shares.is_empty() {
        return Ok(Outcome::Ignored);
    }
    db.execute("BEGIN IMMEDIATE", &[])?;
    let applied = apply_all(&db, &callback.message_id, event, &shares);
    match applied {
        Ok(Some(applied)) => {
            db.execute("COMMIT", &[])?;
            if let Err(e) = kv.set(&seen, b"1") {
                // The database row still deduplicates; only the fast path is lost.
                eprintln!("caching systeme message {}: {e:#}", callback.message_id);
            }
            Ok(if applied {
                Outcome::Applied
            } else {
                Outcome::Ignored
            })
        }
        Ok(None) => {
            let _ = db.execute("ROLLBACK", &[]);
            Ok(Outcome::Duplicate)
        }
        Err(e) => {
            let _ = db.execute("ROLLBACK", &[]);
            Err(e.into())
        }
    }
}

/// `None` when the message id was already recorded (a racing redelivery).
fn apply_all(
    db: &Db,
    message_id: &str,
    event: &SystemeEvent,
    shares: &[Share],
) -> Result<Option<bool>> {
    let stamp = now_rfc3339()?;
    let recorded = db.execute(
        "INSERT INTO systeme_messages (message_id, event, received_at) VALUES (?, ?, ?)
         ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        &[
            Value::Text(message_id.to_string()),
            Value::Text(event.name().to_string()),
            Value::Text(stamp.clone()),
        ],
    )?;
    if recorded.rows.is_empty() {
        return Ok(None);
    }
    let mut applied = false;
    for share in shares {
        let tdb = TenantDb::on(db, share.tenant.id.clone());
        let ctx = Applying {
            tdb: &tdb,
            tenant: &share.tenant,
            message_id,
            stamp: &stamp,
        };
        applied |= ctx.apply(event, share.lead_id.as_ref())?;
    }
    Ok(Some(applied))
}

/// The tenants an event belongs to.
fn shares(db: &Db, kv: &GlobalKv, event: &SystemeEvent) -> Result<Vec<Share>> {
    let prefixes: Vec<TagPrefix> = match event {
        SystemeEvent::TagAdded { tag, .. } | SystemeEvent::TagRemoved { tag, .. } => {
            tag.ours().and_then(|t| t.prefix()).into_iter().collect()
        }
        SystemeEvent::ContactCreated(c) | SystemeEvent::OptIn(c) => c.prefixes(),
        SystemeEvent::SaleNew(sale) | SystemeEvent::SaleCanceled(sale) => {
            return sale_shares(db, sale);
        }
        SystemeEvent::Unknown(_) => Vec::new(),
    };
    let mut out = Vec::new();
    for prefix in prefixes {
        if let Some(tenant) = tenant_by_prefix(db, kv, &prefix)? {
            out.push(Share {
                tenant,
                lead_id: None,
            });
        }
    }
    Ok(out)
}

/// Prefix → tenant: the global key-value map written at signup, with the database as the
/// fallback (and the map refilled) if the entry is missing.
fn tenant_by_prefix(db: &Db, kv: &GlobalKv, prefix: &TagPrefix) -> Result<Option<Tenant>> {
    let key = GlobalKey::TenantByPrefix(prefix);
    let id = match kv.get(&key)? {
        Some(bytes) => Some(String::from_utf8(bytes).context("prefix map entry is not UTF-8")?),
        None => {
            let found = db.query::<TenantIdRow>(
                "SELECT id AS tenant_id FROM tenants WHERE tag_prefix = ?",
                &[Value::Text(prefix.to_string())],
            )?;
            let id = found.into_iter().next().map(|r| r.0.to_string());
            if let Some(id) = &id {
                kv.set(&key, id.as_bytes())?;
            }
            id
        }
    };
    let Some(id) = id else {
        return Ok(None);
    };
    load_tenant(&TenantId::parse(&id)?, Some(db))
}

/// A `tenant_id` column.
struct TenantIdRow(TenantId);

impl FromRow for TenantIdRow {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        row.parsed("tenant_id", TenantId::parse).map(Self)
    }
}

/// A lead of some tenant that a sale names.
struct SaleLead {
    tenant_id: TenantId,
    lead_id: LeadId,
}

impl FromRow for SaleLead {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            tenant_id: row.parsed("tenant_id", TenantId::parse)?,
            lead_id: row.parsed("id", LeadId::parse)?,
        })
    }
}

/// A sale belongs to every tenant with a lead linked to the buyer (contact id, else email).
fn sale_shares(db: &Db, sale: &Sale) -> Result<Vec<Share>> {
    let found = db.query::<SaleLead>(
        "SELECT tenant_id, id FROM leads WHERE (?1 IS NOT NULL AND systeme_contact_id = ?1)
         UNION
         SELECT tenant_id, id FROM leads WHERE ?2 IS NOT NULL AND email = ?2
           AND tenant_id NOT IN (SELECT tenant_id FROM leads WHERE ?1 IS NOT NULL AND systeme_contact_id = ?1)",
        &[
            sale.contact_id.map_or(Value::Null, Value::Integer),
            sale.email.as_ref().map_or(Value::Null, |e| Value::Text(e.to_string())),
        ],
    )?;
    let mut out: Vec<Share> = Vec::new();
    for SaleLead { tenant_id, lead_id } in found {
        if out.iter().any(|s| s.tenant.id == tenant_id) {
            continue;
        }
        if let Some(tenant) = load_tenant(&tenant_id, Some(db))? {
            out.push(Share {
                tenant,
                lead_id: Some(lead_id),
            });
        }
    }
    Ok(out)
}

/// A lead's funnel state, read by column name: `id, stage, emails_sent,
/// emails_opened, emails_clicked, converted, sales, revenue_cents, inactive, churned, tags,
/// opted_in`.
struct LeadRecord {
    id: LeadId,
    state: LeadState,
    tags: Vec<Tag>,
    opted_in: bool,
}

impl FromRow for LeadRecord {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            id: row.parsed("id", LeadId::parse)?,
            state: LeadState {
                stage: StageOrNew(row.parsed("stage", |s| Stage::parse(s).ok_or("unknown stage"))?),
                emails_sent: row.int("emails_sent")?,
                emails_opened: row.int("emails_opened")?,
                emails_clicked: row.int("emails_clicked")?,
                converted: row.flag("converted")?,
                sales: row.int("sales")?,
                revenue_cents: row.int("revenue_cents")?,
                inactive: row.flag("inactive")?,
                churned: row.flag("churned")?,
            },
            tags: row.json("tags")?,
            opted_in: row.flag("opted_in")?,
        })
    }
}

/// Applying one event to one tenant.
struct Applying<'a> {
    tdb: &'a TenantDb,
    tenant: &'a Tenant,
    message_id: &'a str,
    stamp: &'a str,
}

impl Applying<'_> {
    fn rules(&self) -> TagRules {
        TagRules::defaults().with_overrides(&self.tenant.settings.tag_rules)
    }

    /// Whether anything changed for this tenant.
    fn apply(&self, event: &SystemeEvent, sale_lead: Option<&LeadId>) -> Result<bool> {
        let prefix = &self.tenant.tag_prefix;
        match event {
            SystemeEvent::ContactCreated(contact) => {
                let Some(mut lead) = self.lead_for_contact(contact)? else {
                    return Ok(false);
                };
                lead.tags = merged(&lead.tags, &contact.tags_of(prefix));
                self.save(
                    &lead,
                    contact.id,
                    Delta::default(),
                    "contact_created",
                    json!({}),
                )?;
            }
            SystemeEvent::OptIn(contact) => {
                let Some(mut lead) = self.lead_for_contact(contact)? else {
                    return Ok(false);
                };
                lead.state.opted_in();
                lead.opted_in = true;
                lead.tags = merged(&lead.tags, &contact.tags_of(prefix));
                self.save(&lead, contact.id, Delta::default(), "opt_in", json!({}))?;
            }
            SystemeEvent::TagAdded { contact, tag } | SystemeEvent::TagRemoved { contact, tag } => {
                let Some(own) = tag.ours().filter(|t| t.is_owned_by(prefix)) else {
                    return Ok(false);
                };
                let Some(mut lead) = self.lead_for_contact(contact)? else {
                    return Ok(false);
                };
                let effect = self.rules().effect(own.suffix());
                let added = matches!(event, SystemeEvent::TagAdded { .. });
                let delta = if added {
                    lead.tags = merged(&lead.tags, std::slice::from_ref(&own));
                    effect.map(|e| lead.state.tag_added(e)).unwrap_or_default()
                } else {
                    lead.tags.retain(|t| *t != own);
                    if let Some(e) = effect {
                        lead.state.tag_removed(e);
                    }
                    Delta::default()
                };
                let kind = if added { "tag_added" } else { "tag_removed" };
                self.save(&lead, contact.id, delta, kind, tag_detail(tag, effect))?;
            }
            SystemeEvent::SaleNew(sale) | SystemeEvent::SaleCanceled(sale) => {
                let Some(mut lead) = sale_lead
                    .map(|id| self.lead_by_id(id))
                    .transpose()?
                    .flatten()
                else {
                    return Ok(false);
                };
                let new = matches!(event, SystemeEvent::SaleNew(_));
                let delta = if new {
                    lead.state.sale(sale.amount_cents)
                } else {
                    lead.state.sale_canceled(sale.amount_cents)
                };
                let detail = json!({"order_id": sale.order_id, "amount_cents": sale.amount_cents, "currency": sale.currency});
                let kind = if new { "sale" } else { "sale_canceled" };
                self.save(&lead, sale.contact_id, delta, kind, detail)?;
            }
            SystemeEvent::Unknown(_) => return Ok(false),
        }
        Ok(true)
    }

    /// The tenant's lead for this contact (by contact id, then email); a contact Systeme.io
    /// knows with this tenant's tags but we do not becomes a lead with source `systeme`.
    fn lead_for_contact(&self, contact: &Contact) -> Result<Option<LeadRecord>> {
        let email = contact.email.as_ref().map(ToString::to_string);
        let found = self.tdb.query_one::<LeadRecord>(
            tenant_sql!(
                "SELECT id, stage, emails_sent, emails_opened, emails_clicked, converted, sales, revenue_cents, inactive, churned, tags, opted_in
                 FROM leads WHERE tenant_id = ?1 AND (systeme_contact_id = ?2 OR email = ?3)
                 ORDER BY systeme_contact_id IS ?2 DESC LIMIT 1"
            ),
            &[
                contact.id.map_or(Value::Null, Value::Integer),
                email.clone().map_or(Value::Null, Value::Text),
            ],
        )?;
        if found.is_some() {
            return Ok(found);
        }
        let own_tags = contact.tags_of(&self.tenant.tag_prefix);
        let Some(email) = email.filter(|_| !own_tags.is_empty()) else {
            return Ok(None);
        };
        let [source, medium, campaign] = contact
            .source_url
            .as_deref()
            .map(utm_from_url)
            .unwrap_or_default();
        let created = self.tdb.query_one::<LeadRecord>(
            tenant_sql!(
                "INSERT INTO leads (tenant_id, id, email, name, phone, form, utm_source, utm_medium, utm_campaign,
                    page_url, tags, source, sync_status, systeme_contact_id, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'systeme', ?6, ?7, ?8, ?9, ?10, 'systeme', 'synced', ?11, ?12, ?12)
                 RETURNING id, stage, emails_sent, emails_opened, emails_clicked, converted, sales, revenue_cents, inactive, churned, tags, opted_in"
            ),
            &[
                Value::Text(new_id()?),
                Value::Text(email),
                contact.full_name().map_or(Value::Null, Value::Text),
                contact.phone.clone().map_or(Value::Null, Value::Text),
                source.1.map_or(Value::Null, Value::Text),
                medium.1.map_or(Value::Null, Value::Text),
                campaign.1.map_or(Value::Null, Value::Text),
                contact.source_url.clone().map_or(Value::Null, Value::Text),
                Value::Text(serde_json::to_string(&own_tags)?),
                contact.id.map_or(Value::Null, Value::Integer),
                Value::Text(self.stamp.to_string()),
            ],
        )?;
        // The transaction's write lock is held, so the SELECT above cannot have been raced:
        // the insert reads the new row back itself.
        Ok(created)
    }

    fn lead_by_id(&self, id: &LeadId) -> Result<Option<LeadRecord>> {
        self.tdb.query_one::<LeadRecord>(
            tenant_sql!(
                "SELECT id, stage, emails_sent, emails_opened, emails_clicked, converted, sales, revenue_cents, inactive, churned, tags, opted_in
                 FROM leads WHERE tenant_id = ?1 AND id = ?2"
            ),
            &[Value::Text(id.to_string())],
        )
    }

    /// Writes the lead, its timeline entry and the day's rollup.
    fn save(
        &self,
        lead: &LeadRecord,
        contact_id: Option<i64>,
        delta: Delta,
        kind: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        let s = &lead.state;
        self.tdb.execute(
            tenant_sql!(
                "UPDATE leads SET stage = ?3, emails_sent = ?4, emails_opened = ?5, emails_clicked = ?6,
                    converted = ?7, sales = ?8, revenue_cents = ?9, inactive = ?10, churned = ?11, tags = ?12,
                    opted_in = ?13, systeme_contact_id = COALESCE(systeme_contact_id, ?14), updated_at = ?15
                 WHERE tenant_id = ?1 AND id = ?2"
            ),
            &[
                Value::Text(lead.id.to_string()),
                Value::Text(s.stage.0.as_str().into()),
                Value::Integer(s.emails_sent),
                Value::Integer(s.emails_opened),
                Value::Integer(s.emails_clicked),
                Value::Integer(i64::from(s.converted)),
                Value::Integer(s.sales),
                Value::Integer(s.revenue_cents),
                Value::Integer(i64::from(s.inactive)),
                Value::Integer(i64::from(s.churned)),
                Value::Text(serde_json::to_string(&lead.tags)?),
                Value::Integer(i64::from(lead.opted_in)),
                contact_id.map_or(Value::Null, Value::Integer),
                Value::Text(self.stamp.to_string()),
            ],
        )?;
        let mut detail = detail;
        if let Some(obj) = detail.as_object_mut() {
            obj.insert("stage".into(), json!(s.stage.0.as_str()));
        }
        self.tdb.execute(
            tenant_sql!(
                "INSERT INTO lead_events (tenant_id, lead_id, kind, detail, message_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ),
            &[
                Value::Text(lead.id.to_string()),
                Value::Text(kind.to_string()),
                Value::Text(detail.to_string()),
                Value::Text(self.message_id.to_string()),
                Value::Text(self.stamp.to_string()),
            ],
        )?;
        if !delta.is_empty() {
            self.tdb.execute(
                tenant_sql!(
                    "INSERT INTO daily_rollups (tenant_id, day, emails_sent, emails_opened, emails_clicked, conversions, revenue_cents)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (tenant_id, day) DO UPDATE SET
                        emails_sent = emails_sent + excluded.emails_sent,
                        emails_opened = emails_opened + excluded.emails_opened,
                        emails_clicked = emails_clicked + excluded.emails_clicked,
                        conversions = conversions + excluded.conversions,
                        revenue_cents = revenue_cents + excluded.revenue_cents"
                ),
                &[
                    Value::Text(self.stamp.chars().take(10).collect()),
                    Value::Integer(delta.emails_sent),
                    Value::Integer(delta.emails_opened),
                    Value::Integer(delta.emails_clicked),
                    Value::Integer(delta.conversions),
                    Value::Integer(delta.revenue_cents),
                ],
            )?;
        }
        Ok(())
    }
}

fn merged(existing: &[Tag], more: &[Tag]) -> Vec<Tag> {
    let mut tags: Vec<Tag> = existing.iter().chain(more).cloned().collect();
    tags.sort();
    tags.dedup();
    tags
}

fn tag_detail(tag: &TagRef, effect: Option<Effect>) -> serde_json::Value {
    json!({"tag": tag.name, "effect": effect})
}
