//! A tenant's settings: which browser origins may post its forms, where a plain HTML form lands
//! after a successful post, and its tag-suffix rule overrides.

use serde::{Deserialize, Serialize};

use crate::funnel::TagRules;
use crate::tenant::FieldError;

/// Most origins one tenant may list.
pub const MAX_ORIGINS: usize = 50;

/// A browser origin. Invariant: `http(s)://host[:port]`, lowercase, with no path, query or
/// fragment, exactly as browsers send it in the `Origin` header.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Origin(String);

impl Origin {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let bad = || {
            FieldError::new(
                "allowed_origins",
                format!("{value:?} is not an origin like https://example.com"),
            )
        };
        let url = url::Url::parse(value.trim()).map_err(|_| bad())?;
        let plain = matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some()
            && url.username().is_empty()
            && url.password().is_none()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && !value.trim().ends_with('/');
        if !plain {
            return Err(bad());
        }
        Ok(Self(url.origin().ascii_serialization()))
    }
}

impl TryFrom<String> for Origin {
    type Error = FieldError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Origin> for String {
    fn from(o: Origin) -> Self {
        o.0
    }
}

impl AsRef<str> for Origin {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Where a successful plain-form post is redirected. Invariant: an absolute `https` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ThankYouUrl(String);

impl ThankYouUrl {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        match url::Url::parse(value.trim()) {
            Ok(u) if u.scheme() == "https" && u.host_str().is_some() && value.len() <= 2000 => {
                Ok(Self(u.to_string()))
            }
            _ => Err(FieldError::new(
                "thank_you_url",
                "must be an absolute https URL",
            )),
        }
    }
}

impl TryFrom<String> for ThankYouUrl {
    type Error = FieldError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ThankYouUrl> for String {
    fn from(u: ThankYouUrl) -> Self {
        u.0
    }
}

impl AsRef<str> for ThankYouUrl {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A tenant's settings. An empty origin list allows any origin; empty tag rules mean the
/// defaults ([`TagRules::defaults`]) apply unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub allowed_origins: Vec<Origin>,
    #[serde(default)]
    pub thank_you_url: Option<ThankYouUrl>,
    /// Overrides on top of the default tag-suffix rules.
    #[serde(default)]
    pub tag_rules: TagRules,
    /// The tenant's Systeme.io funnel ids: a sale made in one of them belongs to this tenant
    /// alone. A funnel belongs to one tenant at most, and only the operator assigns them
    /// (`PATCH /v1/admin/tenants/:id`); the tenant sees them read-only.
    #[serde(default)]
    pub funnel_ids: Vec<i64>,
}

/// Which of a tenant's leads are pushed to Systeme.io. Set with the settings
/// (`PUT /v1/dashboard/settings`) and stored beside them, in `tenant_sync_rules`, which capture
/// reads inside its own lead write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRules {
    /// Push only leads who consented; a lead without consent is stored `held` (off by default:
    /// every lead is pushed).
    #[serde(default)]
    pub sync_requires_consent: bool,
}

/// Most funnels a tenant may hold.
pub const MAX_FUNNELS: usize = 50;

/// Parses a list of Systeme.io funnel ids (as the operator assigns them): positive whole
/// numbers, at most [`MAX_FUNNELS`], returned sorted without repeats.
pub fn parse_funnel_ids(values: &[serde_json::Value]) -> Result<Vec<i64>, FieldError> {
    if values.len() > MAX_FUNNELS {
        return Err(FieldError::new(
            "funnel_ids",
            format!("at most {MAX_FUNNELS} funnels"),
        ));
    }
    let mut funnel_ids = Vec::with_capacity(values.len());
    for id in values {
        let id = id.as_i64().filter(|id| *id > 0).ok_or_else(|| {
            FieldError::new(
                "funnel_ids",
                "must be Systeme.io funnel ids (positive numbers)",
            )
        })?;
        funnel_ids.push(id);
    }
    funnel_ids.sort_unstable();
    funnel_ids.dedup();
    Ok(funnel_ids)
}

impl Settings {
    /// Whether a browser at `origin` (the `Origin` header, verbatim) may post.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.is_empty() || self.allowed_origins.iter().any(|o| o.0 == origin)
    }

    /// Parses the stored JSON list of origins.
    pub fn origins_from_json(json: &str) -> Result<Vec<Origin>, FieldError> {
        serde_json::from_str(json).map_err(|e| FieldError::new("allowed_origins", e.to_string()))
    }
}

/// Why a settings body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("the body is not a settings object: {0}")]
    NotJson(String),
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The body lists funnel ids other than the tenant's own: only the operator assigns them.
    #[error("funnel_ids: funnels are assigned by the operator; send the current ones or none")]
    FunnelsReadOnly,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    /// Spam rules, read by [`crate::spam::SpamUpdate::parse`].
    #[serde(default, rename = "captcha")]
    _captcha: Option<serde_json::Value>,
    #[serde(default, rename = "min_fill_seconds")]
    _min_fill_seconds: Option<serde_json::Value>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    thank_you_url: Option<String>,
    #[serde(default)]
    tag_rules: Option<serde_json::Value>,
    #[serde(default)]
    funnel_ids: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    sync_requires_consent: Option<serde_json::Value>,
    /// What a `GET` names beside the settings (the built-in rules with the tenant's on top);
    /// ignored, so a `GET`'s answer can be sent back whole.
    #[serde(default, rename = "effective_tag_rules")]
    _effective_tag_rules: Option<serde_json::Value>,
}

impl Settings {
    /// Parses the body of `PUT /v1/dashboard/settings` for a tenant that holds the funnels
    /// `funnel_ids`: the complete new settings (a missing field is reset to its default). Funnel
    /// ids are the operator's to assign, so the body may omit them or repeat the tenant's own,
    /// in any order; any other list is [`SettingsError::FunnelsReadOnly`], whether or not
    /// another tenant holds what it names, so the answer tells nothing about other tenants.
    pub fn parse(body: &[u8], funnel_ids: &[i64]) -> Result<Self, SettingsError> {
        Self::parse_with_rules(body, funnel_ids).map(|(settings, _)| settings)
    }

    /// [`Settings::parse`], with the sync rules the same body sets (`sync_requires_consent`,
    /// `false` when missing or `null`).
    pub fn parse_with_rules(
        body: &[u8],
        funnel_ids: &[i64],
    ) -> Result<(Self, SyncRules), SettingsError> {
        let raw: SettingsBody =
            serde_json::from_slice(body).map_err(|e| SettingsError::NotJson(e.to_string()))?;
        if raw.allowed_origins.len() > MAX_ORIGINS {
            return Err(FieldError::new(
                "allowed_origins",
                format!("at most {MAX_ORIGINS} origins"),
            )
            .into());
        }
        let mut allowed_origins = Vec::with_capacity(raw.allowed_origins.len());
        for origin in &raw.allowed_origins {
            let origin = Origin::parse(origin)?;
            if !allowed_origins.contains(&origin) {
                allowed_origins.push(origin);
            }
        }
        let thank_you_url = raw
            .thank_you_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(ThankYouUrl::parse)
            .transpose()?;
        let tag_rules = match raw.tag_rules {
            None | Some(serde_json::Value::Null) => TagRules::default(),
            Some(json) => TagRules::parse_overrides(&json)?,
        };
        let mut own = funnel_ids.to_vec();
        own.sort_unstable();
        own.dedup();
        if let Some(sent) = raw.funnel_ids
            && parse_funnel_ids(&sent).ok() != Some(own.clone())
        {
            return Err(SettingsError::FunnelsReadOnly);
        }
        let sync_requires_consent = match raw.sync_requires_consent {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => b,
            Some(_) => {
                return Err(
                    FieldError::new("sync_requires_consent", "must be true or false").into(),
                );
            }
        };
        Ok((
            Self {
                allowed_origins,
                thank_you_url,
                tag_rules,
                funnel_ids: own,
            },
            SyncRules {
                sync_requires_consent,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(
            Origin::parse("https://LP.Example.com").unwrap().as_ref(),
            "https://lp.example.com"
        );
        assert_eq!(
            Origin::parse("http://127.0.0.1:8080").unwrap().as_ref(),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "lp.example.com",
            "https://lp.example.com/",
            "https://x.com/path",
            "ftp://x.com",
            "https://x.com?q=1",
            "*",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_empty_origin_list_allows_any_origin() {
        let s = Settings::default();
        assert!(s.allows_origin("https://anything.example"));
        let s = Settings {
            allowed_origins: vec![Origin::parse("https://lp.example.com").unwrap()],
            ..Settings::default()
        };
        assert!(s.allows_origin("https://lp.example.com"));
        assert!(!s.allows_origin("https://evil.example"));
    }

    #[test]
    fn a_settings_body_is_validated_field_by_field() {
        let s = Settings::parse(br#"{"allowed_origins":["https://a.example","https://a.example"],"thank_you_url":"https://a.example/thanks"}"#, &[]).unwrap();
        assert_eq!(s.allowed_origins.len(), 1);
        assert_eq!(Settings::parse(b"{}", &[]).unwrap(), Settings::default());
        let err = Settings::parse(br#"{"thank_you_url":"http://a.example"}"#, &[]).unwrap_err();
        assert!(matches!(err, SettingsError::Field(f) if f.field == "thank_you_url"));
        let err = Settings::parse(br#"{"allowed_origins":["nope"]}"#, &[]).unwrap_err();
        assert!(matches!(err, SettingsError::Field(f) if f.field == "allowed_origins"));
        assert!(matches!(
            Settings::parse(br#"{"colour":"red"}"#, &[]),
            Err(SettingsError::NotJson(_))
        ));
    }

    #[test]
    fn funnel_ids_are_positive_numbers_without_repeats() {
        assert_eq!(
            parse_funnel_ids(
                &serde_json::from_str::<Vec<serde_json::Value>>("[801,12,801]").unwrap()
            )
            .unwrap(),
            [12, 801]
        );
        for bad in ["[0]", r#"["801"]"#, "[-3]"] {
            let values: Vec<serde_json::Value> = serde_json::from_str(bad).unwrap();
            assert_eq!(parse_funnel_ids(&values).unwrap_err().field, "funnel_ids");
        }
    }

    #[test]
    fn a_settings_body_keeps_the_tenants_funnels_and_cannot_change_them() {
        for kept in [
            &br#"{}"#[..],
            br#"{"funnel_ids":null}"#,
            br#"{"funnel_ids":[801,12,801]}"#,
        ] {
            assert_eq!(
                Settings::parse(kept, &[12, 801]).unwrap().funnel_ids,
                [12, 801]
            );
        }
        for changed in [
            &br#"{"funnel_ids":[]}"#[..],
            br#"{"funnel_ids":[12]}"#,
            br#"{"funnel_ids":[12,801,5]}"#,
            br#"{"funnel_ids":["x"]}"#,
        ] {
            assert_eq!(
                Settings::parse(changed, &[12, 801]),
                Err(SettingsError::FunnelsReadOnly)
            );
        }
        assert_eq!(
            Settings::parse(br#"{"funnel_ids":[5]}"#, &[]),
            Err(SettingsError::FunnelsReadOnly)
        );
    }

    #[test]
    fn the_consent_rule_is_off_unless_the_body_turns_it_on() {
        let rules = |body: &[u8]| Settings::parse_with_rules(body, &[]).map(|(_, r)| r);
        assert_eq!(rules(b"{}").unwrap(), SyncRules::default());
        assert!(
            !rules(br#"{"sync_requires_consent":null}"#)
                .unwrap()
                .sync_requires_consent
        );
        assert!(
            rules(br#"{"sync_requires_consent":true}"#)
                .unwrap()
                .sync_requires_consent
        );
        assert!(matches!(
            rules(br#"{"sync_requires_consent":"yes"}"#),
            Err(SettingsError::Field(f)) if f.field == "sync_requires_consent"
        ));
    }

    #[test]
    fn thank_you_urls_must_be_https() {
        assert!(ThankYouUrl::parse("https://lp.example.com/thanks").is_ok());
        assert!(ThankYouUrl::parse("http://lp.example.com/thanks").is_err());
        assert!(ThankYouUrl::parse("javascript:alert(1)").is_err());
        assert!(ThankYouUrl::parse("/thanks").is_err());
    }
}
