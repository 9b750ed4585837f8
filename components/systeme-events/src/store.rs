//! Applying a verified Systeme.io callback: resolve its tenants, then apply it to each
//! tenant's lead exactly once, in one statement per tenant.
//!
//! 1. The signature was checked on the raw body by [`platform::auth::verify_systeme_callback`]
//!    before anything here runs; the body is parsed by the handler.
//! 2. Tenants: a tag event belongs to the owner of the tag's prefix; a contact event to every
//!    tenant whose prefix is among the contact's tags; a sale to every tenant with a lead
//!    linked to the buyer. Unknown prefixes are ignored.
//! 3. For each tenant, through that tenant's [`TenantDb`]: read the lead (outside any
//!    transaction), compute its next state with the domain rules, and write it with one
//!    `INSERT INTO event_applications` whose trigger (`event_applications_apply` in
//!    schema/default/triggers/) records the message as applied for this tenant, updates the
//!    lead, appends the timeline entry and counts the day, atomically. The write fails, changing nothing, when the message was already applied for
//!    this tenant (`applied_events` primary key: a redelivery is a `duplicate`) or when the lead
//!    changed since it was read (`event_seq`): then the lead is read and the event applied
//!    again. No interactive transaction: nothing holds the write lock between statements.
//!
//! Storage calls for a tag event: one read of the tenant, one of the lead, one write.

use std::cell::Cell;

use anyhow::{Result, anyhow};
use domain::events::{Contact, Sale, SystemeEvent, TagRef, replay_digest};
use domain::funnel::{Delta, Effect, LeadState, Stage, StageOrNew, TagRules};
use domain::id::LeadId;
use domain::lead::{ContactFields, erasure_key};
use domain::schema::TriggerError;
use domain::tags::Tag;
use domain::tenant::{TagPrefix, TenantId};
use platform::ApiError;
use platform::auth::SystemeCallback;
use platform::clock::{new_id, now_rfc3339};
use platform::db::{Db, FromRow, Params, Row};
use platform::scope::TenantDb;
use platform::storage_error;
use platform::tenant::{TENANT_COLUMNS, Tenant, load_tenant};
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

/// What identifies one delivery.
struct Received<'a> {
    message_id: &'a str,
    event: &'a str,
    /// [`replay_digest`] of the event name and raw body, for events recognised by content
    /// ([`SystemeEvent::dedupes_by_content`]); kept as long as the message id.
    digest: Option<String>,
    stamp: String,
    /// Set by a write that may have queued an alert no delivery run will pick up: the
    /// `alerts` component is woken once the callback is applied ([`platform::alerts`]).
    kick_alerts: Cell<bool>,
}

/// Applies a verified callback's parsed `event` exactly once per tenant: once per message id,
/// and once per content (the same body under a new message id is a duplicate).
pub fn receive(callback: &SystemeCallback<'_>, event: &SystemeEvent) -> Result<Outcome, ApiError> {
    if let SystemeEvent::Unknown(name) = event {
        eprintln!(
            "systeme event {name:?} (message {}) ignored: not handled",
            callback.message_id
        );
        return Ok(Outcome::Ignored);
    }
    let db = callback.db()?;
    let received = Received {
        message_id: &callback.message_id,
        event: event.name(),
        digest: event
            .dedupes_by_content()
            .then(|| replay_digest(event.digest_name(), callback.body)),
        stamp: now_rfc3339()?,
        kick_alerts: Cell::new(false),
    };
    if let SystemeEvent::SaleNew(sale) | SystemeEvent::SaleCanceled(sale) = event
        && !first_of_its_order(&db, sale, &received)?
    {
        return Ok(Outcome::Duplicate);
    }
    let mut outcome = Outcome::Ignored;
    for share in shares(&db, event, &received)? {
        let tdb = TenantDb::on(&db, share.tenant.id.clone());
        let applying = Applying {
            tdb: &tdb,
            tenant: &share.tenant,
            received: &received,
        };
        match applying.apply_once(event, share.lead_id.as_ref())? {
            Outcome::Applied => outcome = Outcome::Applied,
            Outcome::Duplicate if outcome == Outcome::Ignored => outcome = Outcome::Duplicate,
            _ => {}
        }
    }
    if received.kick_alerts.get() {
        platform::alerts::kick();
    }
    Ok(outcome)
}

/// Times a share is applied again because its lead changed between the read and the write.
/// Each round of racing writes on one lead lets at least one through, so a delivery retries at
/// most once per other delivery racing it; this bound is well above the concurrent deliveries
/// one contact gets, and each retry is one read and one write.
const MAX_STALE_RETRIES: usize = 32;

/// Whether a failed write lost a race: the lead changed since it was read, or a lead for the
/// same email was created meanwhile.
fn is_stale(error: &anyhow::Error) -> bool {
    let text = format!("{error:#}");
    TriggerError::in_message(&text) == Some(TriggerError::StaleLeadState)
        || storage_error::violates_unique(&text, "leads")
}

/// Whether a failed write found the message already applied for this tenant.
fn is_duplicate(error: &anyhow::Error) -> bool {
    storage_error::violates_unique(&format!("{error:#}"), "applied_events")
}

/// The tenants an event belongs to.
fn shares(db: &Db, event: &SystemeEvent, received: &Received<'_>) -> Result<Vec<Share>> {
    let prefixes: Vec<TagPrefix> = match event {
        SystemeEvent::TagAdded { tag, .. } | SystemeEvent::TagRemoved { tag, .. } => {
            tag.ours().and_then(|t| t.prefix()).into_iter().collect()
        }
        SystemeEvent::ContactCreated(c) | SystemeEvent::OptIn(c) => c.prefixes(),
        SystemeEvent::SaleNew(sale) | SystemeEvent::SaleCanceled(sale) => {
            // An order stays where it first went: the tenant whose lead recorded its sale
            // (indexed by order id), so a copy of the sale is a duplicate there and a
            // cancellation reverses it there. Otherwise the sale rules decide.
            if let Some(recorded) = order_holder(db, sale)? {
                return Ok(load_tenant(db, &recorded.tenant_id)?
                    .map(|tenant| Share {
                        tenant,
                        lead_id: Some(recorded.lead_id),
                    })
                    .into_iter()
                    .collect());
            }
            return sale_shares(db, sale, received);
        }
        SystemeEvent::Unknown(_) => Vec::new(),
    };
    let mut out = Vec::new();
    for prefix in prefixes {
        if let Some(tenant) = tenant_by_prefix(db, &prefix)? {
            out.push(Share {
                tenant,
                lead_id: None,
            });
        }
    }
    Ok(out)
}

/// Prefix → tenant, read from the database (one indexed read; the tag prefix is unique).
fn tenant_by_prefix(db: &Db, prefix: &TagPrefix) -> Result<Option<Tenant>> {
    Ok(db
        .query::<Tenant>(
            &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE tag_prefix = ?"),
            &[Value::Text(prefix.to_string())],
        )?
        .into_iter()
        .next())
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

/// A sale belongs to one tenant at most (docs/contract.md §9 "Threat model"):
/// - the tenant the operator assigned the sale's funnel to (its `funnel_ids`), on its lead
///   for the buyer;
/// - else the only tenant holding the buyer (by Systeme.io contact id, else email).
///
/// Anything else (the funnel's tenant has no lead for the buyer, or several tenants hold the
/// buyer and none was assigned the funnel) is recorded in `unattributed_sales` for the operator
/// and counted for no tenant: capturing a buyer's email must not reveal or claim a sale.
///
/// There is no index on email alone (every capture would pay a page for it), so the
/// email branch seeks each tenant's `(tenant_id, email)` entry, tenants as the outer loop: one
/// index search per tenant, for a callback that is rare next to captures.
fn sale_shares(db: &Db, sale: &Sale, callback: &Received<'_>) -> Result<Vec<Share>> {
    let holders = db.query::<SaleLead>(
        "SELECT tenant_id, id FROM leads WHERE (?1 IS NOT NULL AND systeme_contact_id = ?1)
         UNION
         SELECT l.tenant_id, l.id FROM tenants t CROSS JOIN leads l
         WHERE ?2 IS NOT NULL AND l.tenant_id = t.id AND l.email = ?2
           AND l.tenant_id NOT IN (SELECT tenant_id FROM leads WHERE ?1 IS NOT NULL AND systeme_contact_id = ?1)",
        &[
            sale.contact_id.map_or(Value::Null, Value::Integer),
            sale.email.as_ref().map_or(Value::Null, |e| Value::Text(e.to_string())),
        ],
    )?;
    let mut tenants: Vec<&SaleLead> = Vec::new();
    for holder in &holders {
        if !tenants.iter().any(|t| t.tenant_id == holder.tenant_id) {
            tenants.push(holder);
        }
    }
    let funnel_owner = match sale.funnel_id {
        Some(funnel) => db
            .query::<TenantIdRow>(
                "SELECT tenant_id FROM tenant_funnels WHERE funnel_id = ?",
                &[Value::Integer(funnel)],
            )?
            .into_iter()
            .next()
            .map(|row| row.0),
        None => None,
    };
    let chosen = match (&funnel_owner, tenants.as_slice()) {
        (Some(owner), _) => match tenants.iter().find(|t| &t.tenant_id == owner) {
            Some(holder) => Some(*holder),
            None => {
                unattributed(
                    db,
                    sale,
                    callback,
                    tenants.len(),
                    "the funnel's tenant has no lead for this buyer",
                )?;
                return Ok(Vec::new());
            }
        },
        (None, []) => return Ok(Vec::new()),
        (None, [only]) => Some(*only),
        (None, _) => {
            unattributed(
                db,
                sale,
                callback,
                tenants.len(),
                "several tenants hold this buyer and none was assigned the funnel",
            )?;
            return Ok(Vec::new());
        }
    };
    let Some(holder) = chosen else {
        return Ok(Vec::new());
    };
    Ok(load_tenant(db, &holder.tenant_id)?
        .map(|tenant| Share {
            tenant,
            lead_id: Some(holder.lead_id.clone()),
        })
        .into_iter()
        .collect())
}

/// The tenant and lead that recorded the sale of `sale`'s order, if one did.
fn order_holder(db: &Db, sale: &Sale) -> Result<Option<SaleLead>> {
    let Some(order_id) = sale.order_id else {
        return Ok(None);
    };
    Ok(db
        .query::<SaleLead>(
            "SELECT tenant_id, lead_id AS id FROM lead_events
             WHERE json_extract(detail, '$.order_id') = ? AND kind = 'sale'
             ORDER BY rowid LIMIT 1",
            &[Value::Integer(order_id)],
        )?
        .into_iter()
        .next())
}

/// Whether this message is the first to name `sale`'s order for its event (or a redelivery of
/// that first one): an order is one sale and one cancellation forever, wherever it went, even
/// after the lead that recorded it is erased. Not the first either: a sale whose order was
/// cancelled before it came, and a body already seen for the order under the other sale
/// event (a sale body sent as a cancellation). The claim is one statement, so racing copies
/// cannot both pass.
fn first_of_its_order(db: &Db, sale: &Sale, received: &Received<'_>) -> Result<bool> {
    let Some(order_id) = sale.order_id else {
        return Ok(true);
    };
    let digest = received.digest.clone().map_or(Value::Null, Value::Text);
    let params = [
        Value::Integer(order_id),
        Value::Text(received.event.to_string()),
        Value::Text(received.message_id.to_string()),
        digest,
        Value::Text(received.stamp.clone()),
    ];
    let seen = db.execute(
        "SELECT 1 FROM systeme_orders WHERE order_id = ?1 AND message_id != ?3
            AND ((?2 = 'SALE_NEW' AND event = 'SALE_CANCELED') OR digest = ?4)",
        params.get(..4).unwrap_or_default(),
    )?;
    if !seen.rows.is_empty() {
        return Ok(false);
    }
    let claimed = db.execute(
        "INSERT INTO systeme_orders (order_id, event, message_id, digest, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (order_id, event) DO UPDATE SET message_id = excluded.message_id
            WHERE systeme_orders.message_id = excluded.message_id
         RETURNING order_id",
        &params,
    )?;
    Ok(!claimed.rows.is_empty())
}

/// Records a sale no single tenant can claim, once per message id (and once per order, since
/// only the first message of an order gets here).
fn unattributed(
    db: &Db,
    sale: &Sale,
    callback: &Received<'_>,
    candidates: usize,
    reason: &str,
) -> Result<()> {
    let opt = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    db.execute(
        "INSERT INTO unattributed_sales (message_id, event, contact_id, order_id, funnel_id,
            amount_cents, currency, candidates, reason, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        &[
            Value::Text(callback.message_id.to_string()),
            Value::Text(callback.event.to_string()),
            opt(sale.contact_id),
            opt(sale.order_id),
            opt(sale.funnel_id),
            opt(sale.amount_cents),
            sale.currency.clone().map_or(Value::Null, Value::Text),
            Value::Integer(i64::try_from(candidates).unwrap_or(i64::MAX)),
            Value::Text(reason.to_string()),
            Value::Text(callback.stamp.to_string()),
        ],
    )?;
    eprintln!(
        "systeme sale (message {}) unattributed: {reason}",
        callback.message_id
    );
    Ok(())
}

/// A `tenant_id` column.
struct TenantIdRow(TenantId);

impl FromRow for TenantIdRow {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        row.parsed("tenant_id", TenantId::parse).map(Self)
    }
}

/// The columns [`LeadRecord`] reads.
macro_rules! lead_record_columns {
    () => {
        "id, stage, emails_sent, emails_opened, emails_clicked, converted, sales,
        revenue_cents, inactive, churned, tags, opted_in, event_seq"
    };
}

/// A lead's funnel state, read by column name ([`lead_record_columns!`]), or one to create.
struct LeadRecord {
    id: LeadId,
    state: LeadState,
    tags: Vec<Tag>,
    opted_in: bool,
    /// `event_seq` as read; `None` for a lead that does not exist yet.
    seq: Option<i64>,
    /// What a lead created from a Systeme.io contact starts with.
    new: Option<NewLead>,
}

/// A contact Systeme.io knows with this tenant's tags but we do not: it becomes a lead with
/// source `systeme`.
struct NewLead {
    email: String,
    name: Option<String>,
    phone: Option<String>,
    utm: [Option<String>; 3],
    page_url: Option<String>,
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
            seq: Some(row.int("event_seq")?),
            new: None,
        })
    }
}

/// A sale or cancellation already on a lead's timeline, read by column name: `kind,
/// amount_cents`.
struct RecordedSale {
    canceled: bool,
    amount_cents: Option<i64>,
}

impl FromRow for RecordedSale {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            canceled: row.text("kind")? == "sale_canceled",
            amount_cents: row.opt_int("amount_cents"),
        })
    }
}

/// One order as a lead's timeline records it.
#[derive(Default)]
struct OrderOnLead {
    sold: bool,
    canceled: bool,
    /// The amount its sale recorded.
    amount_cents: Option<i64>,
}

/// Applying one event to one tenant.
struct Applying<'a> {
    tdb: &'a TenantDb,
    tenant: &'a Tenant,
    received: &'a Received<'a>,
}

impl Applying<'_> {
    fn rules(&self) -> TagRules {
        TagRules::defaults().with_overrides(&self.tenant.settings.tag_rules)
    }

    /// Applies the event to this tenant once: read, compute, write; again when the lead
    /// changed in between.
    fn apply_once(&self, event: &SystemeEvent, sale_lead: Option<&LeadId>) -> Result<Outcome> {
        for _ in 0..MAX_STALE_RETRIES {
            match self.apply(event, sale_lead) {
                Ok(outcome) => return Ok(outcome),
                Err(e) if is_duplicate(&e) => return Ok(Outcome::Duplicate),
                Err(e) if is_stale(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(anyhow!(
            "message {} for tenant {}: the lead kept changing",
            self.received.message_id,
            self.tenant.id
        ))
    }

    /// What the event did for this tenant: `Duplicate` when it would change nothing the lead
    /// does not already hold (a tag it has, an order it recorded).
    fn apply(&self, event: &SystemeEvent, sale_lead: Option<&LeadId>) -> Result<Outcome> {
        let prefix = &self.tenant.tag_prefix;
        match event {
            SystemeEvent::ContactCreated(contact) => {
                let Some(mut lead) = self.lead_for_contact(contact)? else {
                    return Ok(Outcome::Ignored);
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
                    return Ok(Outcome::Ignored);
                };
                lead.state.opted_in();
                lead.opted_in = true;
                lead.tags = merged(&lead.tags, &contact.tags_of(prefix));
                self.save(&lead, contact.id, Delta::default(), "opt_in", json!({}))?;
            }
            SystemeEvent::TagAdded { contact, tag } => return self.apply_tag(contact, tag, true),
            SystemeEvent::TagRemoved { contact, tag } => {
                return self.apply_tag(contact, tag, false);
            }
            SystemeEvent::SaleNew(sale) => return self.apply_sale(sale, true, sale_lead),
            SystemeEvent::SaleCanceled(sale) => return self.apply_sale(sale, false, sale_lead),
            SystemeEvent::Unknown(_) => return Ok(Outcome::Ignored),
        }
        Ok(Outcome::Applied)
    }

    /// A tag of this tenant's added to (`added`) or removed from a contact.
    fn apply_tag(&self, contact: &Contact, tag: &TagRef, added: bool) -> Result<Outcome> {
        let Some(own) = tag
            .ours()
            .filter(|t| t.is_owned_by(&self.tenant.tag_prefix))
        else {
            return Ok(Outcome::Ignored);
        };
        let Some(mut lead) = self.lead_for_contact(contact)? else {
            return Ok(Outcome::Ignored);
        };
        let effect = self.rules().effect(own.suffix());
        // A change of state: adding a tag the lead holds, or removing one it does not, changes
        // nothing (a replay of either, at any age, included).
        if lead.seq.is_some() && lead.tags.contains(&own) == added {
            return Ok(Outcome::Duplicate);
        }
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
        Ok(Outcome::Applied)
    }

    /// A sale (`new`) or its cancellation, on the lead the sale was attributed to.
    fn apply_sale(&self, sale: &Sale, new: bool, sale_lead: Option<&LeadId>) -> Result<Outcome> {
        let Some(mut lead) = sale_lead
            .map(|id| self.lead_by_id(id))
            .transpose()?
            .flatten()
        else {
            return Ok(Outcome::Ignored);
        };
        let order = self.order_on_lead(&lead.id, sale)?;
        // An order is one sale and one cancellation, forever: a copy of either (any body, any
        // age) is a duplicate, and a cancelled order is never sold again.
        if order.canceled || (new && order.sold) {
            return Ok(Outcome::Duplicate);
        }
        let (delta, amount) = match (new, sale.amount_cents.or(order.amount_cents)) {
            (true, Some(amount)) => (lead.state.sale(amount), amount),
            // A cancellation of a sale the lead recorded (or, with no order id, of the amount
            // it names) reverses it.
            (false, Some(amount)) if order.sold || sale.order_id.is_none() => {
                (lead.state.sale_canceled(amount), amount)
            }
            // One that comes before its sale reverses nothing, but is recorded, so the sale
            // arriving later is not counted.
            (false, _) if sale.order_id.is_some() => (Delta::default(), 0),
            _ => return Ok(Outcome::Ignored),
        };
        let detail =
            json!({"order_id": sale.order_id, "amount_cents": amount, "currency": sale.currency});
        let kind = if new { "sale" } else { "sale_canceled" };
        self.save(&lead, sale.contact_id, delta, kind, detail)?;
        Ok(Outcome::Applied)
    }

    /// The tenant's lead for this contact (by contact id, then email); a contact Systeme.io
    /// knows with this tenant's tags but we do not becomes a lead with source `systeme`.
    fn lead_for_contact(&self, contact: &Contact) -> Result<Option<LeadRecord>> {
        let email = contact.email.as_ref().map(ToString::to_string);
        let found = self.tdb.query_one::<LeadRecord>(
            // Two index searches, the contact id's first. (One `WHERE … AND (contact = ?2
            // OR email = ?3)` makes SQLite walk every lead of the tenant.)
            tenant_sql!(
                "SELECT * FROM (SELECT ",
                lead_record_columns!(),
                ", 0 AS by_email FROM leads WHERE tenant_id = ?1 AND systeme_contact_id = ?2
                 UNION ALL SELECT ",
                lead_record_columns!(),
                ", 1 FROM leads WHERE tenant_id = ?1 AND email = ?3)
                 ORDER BY by_email, id LIMIT 1"
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
        // An erased lead stays erased: its tombstone (`erased_leads`) stops a Systeme.io event
        // for the contact from creating it again. A new form post is a new lead.
        let erased = self.tdb.execute(
            tenant_sql!("SELECT 1 FROM erased_leads WHERE tenant_id = ?1 AND email_hash = ?2"),
            &[Value::Text(erasure_key(&self.tenant.id, &email))],
        )?;
        if !erased.rows.is_empty() {
            return Ok(None);
        }
        // The form's rules, field by field: what breaks one is dropped, never the event.
        let fields = ContactFields::checked(
            contact.full_name().as_deref(),
            contact.phone.as_deref(),
            contact.source_url.as_deref(),
        );
        Ok(Some(LeadRecord {
            id: LeadId::parse(&new_id()?)?,
            state: LeadState::default(),
            tags: own_tags,
            opted_in: false,
            seq: None,
            new: Some(NewLead {
                email,
                name: fields.name,
                phone: fields.phone,
                utm: [fields.utm_source, fields.utm_medium, fields.utm_campaign],
                page_url: fields.page_url,
            }),
        }))
    }

    /// What the lead's timeline holds of `sale`'s order (nothing when it names none).
    fn order_on_lead(&self, lead: &LeadId, sale: &Sale) -> Result<OrderOnLead> {
        let Some(order_id) = sale.order_id else {
            return Ok(OrderOnLead::default());
        };
        let recorded = self.tdb.query::<RecordedSale>(
            tenant_sql!(
                "SELECT kind, json_extract(detail, '$.amount_cents') AS amount_cents FROM lead_events
                 WHERE tenant_id = ?1 AND lead_id = ?2 AND kind IN ('sale', 'sale_canceled')
                   AND json_extract(detail, '$.order_id') = ?3
                 ORDER BY id DESC"
            ),
            &[Value::Text(lead.to_string()), Value::Integer(order_id)],
        )?;
        Ok(OrderOnLead {
            sold: recorded.iter().any(|r| !r.canceled),
            canceled: recorded.iter().any(|r| r.canceled),
            amount_cents: recorded
                .iter()
                .filter(|r| !r.canceled)
                .find_map(|r| r.amount_cents),
        })
    }

    fn lead_by_id(&self, id: &LeadId) -> Result<Option<LeadRecord>> {
        self.tdb.query_one::<LeadRecord>(
            tenant_sql!(
                "SELECT ",
                lead_record_columns!(),
                " FROM leads WHERE tenant_id = ?1 AND id = ?2"
            ),
            &[Value::Text(id.to_string())],
        )
    }

    /// Writes the lead (created first when new), its timeline entry, the day's rollup and
    /// the applied message, in one statement (see the module docs).
    fn save(
        &self,
        lead: &LeadRecord,
        contact_id: Option<i64>,
        delta: Delta,
        kind: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        let s = &lead.state;
        let mut detail = detail;
        if let Some(obj) = detail.as_object_mut() {
            obj.insert("stage".into(), json!(s.stage.0.as_str()));
        }
        let new = lead.new.as_ref();
        let utm = |i: usize| new.and_then(|n| n.utm.get(i).cloned().flatten());
        let received = self.received;
        let params = Params::new()
            .set("message_id", received.message_id.to_string())
            .set("event", received.event.to_string())
            .set("lead_id", lead.id.to_string())
            .set("expected_seq", lead.seq)
            .set("stage", s.stage.0.as_str())
            .set("emails_sent", s.emails_sent)
            .set("emails_opened", s.emails_opened)
            .set("emails_clicked", s.emails_clicked)
            .set("converted", s.converted)
            .set("sales", s.sales)
            .set("revenue_cents", s.revenue_cents)
            .set("inactive", s.inactive)
            .set("churned", s.churned)
            .set("tags", serde_json::to_string(&lead.tags)?)
            .set("opted_in", lead.opted_in)
            .set("systeme_contact_id", contact_id)
            .set("email", new.map(|n| n.email.clone()))
            .set("name", new.and_then(|n| n.name.clone()))
            .set("phone", new.and_then(|n| n.phone.clone()))
            .set("utm_source", utm(0))
            .set("utm_medium", utm(1))
            .set("utm_campaign", utm(2))
            .set("page_url", new.and_then(|n| n.page_url.clone()))
            .set("kind", kind)
            .set("detail", detail.to_string())
            .set("day", received.stamp.chars().take(10).collect::<String>())
            .set("add_emails_sent", delta.emails_sent)
            .set("add_emails_opened", delta.emails_opened)
            .set("add_emails_clicked", delta.emails_clicked)
            .set("add_conversions", delta.conversions)
            .set("add_revenue_cents", delta.revenue_cents)
            .set("at", received.stamp.to_string())
            .set("digest", received.digest.clone())
            .set("now", received.stamp.to_string())
            .set("alert_events", r#"["lead.stage", "lead.opened", "sale"]"#);
        let written = self.tdb.execute_named(
            tenant_sql!(
                "INSERT INTO event_applications (tenant_id, message_id, event, lead_id,
                    expected_seq, stage, emails_sent, emails_opened, emails_clicked, converted,
                    sales, revenue_cents, inactive, churned, tags, opted_in, systeme_contact_id,
                    email, name, phone, utm_source, utm_medium, utm_campaign, page_url, kind,
                    detail, day, add_emails_sent, add_emails_opened, add_emails_clicked,
                    add_conversions, add_revenue_cents, at, digest)
                 VALUES (?1, :message_id, :event, :lead_id,
                    :expected_seq, :stage, :emails_sent, :emails_opened, :emails_clicked, :converted,
                    :sales, :revenue_cents, :inactive, :churned, :tags, :opted_in, :systeme_contact_id,
                    :email, :name, :phone, :utm_source, :utm_medium, :utm_campaign, :page_url, :kind,
                    :detail, :day, :add_emails_sent, :add_emails_opened, :add_emails_clicked,
                    :add_conversions, :add_revenue_cents, :at, :digest)
                 RETURNING ",
                platform::kick_alerts_column!()
            ),
            &params,
        )?;
        if written.rows.first().and_then(|r| r.get::<i64>(0)) == Some(1) {
            self.received.kick_alerts.set(true);
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
