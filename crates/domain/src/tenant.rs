//! Tenants: ids, tag prefixes, plans and their limits, status, and signup input.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A field that failed validation; `field` names it for the client.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// A tenant id. Invariant: a canonical (lowercase, hyphenated) UUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        if !crate::id::is_canonical_uuid(value) {
            return Err(FieldError::new(
                "tenant_id",
                "must be a lowercase hyphenated UUID",
            ));
        }
        Ok(Self(value.to_string()))
    }

    /// A fresh random (version 4) id from 16 random bytes.
    pub fn from_random(mut bytes: [u8; 16]) -> Self {
        if let Some(b) = bytes.get_mut(6) {
            *b = (*b & 0x0f) | 0x40;
        }
        if let Some(b) = bytes.get_mut(8) {
            *b = (*b & 0x3f) | 0x80;
        }
        let h = hex::encode(bytes);
        let s = format!(
            "{}-{}-{}-{}-{}",
            h.get(0..8).unwrap_or_default(),
            h.get(8..12).unwrap_or_default(),
            h.get(12..16).unwrap_or_default(),
            h.get(16..20).unwrap_or_default(),
            h.get(20..32).unwrap_or_default()
        );
        Self(s)
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

const PREFIX_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A tenant's tag prefix. Invariant: `ib-` + 8 characters of `[a-z0-9]` + `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagPrefix(String);

impl TagPrefix {
    pub const LEN: usize = 12;

    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let body = value
            .strip_prefix("ib-")
            .and_then(|rest| rest.strip_suffix('-'))
            .filter(|body| body.len() == 8 && body.bytes().all(|b| PREFIX_ALPHABET.contains(&b)));
        match body {
            Some(_) => Ok(Self(value.to_string())),
            None => Err(FieldError::new(
                "tag_prefix",
                "must be ib- + 8 of [a-z0-9] + -",
            )),
        }
    }

    /// A prefix from 8 random bytes. The slight modulo bias is irrelevant: uniqueness is
    /// enforced by the database, not by the randomness.
    pub fn from_random(bytes: [u8; 8]) -> Self {
        let body: String = bytes
            .iter()
            .filter_map(|b| PREFIX_ALPHABET.get(usize::from(*b) % PREFIX_ALPHABET.len()))
            .map(|b| char::from(*b))
            .collect();
        Self(format!("ib-{body}-"))
    }

    /// The prefix a tag starts with, if it has the shape of one.
    pub fn of_tag(tag: &str) -> Option<Self> {
        tag.get(..Self::LEN).and_then(|p| Self::parse(p).ok())
    }
}

impl std::fmt::Display for TagPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TagPrefix {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A tenant's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    #[default]
    Starter,
    Pro,
    Enterprise,
}

/// What a plan allows, and the tenant's budget on the Systeme.io account every tenant shares.
/// Each budget has its plan's default and may be overridden per tenant by the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Leads stored and synced; beyond it leads are kept but held (not synced).
    pub leads: u64,
    /// Leads held over `leads`; past it a capture of a new email is refused
    /// (`quota_exceeded`) and nothing is stored.
    pub held_leads: u64,
    /// Distinct tags the tenant's leads may create in Systeme.io, besides the built-in volume
    /// and default-form tags; a lead's tags past it are stored but kept back from Systeme.io.
    pub tags: u64,
    /// Systeme.io API calls the tenant's syncs may spend per minute, so that one tenant's burst
    /// cannot starve the others' syncs; past it a lead waits, pending, for the next minute.
    pub sync_calls_per_minute: u64,
}

/// The operator's per-tenant overrides of a plan's [`Limits`] (`None`: the plan's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_leads: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_calls_per_minute: Option<u64>,
}

impl Limits {
    /// These limits with the operator's overrides applied.
    pub fn with(self, overrides: BudgetOverrides) -> Self {
        Self {
            leads: self.leads,
            held_leads: overrides.held_leads.unwrap_or(self.held_leads),
            tags: overrides.tags.unwrap_or(self.tags),
            sync_calls_per_minute: overrides
                .sync_calls_per_minute
                .unwrap_or(self.sync_calls_per_minute),
        }
    }
}

impl Plan {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        match value {
            "starter" => Ok(Self::Starter),
            "pro" => Ok(Self::Pro),
            "enterprise" => Ok(Self::Enterprise),
            _ => Err(FieldError::new(
                "plan",
                "must be starter, pro or enterprise",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starter => "starter",
            Self::Pro => "pro",
            Self::Enterprise => "enterprise",
        }
    }

    /// Starter matches ClientFlow's User model (1000 leads). Held leads default to the lead
    /// quota; tags to 100 (500 on enterprise); Systeme.io calls to 60, 120 and 300 a minute.
    pub fn limits(self) -> Limits {
        let (leads, tags, sync_calls_per_minute) = match self {
            Self::Starter => (1_000, 100, 60),
            Self::Pro => (10_000, 100, 120),
            Self::Enterprise => (1_000_000, 500, 300),
        };
        Limits {
            leads,
            held_leads: leads,
            tags,
            sync_calls_per_minute,
        }
    }
}

/// Whether a tenant's tokens work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        match value {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            _ => Err(FieldError::new("status", "must be active or suspended")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
}

/// An email address. Invariant: trimmed, lowercased, at most 254 bytes, one `@` with a
/// non-empty local part and a dotted domain, no whitespace or control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, FieldError> {
        let email = value.trim().to_lowercase();
        let bad = |why: &str| Err(FieldError::new(field, why.to_string()));
        if email.is_empty() {
            return bad("is required");
        }
        if email.len() > 254 {
            return bad("must be at most 254 characters");
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("must not contain spaces");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return bad("must contain @");
        };
        if local.is_empty() || domain.contains('@') || !domain.contains('.') {
            return bad("is not a valid email address");
        }
        if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return bad("is not a valid email address");
        }
        Ok(Self(email))
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The body of `POST /v1/tenants`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signup {
    pub name: String,
    pub email: EmailAddress,
    pub plan: Plan,
}

#[derive(Deserialize)]
struct SignupBody {
    name: Option<serde_json::Value>,
    email: Option<serde_json::Value>,
    plan: Option<serde_json::Value>,
}

fn text(
    field: &'static str,
    value: Option<&serde_json::Value>,
) -> Result<Option<String>, FieldError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

/// Why a signup body was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignupError {
    #[error("the body is not a JSON object")]
    NotJson,
    #[error(transparent)]
    Field(#[from] FieldError),
}

impl Signup {
    pub fn parse(body: &[u8]) -> Result<Self, SignupError> {
        let raw: SignupBody = serde_json::from_slice(body).map_err(|_| SignupError::NotJson)?;
        let name = text("name", raw.name.as_ref())?
            .unwrap_or_default()
            .trim()
            .to_string();
        if name.is_empty() {
            return Err(FieldError::new("name", "is required").into());
        }
        if name.chars().count() > 200 {
            return Err(FieldError::new("name", "must be at most 200 characters").into());
        }
        let email = EmailAddress::parse(
            "email",
            &text("email", raw.email.as_ref())?.unwrap_or_default(),
        )?;
        let plan = match text("plan", raw.plan.as_ref())? {
            Some(p) => Plan::parse(&p)?,
            None => Plan::default(),
        };
        Ok(Self { name, email, plan })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tenant_ids_must_be_canonical_uuids() {
        assert!(TenantId::parse("0f8fad5b-d9cb-469f-a165-70867728950e").is_ok());
        for bad in [
            "",
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "0f8fad5bd9cb469fa16570867728950e",
            "../x",
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn random_tenant_ids_parse() {
        let id = TenantId::from_random([7; 16]);
        assert_eq!(TenantId::parse(id.as_ref()), Ok(id));
    }

    #[test]
    fn prefixes_have_the_documented_shape() {
        assert!(TagPrefix::parse("ib-a7x3k2m1-").is_ok());
        for bad in [
            "ib-a7x3k2m1",
            "ib-A7X3K2M1-",
            "ib-a7x3k2m-",
            "xx-a7x3k2m1-",
            "ib-a7x3k2m1x-",
        ] {
            assert!(TagPrefix::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_tag_reveals_its_prefix() {
        assert_eq!(
            TagPrefix::of_tag("ib-a7x3k2m1-engaged")
                .map(|p| p.to_string())
                .as_deref(),
            Some("ib-a7x3k2m1-")
        );
        assert_eq!(TagPrefix::of_tag("vip"), None);
    }

    #[test]
    fn starter_allows_a_thousand_leads() {
        assert_eq!(Plan::Starter.limits().leads, 1_000);
        assert_eq!(Plan::default(), Plan::Starter);
    }

    #[test]
    fn signup_defaults_to_starter_and_normalises_email() {
        let s = Signup::parse(br#"{"name":" Acme IB ","email":" Boss@Acme.COM "}"#).unwrap();
        assert_eq!(
            (s.name.as_str(), s.email.as_ref(), s.plan),
            ("Acme IB", "boss@acme.com", Plan::Starter)
        );
    }

    #[test]
    fn signup_names_the_bad_field() {
        let field = |body: &[u8]| match Signup::parse(body) {
            Err(SignupError::Field(f)) => f.field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(br#"{"email":"a@b.co"}"#), "name");
        assert_eq!(field(br#"{"name":"x","email":"nope"}"#), "email");
        assert_eq!(
            field(br#"{"name":"x","email":"a@b.co","plan":"gold"}"#),
            "plan"
        );
        assert_eq!(field(br#"{"name":5,"email":"a@b.co"}"#), "name");
        assert_eq!(Signup::parse(b"[1]"), Err(SignupError::NotJson));
    }

    proptest! {
        #[test]
        fn random_prefixes_always_parse(bytes in proptest::array::uniform8(any::<u8>())) {
            let prefix = TagPrefix::from_random(bytes);
            prop_assert_eq!(TagPrefix::parse(prefix.as_ref()), Ok(prefix));
        }

        #[test]
        fn email_parsing_never_panics(s in ".{0,300}") {
            let _ = EmailAddress::parse("email", &s);
        }
    }
}
