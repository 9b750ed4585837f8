//! Systeme.io webhook events (Settings → Webhooks), parsed from their raw JSON bodies.
//!
//! The event type travels in `x-webhook-event`. Contact events carry `contact` (sometimes
//! nested twice: `contact.contact`), tag events also `tag`; sales carry `customer`, `order` and
//! `pricePlan`. Examples: `tests/fixtures/systeme/`. The signature is checked on the raw
//! bytes before this module sees them.
//!
//! Parsing is tolerant where Systeme.io's shapes are not pinned down: unknown fields are
//! ignored, and a `SALE_CANCELED` may come wrapped in a `sale` object or without any amount
//! (no real one has been seen), in which case it names the sale by order id only.

use serde_json::Value;
use thiserror::Error;

use crate::tags::Tag;
use crate::tenant::{EmailAddress, TagPrefix};

/// A tag as Systeme.io sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRef {
    pub id: Option<i64>,
    pub name: String,
}

impl TagRef {
    /// The tag parsed as one of ours (prefixed); `None` for anybody else's tags.
    pub fn ours(&self) -> Option<Tag> {
        Tag::parse(&self.name)
    }
}

/// The contact part of an event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    pub id: Option<i64>,
    pub email: Option<EmailAddress>,
    pub first_name: Option<String>,
    pub surname: Option<String>,
    pub phone: Option<String>,
    pub source_url: Option<String>,
    pub tags: Vec<TagRef>,
}

impl Contact {
    /// The distinct owners of the contact's (valid, prefixed) tags.
    pub fn prefixes(&self) -> Vec<TagPrefix> {
        let mut out: Vec<TagPrefix> = Vec::new();
        for tag in self.tags.iter().filter_map(TagRef::ours) {
            if let Some(p) = tag.prefix()
                && !out.contains(&p)
            {
                out.push(p);
            }
        }
        out
    }

    /// The contact's tags that `owner` owns: all that one tenant may see.
    pub fn tags_of(&self, owner: &TagPrefix) -> Vec<Tag> {
        let mut tags: Vec<Tag> = self
            .tags
            .iter()
            .filter_map(TagRef::ours)
            .filter(|t| t.is_owned_by(owner))
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }

    /// `first_name` and `surname` joined, when either is known.
    pub fn full_name(&self) -> Option<String> {
        let parts: Vec<&str> = [self.first_name.as_deref(), self.surname.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// A sale's buyer and amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    pub contact_id: Option<i64>,
    pub email: Option<EmailAddress>,
    pub order_id: Option<i64>,
    /// Never negative. Always present on `SALE_NEW`; a cancellation may lack it, and then
    /// reverses the amount recorded for its `order_id`.
    pub amount_cents: Option<i64>,
    pub currency: Option<String>,
    /// The Systeme.io funnel the sale was made in (`funnelStep.funnel.id`), if the body says.
    pub funnel_id: Option<i64>,
}

/// An event, by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemeEvent {
    ContactCreated(Contact),
    OptIn(Contact),
    TagAdded {
        contact: Contact,
        tag: TagRef,
    },
    TagRemoved {
        contact: Contact,
        tag: TagRef,
    },
    SaleNew(Sale),
    SaleCanceled(Sale),
    /// Acknowledged and ignored.
    Unknown(String),
}

impl SystemeEvent {
    /// The `x-webhook-event` name this was parsed from.
    pub fn name(&self) -> &str {
        match self {
            Self::ContactCreated(_) => "CONTACT_CREATED",
            Self::OptIn(_) => "CONTACT_OPT_IN",
            Self::TagAdded { .. } => "CONTACT_TAG_ADDED",
            Self::TagRemoved { .. } => "CONTACT_TAG_REMOVED",
            Self::SaleNew(_) => "SALE_NEW",
            Self::SaleCanceled(_) => "SALE_CANCELED",
            Self::Unknown(name) => name,
        }
    }
}

/// Why a (correctly signed) body could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EventError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the event lacks {0}")]
    Missing(&'static str),
    /// The body says it is another event than its (unsigned) `x-webhook-event` name: only the
    /// body is signed, so such a callback is acknowledged and applies nothing.
    #[error("the body does not agree with its event name: {0}")]
    Mismatch(&'static str),
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn int(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.round() as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn email(v: &Value, key: &str) -> Option<EmailAddress> {
    text(v, key).and_then(|e| EmailAddress::parse("email", &e).ok())
}

fn tag_ref(v: &Value) -> Option<TagRef> {
    Some(TagRef {
        id: int(v, "id"),
        name: text(v, "name")?,
    })
}

fn contact(body: &Value) -> Result<Contact, EventError> {
    let mut c = body.get("contact").ok_or(EventError::Missing("contact"))?;
    // The documented form nests the contact twice.
    if let Some(inner) = c.get("contact").filter(|i| i.is_object()) {
        c = inner;
    }
    if !c.is_object() {
        return Err(EventError::Missing("contact"));
    }
    let field = |slug: &str| {
        c.get("fields")?
            .as_array()?
            .iter()
            .find(|f| f.get("slug").and_then(Value::as_str) == Some(slug))
            .and_then(|f| text(f, "value"))
    };
    Ok(Contact {
        id: int(c, "id"),
        email: email(c, "email"),
        first_name: field("first_name"),
        surname: field("surname"),
        phone: field("phone_number"),
        source_url: text(c, "sourceURL"),
        tags: c
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| tags.iter().filter_map(tag_ref).collect())
            .unwrap_or_default(),
    })
}

fn sale(body: &Value) -> Result<Sale, EventError> {
    // A cancellation may come wrapped: `{"sale": {"customer": …, "order": …}}`.
    let body = body
        .get("sale")
        .filter(|s| s.is_object() && body.get("customer").is_none())
        .unwrap_or(body);
    let (contact_id, buyer_email) = match body.get("customer").filter(|c| c.is_object()) {
        Some(customer) => (int(customer, "contactId"), email(customer, "email")),
        // No customer: the contact, in either nesting, names the buyer.
        None => {
            let c = contact(body).map_err(|_| EventError::Missing("customer"))?;
            (c.id, c.email)
        }
    };
    let order = body.get("order").unwrap_or(&Value::Null);
    let plan = body.get("pricePlan").unwrap_or(&Value::Null);
    Ok(Sale {
        contact_id,
        email: buyer_email,
        order_id: int(order, "id").or_else(|| int(body, "orderId")),
        amount_cents: int(order, "totalPrice")
            .or_else(|| int(plan, "amount"))
            .map(|a| a.max(0)),
        currency: text(plan, "currency"),
        funnel_id: body
            .get("funnelStep")
            .and_then(|step| step.get("funnel"))
            .and_then(|funnel| int(funnel, "id")),
    })
}

/// What identifies a callback's content, whatever its message id: a digest of the event name
/// and the exact raw body. The same signed body replayed under a fresh
/// `x-webhook-message-id` has the same digest and is applied once.
pub fn replay_digest(event: &str, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(event.trim().as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hex::encode(hasher.finalize())
}

impl TagRef {
    /// Whether `contact` lists this tag (by id when both sides carry one, else by name).
    fn listed_on(&self, contact: &Contact) -> bool {
        contact.tags.iter().any(|t| match (t.id, self.id) {
            (Some(a), Some(b)) => a == b,
            _ => t.name == self.name,
        })
    }
}

/// Only the body is signed, not the `x-webhook-event` header, so the body must agree with the
/// name wherever it can say so: a tag-added body lists its tag on the contact and a
/// tag-removed body does not; a contact or opt-in body carries no `tag` and no order; a sale
/// body carries no `tag`. (A new sale and a cancellation have the same shape; what keeps a
/// sale body replayed as a cancellation harmless is that an order is cancelled once and a
/// cancellation is final, see docs/contract.md §9 "Threat model".)
fn agrees(event: &SystemeEvent, json: &Value) -> Result<(), EventError> {
    let has = |key: &str| json.get(key).is_some_and(|v| !v.is_null());
    match event {
        SystemeEvent::TagAdded { contact, tag } if !tag.listed_on(contact) => Err(
            EventError::Mismatch("a tag-added body lists the tag on the contact"),
        ),
        SystemeEvent::TagRemoved { contact, tag } if tag.listed_on(contact) => Err(
            EventError::Mismatch("a tag-removed body does not list the tag on the contact"),
        ),
        SystemeEvent::ContactCreated(_) | SystemeEvent::OptIn(_)
            if has("tag") || has("order") || has("customer") =>
        {
            Err(EventError::Mismatch(
                "a contact or opt-in body carries no tag and no order",
            ))
        }
        SystemeEvent::SaleNew(_) | SystemeEvent::SaleCanceled(_) if has("tag") => {
            Err(EventError::Mismatch("a sale body carries no tag"))
        }
        _ => Ok(()),
    }
}

impl SystemeEvent {
    /// Whether a replay of the same body under a new message id is recognised by its content
    /// ([`replay_digest`]). Tag events are not: they apply as changes of state (a tag added to
    /// a lead that holds it changes nothing), so a tag removed and then added back counts
    /// again, while a replay of either changes nothing.
    pub fn dedupes_by_content(&self) -> bool {
        !matches!(self, Self::TagAdded { .. } | Self::TagRemoved { .. })
    }

    /// The name a content digest ([`replay_digest`]) is taken under. A new sale and a
    /// cancellation have the same shape, so they share one: a captured sale body replayed as
    /// `SALE_CANCELED` is a copy of what was applied, not a cancellation.
    pub fn digest_name(&self) -> &str {
        match self {
            Self::SaleNew(_) | Self::SaleCanceled(_) => "SALE",
            other => other.name(),
        }
    }

    /// Parses a body for the event named `event` (the `x-webhook-event` header); a body that
    /// contradicts the name is [`EventError::Mismatch`].
    pub fn parse(event: &str, body: &[u8]) -> Result<Self, EventError> {
        let json: Value =
            serde_json::from_slice(body).map_err(|e| EventError::NotJson(e.to_string()))?;
        let parsed = Self::parse_json(event, &json)?;
        agrees(&parsed, &json)?;
        Ok(parsed)
    }

    fn parse_json(event: &str, json: &Value) -> Result<Self, EventError> {
        let tag = || {
            json.get("tag")
                .and_then(tag_ref)
                .ok_or(EventError::Missing("tag"))
        };
        Ok(match event.trim() {
            "CONTACT_CREATED" => Self::ContactCreated(contact(json)?),
            "CONTACT_OPT_IN" => Self::OptIn(contact(json)?),
            "CONTACT_TAG_ADDED" => Self::TagAdded {
                contact: contact(json)?,
                tag: tag()?,
            },
            "CONTACT_TAG_REMOVED" => Self::TagRemoved {
                contact: contact(json)?,
                tag: tag()?,
            },
            "SALE_NEW" => {
                let sale = sale(json)?;
                if sale.amount_cents.is_none() {
                    return Err(EventError::Missing("order.totalPrice"));
                }
                Self::SaleNew(sale)
            }
            "SALE_CANCELED" => Self::SaleCanceled(sale(json)?),
            other => Self::Unknown(other.chars().take(64).collect()),
        })
    }
}

/// UTM parameters found in a URL's query (Systeme.io's `sourceURL`).
pub fn utm_from_url(url: &str) -> [(String, Option<String>); 3] {
    let pairs: Vec<(String, String)> = url::Url::parse(url)
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    ["utm_source", "utm_medium", "utm_campaign"].map(|k| {
        (
            k.to_string(),
            pairs
                .iter()
                .find(|(key, v)| key == k && !v.is_empty())
                .map(|(_, v)| v.chars().take(200).collect()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATED: &str = r#"{"contact":{"id":480113,"email":"trader1@example.com","sourceURL":"https:\/\/lp.example.com\/forex?utm_source=facebook","fields":[{"slug":"first_name","value":"Ana"},{"slug":"surname","value":"Silva"}],"tags":[{"id":9101,"name":"ib-a7x3k2m1-demo-request"},{"id":9102,"name":"ib-a7x3k2m1-forex-ib"},{"id":9201,"name":"ib-b9z5n4p8-demo-request"},{"id":1,"name":"somebody-else"}]}}"#;

    #[test]
    fn a_contact_event_knows_every_owner_and_each_owners_tags() {
        let SystemeEvent::ContactCreated(c) =
            SystemeEvent::parse("CONTACT_CREATED", CREATED.as_bytes()).unwrap()
        else {
            panic!("wrong kind")
        };
        assert_eq!(c.id, Some(480_113));
        assert_eq!(
            c.email.as_ref().map(AsRef::as_ref),
            Some("trader1@example.com")
        );
        assert_eq!(c.full_name().as_deref(), Some("Ana Silva"));
        assert_eq!(
            c.source_url.as_deref(),
            Some("https://lp.example.com/forex?utm_source=facebook")
        );
        let a = TagPrefix::parse("ib-a7x3k2m1-").unwrap();
        let b = TagPrefix::parse("ib-b9z5n4p8-").unwrap();
        assert_eq!(c.prefixes(), vec![a.clone(), b.clone()]);
        assert_eq!(c.tags_of(&a).len(), 2);
        assert_eq!(
            c.tags_of(&b)
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<&str>>(),
            ["ib-b9z5n4p8-demo-request"]
        );
    }

    #[test]
    fn the_double_nested_contact_form_parses_the_same() {
        let body = r#"{"contact":{"contact":{"id":7,"email":"x@y.co","tags":[{"id":1,"name":"ib-a7x3k2m1-converted"}]}},"tag":{"id":1,"name":"ib-a7x3k2m1-converted"}}"#;
        let SystemeEvent::TagAdded { contact, tag } =
            SystemeEvent::parse("CONTACT_TAG_ADDED", body.as_bytes()).unwrap()
        else {
            panic!("wrong kind")
        };
        assert_eq!(contact.id, Some(7));
        assert_eq!(tag.ours().unwrap().suffix(), "converted");
    }

    #[test]
    fn sales_read_the_buyer_and_the_amount_in_cents() {
        let body = r#"{"customer":{"contactId":480113,"email":"trader1@example.com"},"order":{"id":77001,"totalPrice":19900},"pricePlan":{"amount":19900,"currency":"eur"}}"#;
        let SystemeEvent::SaleNew(s) = SystemeEvent::parse("SALE_NEW", body.as_bytes()).unwrap()
        else {
            panic!("wrong kind")
        };
        assert_eq!(
            (s.contact_id, s.order_id, s.amount_cents),
            (Some(480_113), Some(77_001), Some(19_900))
        );
    }

    fn canceled(body: &str) -> Sale {
        match SystemeEvent::parse("SALE_CANCELED", body.as_bytes()) {
            Ok(SystemeEvent::SaleCanceled(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_cancellation_without_an_amount_names_its_sale_by_order_id() {
        let s = canceled(
            r#"{"customer":{"contactId":480113,"email":"trader1@example.com"},"order":{"id":77001}}"#,
        );
        assert_eq!(
            (s.contact_id, s.order_id, s.amount_cents),
            (Some(480_113), Some(77_001), None)
        );
    }

    #[test]
    fn a_cancellation_wrapped_in_sale_parses_like_a_plain_one() {
        let s = canceled(
            r#"{"sale":{"id":5,"customer":{"contactId":7,"email":"x@y.co"},"order":{"id":77001,"totalPrice":19900.0},"pricePlan":{"amount":19900,"currency":"eur"}},"extra":{"anything":[1,2]}}"#,
        );
        assert_eq!(
            (
                s.contact_id,
                s.order_id,
                s.amount_cents,
                s.currency.as_deref()
            ),
            (Some(7), Some(77_001), Some(19_900), Some("eur"))
        );
    }

    #[test]
    fn a_cancellation_with_a_contact_instead_of_a_customer_names_the_contact() {
        let s = canceled(r#"{"contact":{"contact":{"id":7,"email":"x@y.co"}},"order":{"id":1}}"#);
        assert_eq!((s.contact_id, s.order_id), (Some(7), Some(1)));
    }

    #[test]
    fn a_new_sale_without_an_amount_is_refused() {
        assert_eq!(
            SystemeEvent::parse(
                "SALE_NEW",
                br#"{"customer":{"contactId":7},"order":{"id":1}}"#
            ),
            Err(EventError::Missing("order.totalPrice"))
        );
    }

    #[test]
    fn php_escapes_and_unknown_fields_change_nothing() {
        let php = r#"{"contact":{"id":7,"email":"x@y.co","sourceURL":"https:\/\/lp.example.com\/f?utm_source=a","fields":[{"slug":"first_name","value":"Jos\u00e9","fieldName":"First name"}],"tags":[],"newThing":{"v":0.0}},"schemaVersion":1.0}"#;
        let SystemeEvent::OptIn(c) = SystemeEvent::parse("CONTACT_OPT_IN", php.as_bytes()).unwrap()
        else {
            panic!("wrong kind")
        };
        assert_eq!(
            c.source_url.as_deref(),
            Some("https://lp.example.com/f?utm_source=a")
        );
        assert_eq!(c.first_name.as_deref(), Some("José"));
    }

    #[test]
    fn unknown_events_parse_as_unknown_and_bad_bodies_are_errors() {
        assert_eq!(
            SystemeEvent::parse("FUNNEL_STEP_VIEWED", b"{}").unwrap(),
            SystemeEvent::Unknown("FUNNEL_STEP_VIEWED".into())
        );
        assert!(matches!(
            SystemeEvent::parse("CONTACT_CREATED", b"nope"),
            Err(EventError::NotJson(_))
        ));
        assert_eq!(
            SystemeEvent::parse("CONTACT_TAG_ADDED", br#"{"contact":{"id":1}}"#),
            Err(EventError::Missing("tag"))
        );
        assert_eq!(
            SystemeEvent::parse("SALE_NEW", b"{}"),
            Err(EventError::Missing("customer"))
        );
    }

    #[test]
    fn a_body_must_agree_with_its_unsigned_event_name() {
        let added = r#"{"contact":{"email":"x@y.co","tags":[{"id":5,"name":"ib-a7x3k2m1-vip"}]},"tag":{"id":5,"name":"ib-a7x3k2m1-vip"}}"#;
        let removed =
            r#"{"contact":{"email":"x@y.co","tags":[]},"tag":{"id":5,"name":"ib-a7x3k2m1-vip"}}"#;
        let sale = r#"{"customer":{"email":"x@y.co"},"order":{"id":1,"totalPrice":100}}"#;
        let mismatch = |event: &str, body: &str| {
            matches!(
                SystemeEvent::parse(event, body.as_bytes()),
                Err(EventError::Mismatch(_))
            )
        };
        assert!(!mismatch("CONTACT_TAG_ADDED", added));
        assert!(mismatch("CONTACT_TAG_REMOVED", added));
        assert!(mismatch("CONTACT_OPT_IN", added));
        assert!(mismatch("CONTACT_CREATED", added));
        assert!(!mismatch("CONTACT_TAG_REMOVED", removed));
        assert!(mismatch("CONTACT_TAG_ADDED", removed));
        assert!(!mismatch("SALE_NEW", sale));
        // A body with no part the named event needs is refused outright.
        assert!(SystemeEvent::parse("CONTACT_OPT_IN", sale.as_bytes()).is_err());
        assert!(SystemeEvent::parse("SALE_NEW", added.as_bytes()).is_err());
        let sale_with_tag = r#"{"customer":{"email":"x@y.co"},"order":{"id":1,"totalPrice":100},"tag":{"name":"ib-a7x3k2m1-vip"}}"#;
        assert!(mismatch("SALE_CANCELED", sale_with_tag));
        let opt_in_with_order = r#"{"contact":{"email":"x@y.co"},"order":{"id":1}}"#;
        assert!(mismatch("CONTACT_OPT_IN", opt_in_with_order));
        // A tag listed by name only (no ids) still agrees.
        let by_name = r#"{"contact":{"tags":[{"name":"ib-a7x3k2m1-vip"}]},"tag":{"id":5,"name":"ib-a7x3k2m1-vip"}}"#;
        assert!(!mismatch("CONTACT_TAG_ADDED", by_name));
    }

    #[test]
    fn utm_parameters_come_from_the_source_url() {
        let [source, medium, campaign] =
            utm_from_url("https://x.io/f/77/?utm_source=google&utm_campaign=crypto-q4");
        assert_eq!(source.1.as_deref(), Some("google"));
        assert_eq!(medium.1, None);
        assert_eq!(campaign.1.as_deref(), Some("crypto-q4"));
    }
}
