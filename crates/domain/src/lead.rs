//! Leads: what a landing-page form submits, validated; the tags it earns; the sync policy.
//!
//! See docs/contract.md. A body (JSON object or urlencoded form) becomes [`RawFields`], then a
//! [`Submission`]: either a valid [`LeadSubmission`] or spam (the `_gotcha` honeypot).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::funnel::TagRules;
use crate::tags::{Tag, client_tag, slug};
use crate::tenant::{EmailAddress, FieldError, TagPrefix};

/// A lead's email: the same rules as any address, lowercased.
pub type LeadEmail = EmailAddress;

/// Why a body could not be read as fields at all (400, not 422).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("the JSON body must be an object of fields")]
    NotAnObject,
    #[error("the body is not a valid urlencoded form: {0}")]
    Form(String),
}

/// Why a JSON body's fields could not be read: the body as a whole (400) or one field whose
/// value is not text (422, naming the field).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum JsonFieldsError {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// A submission's fields before validation: name → values (forms may repeat a name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawFields(BTreeMap<String, Vec<String>>);

/// How many client tags one submission may carry.
pub const MAX_CLIENT_TAGS: usize = 10;

/// How many tags one lead may hold in all. A repeat post merges its tags into the lead's up to
/// this many; the rest are dropped, so a public capture key cannot grow a lead's tags (and the
/// Systeme.io calls that assign them) without bound.
pub const MAX_LEAD_TAGS: usize = 25;

/// The tombstone key of an erased lead: a hash of the tenant and the (normalised) email, so
/// the tombstone does not keep the address it stands for.
pub fn erasure_key(tenant: &crate::tenant::TenantId, email: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(tenant.as_ref().as_bytes());
    hasher.update([0]);
    hasher.update(email.trim().to_lowercase().as_bytes());
    hex::encode(hasher.finalize())
}

/// A submitted tag, `form` or `ib_type` that would carry a tag the tenant's stage or counter
/// rules react to. The capture key is public, so it must not be able to claim a stage:
/// `422 reserved_tag`.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{field}: {value:?} is reserved for funnel stages and counters; use another name")]
pub struct ReservedTag {
    pub field: &'static str,
    pub value: String,
}

impl RawFields {
    /// From a JSON object. Strings, numbers and booleans are read as text, arrays of them as
    /// repeated values, `null` as absent; nested objects are a field error.
    pub fn from_json(body: &[u8]) -> Result<Self, JsonFieldsError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| BodyError::Json(e.to_string()))?;
        let serde_json::Value::Object(map) = value else {
            return Err(BodyError::NotAnObject.into());
        };
        let mut fields = BTreeMap::new();
        for (name, value) in map {
            let values = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::Array(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        match scalar(item) {
                            Some(v) => out.push(v),
                            None => return Err(nested(&name).into()),
                        }
                    }
                    out
                }
                other => match scalar(other) {
                    Some(v) => vec![v],
                    None => return Err(nested(&name).into()),
                },
            };
            fields.insert(name, values);
        }
        Ok(Self(fields))
    }

    /// From an `application/x-www-form-urlencoded` body.
    pub fn from_form(body: &[u8]) -> Result<Self, BodyError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| BodyError::Form(e.to_string()))?;
        let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in pairs {
            fields.entry(name).or_default().push(value);
        }
        Ok(Self(fields))
    }

    /// The first value sent for `name`, trimmed; `None` when missing or blank.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .and_then(|v| v.first())
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.get(name).into_iter().flatten().map(String::as_str)
    }
}

fn scalar(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn nested(name: &str) -> FieldError {
    // Field names are client text; the error names only known fields verbatim.
    let field = KNOWN_FIELDS
        .iter()
        .find(|f| **f == name)
        .copied()
        .unwrap_or("body");
    FieldError::new(field, "must be a string, number, boolean or a list of them")
}

const KNOWN_FIELDS: &[&str] = &[
    "email",
    "name",
    "phone",
    "ib_type",
    "monthly_leads",
    "broker_network",
    "form",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "gclid",
    "fbclid",
    "ttclid",
    "referrer",
    "page_url",
    "consent",
    "tags",
    "_gotcha",
];

/// The monthly volume band an IB declared, which earns a volume tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Volume {
    High,
    Medium,
    Low,
}

impl Volume {
    /// `500+` → high, `100-500` → medium, anything else given → low.
    pub fn of(monthly_leads: &str) -> Self {
        match monthly_leads.trim() {
            "500+" => Self::High,
            "100-500" => Self::Medium,
            _ => Self::Low,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "high" => Some(Self::High),
            "medium" => Some(Self::Medium),
            "low" => Some(Self::Low),
            _ => None,
        }
    }

    fn tag_suffix(self) -> &'static str {
        match self {
            Self::High => "high-volume",
            Self::Medium => "medium-volume",
            Self::Low => "low-volume",
        }
    }
}

/// The form a lead came from when the submission does not say.
pub const DEFAULT_FORM: &str = "demo-request";

/// A validated lead submission. Invariant: every text is trimmed, non-empty and within its
/// length limit; `form` and `ib_type` are slugs; `page_url` is an absolute http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSubmission {
    pub email: LeadEmail,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub ib_type: Option<String>,
    pub monthly_leads: Option<String>,
    pub volume: Option<Volume>,
    pub broker_network: Option<String>,
    pub form: String,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    /// Ad-click ids (Google, Meta, TikTok), kept as sent: the IB's conversion uploads match on
    /// them.
    pub gclid: Option<String>,
    pub fbclid: Option<String>,
    pub ttclid: Option<String>,
    /// The page that sent the visitor to the form (`document.referrer`): an absolute http(s)
    /// URL.
    pub referrer: Option<String>,
    pub page_url: Option<String>,
    pub consent: bool,
    /// Client-supplied tags as sent (prefixed only by [`LeadSubmission::tags`]).
    pub client_tags: Vec<String>,
}

/// What a form post turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    Lead(Box<LeadSubmission>),
    /// The honeypot was filled in: answer as accepted, store nothing, count it as spam.
    Spam,
}

fn bounded(
    fields: &RawFields,
    name: &'static str,
    max_chars: usize,
) -> Result<Option<String>, FieldError> {
    match fields.first(name) {
        None => Ok(None),
        Some(v) if v.chars().count() > max_chars => Err(FieldError::new(
            name,
            format!("must be at most {max_chars} characters"),
        )),
        Some(v) if v.chars().any(char::is_control) => {
            Err(FieldError::new(name, "must not contain control characters"))
        }
        Some(v) => Ok(Some(v.to_string())),
    }
}

fn slugged(
    fields: &RawFields,
    name: &'static str,
    max_chars: usize,
) -> Result<Option<String>, FieldError> {
    match bounded(fields, name, max_chars)? {
        None => Ok(None),
        Some(v) => slug(&v)
            .map(Some)
            .ok_or_else(|| FieldError::new(name, "must contain letters or digits")),
    }
}

fn phone(fields: &RawFields) -> Result<Option<String>, FieldError> {
    let Some(v) = bounded(fields, "phone", 40)? else {
        return Ok(None);
    };
    let ok = v
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        && v.chars().filter(char::is_ascii_digit).count() >= 5;
    if ok {
        Ok(Some(v))
    } else {
        Err(FieldError::new(
            "phone",
            "must be a phone number (digits, spaces, + - ( ) .)",
        ))
    }
}

fn page_url(fields: &RawFields) -> Result<Option<String>, FieldError> {
    web_url(fields, "page_url")
}

/// An absolute http(s) URL of at most 2000 characters, normalised.
fn web_url(fields: &RawFields, name: &'static str) -> Result<Option<String>, FieldError> {
    let Some(v) = bounded(fields, name, 2000)? else {
        return Ok(None);
    };
    match url::Url::parse(&v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(u.to_string())),
        _ => Err(FieldError::new(name, "must be an absolute http(s) URL")),
    }
}

fn consent(fields: &RawFields) -> Result<bool, FieldError> {
    match fields
        .first("consent")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("false" | "0" | "no" | "off") => Ok(false),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some(_) => Err(FieldError::new("consent", "must be true or false")),
    }
}

fn client_tags(fields: &RawFields) -> Result<Vec<String>, FieldError> {
    let tags: Vec<String> = fields
        .all("tags")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if tags.len() > MAX_CLIENT_TAGS {
        return Err(FieldError::new(
            "tags",
            format!("at most {MAX_CLIENT_TAGS} tags"),
        ));
    }
    if tags.iter().any(|t| t.chars().count() > 100) {
        return Err(FieldError::new(
            "tags",
            "each tag is at most 100 characters",
        ));
    }
    Ok(tags)
}

impl Submission {
    /// Validates fields. The honeypot is checked first, so a bot learns nothing from errors.
    pub fn parse(fields: &RawFields) -> Result<Self, FieldError> {
        if fields.first("_gotcha").is_some() {
            return Ok(Self::Spam);
        }
        let email = LeadEmail::parse("email", fields.first("email").unwrap_or_default())?;
        let monthly_leads = bounded(fields, "monthly_leads", 40)?;
        Ok(Self::Lead(Box::new(LeadSubmission {
            email,
            name: bounded(fields, "name", 200)?,
            phone: phone(fields)?,
            ib_type: slugged(fields, "ib_type", 60)?,
            volume: monthly_leads.as_deref().map(Volume::of),
            monthly_leads,
            broker_network: bounded(fields, "broker_network", 100)?,
            form: slugged(fields, "form", 60)?.unwrap_or_else(|| DEFAULT_FORM.to_string()),
            utm_source: bounded(fields, "utm_source", 200)?,
            utm_medium: bounded(fields, "utm_medium", 200)?,
            utm_campaign: bounded(fields, "utm_campaign", 200)?,
            utm_term: bounded(fields, "utm_term", 200)?,
            utm_content: bounded(fields, "utm_content", 200)?,
            gclid: bounded(fields, "gclid", 200)?,
            fbclid: bounded(fields, "fbclid", 200)?,
            ttclid: bounded(fields, "ttclid", 200)?,
            referrer: web_url(fields, "referrer")?,
            page_url: page_url(fields)?,
            consent: consent(fields)?,
            client_tags: client_tags(fields)?,
        })))
    }
}

impl LeadSubmission {
    /// The tags this lead earns for `owner`, sorted and without duplicates: the form tag, the
    /// `ib_type` tag, the volume tag, and the client's tags re-prefixed (foreign ones dropped).
    ///
    /// Refused when `form`, `ib_type` or a client tag would carry a suffix that `rules` (the
    /// tenant's stage and counter rules) react to; a volume tag that a tenant's rule happens
    /// to react to is left out rather than refused (the visitor did not name it).
    pub fn tags(&self, owner: &TagPrefix, rules: &TagRules) -> Result<Vec<Tag>, ReservedTag> {
        let reserved = |tag: &Tag| rules.effect(tag.suffix()).is_some();
        let mut tags = Vec::new();
        let named = [
            ("form", Some(self.form.as_str())),
            ("ib_type", self.ib_type.as_deref()),
        ];
        for (field, raw) in named {
            if let Some(tag) = raw.and_then(|raw| Tag::new(owner, raw)) {
                if reserved(&tag) {
                    return Err(ReservedTag {
                        field,
                        value: raw.unwrap_or_default().to_string(),
                    });
                }
                tags.push(tag);
            }
        }
        for raw in &self.client_tags {
            if let Some(tag) = client_tag(owner, raw) {
                if reserved(&tag) {
                    return Err(ReservedTag {
                        field: "tags",
                        value: raw.clone(),
                    });
                }
                tags.push(tag);
            }
        }
        tags.extend(
            self.volume
                .and_then(|v| Tag::new(owner, v.tag_suffix()))
                .filter(|t| !reserved(t)),
        );
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// `name` split for Systeme.io: the first word, then the rest.
    pub fn first_name_and_surname(&self) -> (Option<&str>, Option<&str>) {
        split_name(self.name.as_deref())
    }
}

/// The fields of a contact that Systeme.io knows and a form never posted, put through the
/// form's rules ([`Submission::parse`]) one by one: a field that breaks its rule is dropped,
/// the others are kept, so one bad field never loses the event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactFields {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub page_url: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
}

impl ContactFields {
    /// A contact's name, phone and source URL, each checked by the rule the form post's field
    /// of that name follows; the UTM parameters come from the source URL only if it passes.
    pub fn checked(name: Option<&str>, phone: Option<&str>, source_url: Option<&str>) -> Self {
        let fields = |pairs: &[(&str, Option<&str>)]| {
            RawFields(
                pairs
                    .iter()
                    .filter_map(|(k, v)| Some(((*k).to_string(), vec![(*v)?.to_string()])))
                    .collect(),
            )
        };
        let keep = |result: Result<Option<String>, FieldError>| result.ok().flatten();
        let given = fields(&[("name", name), ("phone", phone), ("page_url", source_url)]);
        let page_url = keep(self::page_url(&given));
        let [source, medium, campaign] = page_url
            .as_deref()
            .map(crate::events::utm_from_url)
            .unwrap_or_default();
        let utm = fields(&[
            ("utm_source", source.1.as_deref()),
            ("utm_medium", medium.1.as_deref()),
            ("utm_campaign", campaign.1.as_deref()),
        ]);
        Self {
            name: keep(bounded(&given, "name", 200)),
            phone: keep(self::phone(&given)),
            page_url,
            utm_source: keep(bounded(&utm, "utm_source", 200)),
            utm_medium: keep(bounded(&utm, "utm_medium", 200)),
            utm_campaign: keep(bounded(&utm, "utm_campaign", 200)),
        }
    }
}

/// Whether `tag` is one every tenant's leads carry whatever a visitor sends (a volume tag or
/// the default form's): these never count against the tenant's tag budget.
pub fn is_builtin_tag(tag: &Tag) -> bool {
    [
        Volume::High.tag_suffix(),
        Volume::Medium.tag_suffix(),
        Volume::Low.tag_suffix(),
        DEFAULT_FORM,
    ]
    .contains(&tag.suffix())
}

/// Splits a full name at its first whitespace: `"Ana Maria Silva"` → (`Ana`, `Maria Silva`).
pub fn split_name(name: Option<&str>) -> (Option<&str>, Option<&str>) {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return (None, None);
    };
    match name.split_once(char::is_whitespace) {
        Some((first, rest)) => (Some(first), Some(rest.trim()).filter(|r| !r.is_empty())),
        None => (Some(name), None),
    }
}

/// Where a lead stands with Systeme.io.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    /// Stored, waiting for (another) sync attempt.
    Pending,
    /// The contact exists in Systeme.io with all of the lead's tags.
    Synced,
    /// Gave up after [`MAX_SYNC_ATTEMPTS`]; kept, visible, and retryable by the operator.
    Failed,
    /// Stored but not synced: over the plan's lead limit, or without consent while the tenant
    /// syncs only leads who consented (`sync_requires_consent`; such a lead is released when it
    /// consents or the tenant turns the rule off).
    Held,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Synced => "synced",
            Self::Failed => "failed",
            Self::Held => "held",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pending" => Some(Self::Pending),
            "synced" => Some(Self::Synced),
            "failed" => Some(Self::Failed),
            "held" => Some(Self::Held),
            _ => None,
        }
    }
}

/// Failed attempts after which a lead is marked [`SyncStatus::Failed`].
pub const MAX_SYNC_ATTEMPTS: u32 = 6;

/// Seconds to wait after the `attempts`-th failure: 1 min, 2, 4, 8, 16 … capped at 6 hours.
pub fn sync_backoff_secs(attempts: u32) -> i64 {
    let exponent = attempts.saturating_sub(1).min(20);
    (60_i64 << exponent).min(6 * 3600)
}

/// What a failed attempt leads to: the status and when to try again.
pub fn after_failed_attempt(
    attempts: u32,
    now: i64,
    retry_after: Option<i64>,
) -> (SyncStatus, i64) {
    let wait = sync_backoff_secs(attempts).max(retry_after.unwrap_or(0));
    if attempts >= MAX_SYNC_ATTEMPTS {
        // Failed, and a repost of the lead (which queues it again) still waits this out.
        return (SyncStatus::Failed, now + wait);
    }
    (SyncStatus::Pending, now + wait)
}

/// The longest wait a Systeme.io header may impose on a lead: one hour. A header that asks
/// for more is a bug or a clock skew, and a lead must not vanish for days because of it.
pub const MAX_UPSTREAM_WAIT_SECS: i64 = 3600;

/// `X-RateLimit-Refill` values from here up read as a Unix timestamp in seconds (2001-09-09
/// onwards), from [`MILLIS_FROM`] up as one in milliseconds; smaller values are seconds to wait.
const TIMESTAMP_FROM: f64 = 1_000_000_000.0;
const MILLIS_FROM: f64 = 1_000_000_000_000.0;

/// Seconds to wait before calling Systeme.io again, from a `429`'s headers.
///
/// `Retry-After` comes first (delay-seconds or an HTTP date). Otherwise `X-RateLimit-Refill`,
/// whose unit is not documented: seconds when small, a Unix timestamp (seconds or
/// milliseconds) when it looks like one. The result is within `0..=`[`MAX_UPSTREAM_WAIT_SECS`],
/// rounded up to whole seconds; `None` when neither header says anything usable.
pub fn upstream_wait_secs(
    retry_after: Option<&str>,
    refill: Option<&str>,
    now: i64,
) -> Option<i64> {
    let wait = retry_after
        .and_then(|v| retry_after_secs(v, now))
        .or_else(|| refill.and_then(|v| refill_secs(v, now)))?;
    Some(wait.clamp(0, MAX_UPSTREAM_WAIT_SECS))
}

fn number(value: &str) -> Option<f64> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
}

/// Whole seconds, rounded up, saturating (the caller clamps).
#[allow(clippy::cast_possible_truncation)]
fn whole_secs(secs: f64) -> i64 {
    secs.ceil().min(i64::MAX as f64) as i64
}

fn retry_after_secs(value: &str, now: i64) -> Option<i64> {
    if let Some(secs) = number(value) {
        return Some(whole_secs(secs));
    }
    // An HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`): RFC 2822 with an obsolete zone name.
    let value = value.trim();
    let value = value
        .strip_suffix(" GMT")
        .or_else(|| value.strip_suffix(" UTC"))
        .map_or_else(|| value.to_string(), |v| format!("{v} +0000"));
    let at =
        time::OffsetDateTime::parse(&value, &time::format_description::well_known::Rfc2822).ok()?;
    Some(at.unix_timestamp().saturating_sub(now))
}

fn refill_secs(value: &str, now: i64) -> Option<i64> {
    let n = number(value)?;
    #[allow(clippy::cast_precision_loss)]
    let now = now as f64;
    Some(if n >= MILLIS_FROM {
        whole_secs((n / 1000.0 - now).max(0.0))
    } else if n >= TIMESTAMP_FROM {
        whole_secs((n - now).max(0.0))
    } else {
        whole_secs(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> RawFields {
        RawFields::from_form(body.as_bytes()).unwrap()
    }

    fn json(body: &str) -> Result<RawFields, FieldError> {
        match RawFields::from_json(body.as_bytes()) {
            Ok(fields) => Ok(fields),
            Err(JsonFieldsError::Field(e)) => Err(e),
            Err(JsonFieldsError::Body(e)) => panic!("not a body error: {e}"),
        }
    }

    fn lead(fields: &RawFields) -> LeadSubmission {
        match Submission::parse(fields).unwrap() {
            Submission::Lead(l) => *l,
            Submission::Spam => panic!("not a lead"),
        }
    }

    #[test]
    fn a_form_post_with_only_an_email_is_a_demo_request() {
        let l = lead(&form("email=Trader%40Example.COM"));
        assert_eq!(l.email.as_ref(), "trader@example.com");
        assert_eq!(l.form, "demo-request");
        assert!(!l.consent);
    }

    #[test]
    fn json_scalars_are_read_as_text() {
        let l = lead(
            &json(
                r#"{"email":"a@b.co","consent":true,"monthly_leads":"500+","phone":35191234567}"#,
            )
            .unwrap(),
        );
        assert!(l.consent);
        assert_eq!(l.volume, Some(Volume::High));
        assert_eq!(l.phone.as_deref(), Some("35191234567"));
    }

    #[test]
    fn a_json_body_that_is_not_an_object_is_a_body_error() {
        assert_eq!(
            RawFields::from_json(b"[1]"),
            Err(JsonFieldsError::Body(BodyError::NotAnObject))
        );
        assert!(matches!(
            RawFields::from_json(b"{"),
            Err(JsonFieldsError::Body(BodyError::Json(_)))
        ));
    }

    #[test]
    fn a_nested_object_names_the_field() {
        let err = json(r#"{"email":{"x":1}}"#).unwrap_err();
        assert_eq!(err.field, "email");
        let err = json(r#"{"whatever":{"x":1}}"#).unwrap_err();
        assert_eq!(err.field, "body");
    }

    #[test]
    fn a_missing_or_bad_email_names_the_email_field() {
        for body in ["name=Ana", "email=", "email=not-an-email", "email=a%40b"] {
            let err = Submission::parse(&form(body)).unwrap_err();
            assert_eq!(err.field, "email", "{body}");
        }
    }

    #[test]
    fn a_filled_honeypot_is_spam_even_without_an_email() {
        assert_eq!(
            Submission::parse(&form("_gotcha=buy")),
            Ok(Submission::Spam)
        );
        assert!(matches!(
            Submission::parse(&form("email=a%40b.co&_gotcha=")),
            Ok(Submission::Lead(_))
        ));
    }

    #[test]
    fn fields_over_their_limit_are_refused_by_name() {
        let long = "x".repeat(201);
        let err = Submission::parse(&form(&format!("email=a%40b.co&name={long}"))).unwrap_err();
        assert_eq!(err.field, "name");
        let err = Submission::parse(&form("email=a%40b.co&phone=call+me")).unwrap_err();
        assert_eq!(err.field, "phone");
        let err =
            Submission::parse(&form("email=a%40b.co&page_url=javascript:alert(1)")).unwrap_err();
        assert_eq!(err.field, "page_url");
        let err = Submission::parse(&form("email=a%40b.co&consent=maybe")).unwrap_err();
        assert_eq!(err.field, "consent");
        let err = Submission::parse(&form("email=a%40b.co&ib_type=%21%21")).unwrap_err();
        assert_eq!(err.field, "ib_type");
    }

    #[test]
    fn attribution_fields_are_kept_bounded_and_the_referrer_is_a_web_url() {
        let l = lead(&form(
            "email=a%40b.co&utm_term=forex+ib&utm_content=banner-2&gclid=Cj0K&fbclid=IwAR&ttclid=E.C.P&referrer=https%3A%2F%2Fwww.google.com%2F",
        ));
        assert_eq!(l.utm_term.as_deref(), Some("forex ib"));
        assert_eq!(l.utm_content.as_deref(), Some("banner-2"));
        assert_eq!(
            (l.gclid.as_deref(), l.fbclid.as_deref(), l.ttclid.as_deref()),
            (Some("Cj0K"), Some("IwAR"), Some("E.C.P"))
        );
        assert_eq!(l.referrer.as_deref(), Some("https://www.google.com/"));
        let long = "x".repeat(201);
        for field in ["utm_term", "utm_content", "gclid", "fbclid", "ttclid"] {
            let err =
                Submission::parse(&form(&format!("email=a%40b.co&{field}={long}"))).unwrap_err();
            assert_eq!(err.field, field);
        }
        let err =
            Submission::parse(&form("email=a%40b.co&referrer=javascript:alert(1)")).unwrap_err();
        assert_eq!(err.field, "referrer");
    }

    #[test]
    fn a_contacts_fields_follow_the_form_rules_field_by_field() {
        let long = "n".repeat(201);
        let checked = ContactFields::checked(
            Some(&long),
            Some("+351 912 345 678"),
            Some("javascript:alert(1)//?utm_source=x"),
        );
        assert_eq!(checked.name, None);
        assert_eq!(checked.phone.as_deref(), Some("+351 912 345 678"));
        assert_eq!(checked.page_url, None);
        assert_eq!(checked.utm_source, None);
        let ok = ContactFields::checked(
            Some("Ana Silva"),
            Some("call me"),
            Some("https://lp.example.com/x?utm_source=fb"),
        );
        assert_eq!(ok.name.as_deref(), Some("Ana Silva"));
        assert_eq!(ok.phone, None);
        assert_eq!(
            ok.page_url.as_deref(),
            Some("https://lp.example.com/x?utm_source=fb")
        );
        assert_eq!(ok.utm_source.as_deref(), Some("fb"));
    }

    #[test]
    fn volume_bands_follow_the_spec() {
        assert_eq!(Volume::of("500+"), Volume::High);
        assert_eq!(Volume::of("100-500"), Volume::Medium);
        assert_eq!(Volume::of("0-100"), Volume::Low);
        assert_eq!(Volume::of("lots"), Volume::Low);
    }

    #[test]
    fn a_lead_earns_form_type_volume_and_client_tags_under_its_owner_prefix() {
        let owner = TagPrefix::parse("ib-a7x3k2m1-").unwrap();
        let l = lead(&form(
            "email=a%40b.co&form=Webinar&ib_type=Forex+IB&monthly_leads=100-500\
             &tags=vip&tags=ib-b9z5n4p8-converted,ib-a7x3k2m1-hot",
        ));
        let tags: Vec<String> = l
            .tags(&owner, &TagRules::defaults())
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            tags,
            [
                "ib-a7x3k2m1-forex-ib",
                "ib-a7x3k2m1-hot",
                "ib-a7x3k2m1-medium-volume",
                "ib-a7x3k2m1-vip",
                "ib-a7x3k2m1-webinar",
            ]
        );
    }

    #[test]
    fn a_visitor_cannot_name_a_stage_or_counter_tag() {
        let owner = TagPrefix::parse("ib-a7x3k2m1-").unwrap();
        let rules = TagRules::defaults();
        for (body, field) in [
            ("email=a%40b.co&tags=converted", "tags"),
            ("email=a%40b.co&tags=engaged,vip", "tags"),
            ("email=a%40b.co&tags=ib-a7x3k2m1-email-opened", "tags"),
            ("email=a%40b.co&tags=Email+Clicked", "tags"),
            ("email=a%40b.co&tags=email-anything", "tags"),
            ("email=a%40b.co&form=converted", "form"),
            ("email=a%40b.co&ib_type=email-clicked", "ib_type"),
            ("email=a%40b.co&form=Retained", "form"),
        ] {
            let err = lead(&form(body)).tags(&owner, &rules).unwrap_err();
            assert_eq!(err.field, field, "{body}");
        }
        // A tenant's own rule reserves its suffix too.
        let custom = TagRules::defaults().with_overrides(
            &TagRules::parse_overrides(&serde_json::json!({"webinar-attended": "converted"}))
                .unwrap(),
        );
        let l = lead(&form("email=a%40b.co&form=webinar-attended"));
        assert!(l.tags(&owner, &TagRules::defaults()).is_ok());
        assert_eq!(l.tags(&owner, &custom).unwrap_err().field, "form");
    }

    #[test]
    fn a_volume_tag_a_rule_reacts_to_is_left_out_not_refused() {
        let owner = TagPrefix::parse("ib-a7x3k2m1-").unwrap();
        let rules = TagRules::defaults().with_overrides(
            &TagRules::parse_overrides(&serde_json::json!({"high-volume": "converted"})).unwrap(),
        );
        let tags = lead(&form("email=a%40b.co&monthly_leads=500%2B"))
            .tags(&owner, &rules)
            .unwrap();
        assert!(tags.iter().all(|t| t.suffix() != "high-volume"), "{tags:?}");
    }

    #[test]
    fn too_many_client_tags_are_refused() {
        let body = format!("email=a%40b.co&tags={}", ["t"; 11].join(","));
        assert_eq!(Submission::parse(&form(&body)).unwrap_err().field, "tags");
    }

    #[test]
    fn names_split_at_the_first_space() {
        assert_eq!(
            split_name(Some("Ana Maria Silva")),
            (Some("Ana"), Some("Maria Silva"))
        );
        assert_eq!(split_name(Some("Ana")), (Some("Ana"), None));
        assert_eq!(split_name(Some("  ")), (None, None));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(sync_backoff_secs(1), 60);
        assert_eq!(sync_backoff_secs(2), 120);
        assert_eq!(sync_backoff_secs(5), 960);
        assert_eq!(sync_backoff_secs(40), 6 * 3600);
    }

    const NOW: i64 = 1_795_000_000;

    #[test]
    fn retry_after_in_seconds_comes_before_the_refill_header() {
        assert_eq!(upstream_wait_secs(Some("120"), Some("5"), NOW), Some(120));
        assert_eq!(upstream_wait_secs(Some(" 1.2 "), None, NOW), Some(2));
    }

    #[test]
    fn retry_after_as_an_http_date_counts_from_now() {
        // 1_795_000_000 is 2026-11-18T11:06:40Z.
        let date = "Wed, 18 Nov 2026 11:11:40 GMT";
        assert_eq!(upstream_wait_secs(Some(date), None, NOW), Some(300));
    }

    #[test]
    fn an_unreadable_retry_after_falls_back_to_the_refill_header() {
        assert_eq!(upstream_wait_secs(Some("soon"), Some("30"), NOW), Some(30));
        assert_eq!(upstream_wait_secs(Some("-5"), Some("30"), NOW), Some(30));
    }

    #[test]
    fn a_small_refill_is_seconds_and_a_large_one_a_timestamp() {
        assert_eq!(upstream_wait_secs(None, Some("45"), NOW), Some(45));
        let at = (NOW + 300).to_string();
        assert_eq!(upstream_wait_secs(None, Some(&at), NOW), Some(300));
        let millis = ((NOW + 90) * 1000).to_string();
        assert_eq!(upstream_wait_secs(None, Some(&millis), NOW), Some(90));
    }

    #[test]
    fn a_refill_timestamp_in_the_past_means_no_wait() {
        let past = (NOW - 50).to_string();
        assert_eq!(upstream_wait_secs(None, Some(&past), NOW), Some(0));
        let date = "Wed, 18 Nov 2026 10:00:00 GMT";
        assert_eq!(upstream_wait_secs(Some(date), None, NOW), Some(0));
    }

    #[test]
    fn no_header_ever_asks_for_more_than_an_hour() {
        let next_week = (NOW + 7 * 86_400).to_string();
        for (retry_after, refill) in [
            (Some("86400"), None),
            (Some("1e300"), None),
            (None, Some(next_week.as_str())),
            (None, Some("999999999")),
            (Some("Fri, 01 Jan 2100 00:00:00 GMT"), None),
        ] {
            assert_eq!(
                upstream_wait_secs(retry_after, refill, NOW),
                Some(MAX_UPSTREAM_WAIT_SECS),
                "{retry_after:?} {refill:?}"
            );
        }
    }

    #[test]
    fn headers_that_say_nothing_usable_give_no_wait() {
        assert_eq!(upstream_wait_secs(None, None, NOW), None);
        assert_eq!(upstream_wait_secs(Some(""), Some("NaN"), NOW), None);
        assert_eq!(upstream_wait_secs(Some("inf"), Some("later"), NOW), None);
    }

    proptest::proptest! {
        #[test]
        fn any_header_values_give_a_bounded_wait(
            retry_after in proptest::option::of(".{0,40}"),
            refill in proptest::option::of(".{0,40}"),
            now in 0_i64..4_000_000_000,
        ) {
            if let Some(wait) = upstream_wait_secs(retry_after.as_deref(), refill.as_deref(), now) {
                proptest::prop_assert!((0..=MAX_UPSTREAM_WAIT_SECS).contains(&wait));
            }
        }
    }

    #[test]
    fn a_lead_fails_after_the_last_attempt_and_honours_retry_after_before() {
        assert_eq!(
            after_failed_attempt(1, 1000, None),
            (SyncStatus::Pending, 1060)
        );
        assert_eq!(
            after_failed_attempt(1, 1000, Some(600)),
            (SyncStatus::Pending, 1600)
        );
        assert_eq!(
            after_failed_attempt(MAX_SYNC_ATTEMPTS, 1000, None),
            (
                SyncStatus::Failed,
                1000 + sync_backoff_secs(MAX_SYNC_ATTEMPTS)
            )
        );
    }
}
