//! A tenant's spam rules beyond the honeypot: an optional captcha (Cloudflare Turnstile or
//! hCaptcha) that capture verifies server-side, and a minimum fill time.
//!
//! Both are off by default. A settings `PUT` that leaves `captcha` or `min_fill_seconds` out
//! keeps them as they are, so a client that does not know them never turns them off; the
//! captcha secret is accepted on `PUT` and never shown again (a `GET` says `secret_set`).

use serde::Serialize;

use crate::lead::RawFields;
use crate::tenant::FieldError;

/// The longest minimum fill time a tenant may set, in seconds.
pub const MAX_MIN_FILL_SECONDS: u32 = 60;

/// The form field in which the form script sends how long the form was shown before its
/// submission, in milliseconds.
pub const FILL_MS_FIELD: &str = "_fill_ms";

/// The longest captcha token sent to a provider; a longer one fails without a call.
pub const MAX_TOKEN_CHARS: usize = 4096;

/// Which captcha service checks a tenant's forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptchaProvider {
    Turnstile,
    Hcaptcha,
}

impl CaptchaProvider {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "turnstile" => Some(Self::Turnstile),
            "hcaptcha" => Some(Self::Hcaptcha),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Turnstile => "turnstile",
            Self::Hcaptcha => "hcaptcha",
        }
    }

    /// The form field the provider's widget fills with its token.
    pub fn token_field(self) -> &'static str {
        match self {
            Self::Turnstile => "cf-turnstile-response",
            Self::Hcaptcha => "h-captcha-response",
        }
    }

    /// The path of the provider's verify endpoint, below its base URL
    /// (`https://challenges.cloudflare.com`, `https://api.hcaptcha.com`).
    pub fn verify_path(self) -> &'static str {
        match self {
            Self::Turnstile => "/turnstile/v0/siteverify",
            Self::Hcaptcha => "/siteverify",
        }
    }
}

fn key_like(value: &str, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A captcha site key: public, shown to the form. Invariant: 1 to 100 ASCII letters, digits,
/// `-`, `_` or `.`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct SiteKey(String);

impl SiteKey {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        if key_like(value, 100) {
            Ok(Self(value.to_string()))
        } else {
            Err(FieldError::new(
                "captcha",
                "site_key: must be the provider's site key (letters, digits, - _ .)",
            ))
        }
    }
}

impl From<SiteKey> for String {
    fn from(k: SiteKey) -> Self {
        k.0
    }
}

impl AsRef<str> for SiteKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A captcha secret key: the tenant's, sent only to its provider. Invariant: 1 to 200 ASCII
/// letters, digits, `-`, `_` or `.`. Its `Debug` prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct CaptchaSecret(String);

impl CaptchaSecret {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        if key_like(value, 200) {
            Ok(Self(value.to_string()))
        } else {
            Err(FieldError::new(
                "captcha",
                "secret: must be the provider's secret key (letters, digits, - _ .)",
            ))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for CaptchaSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CaptchaSecret(…)")
    }
}

/// A tenant's captcha: which provider, the site key the form shows and the secret capture
/// verifies tokens with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captcha {
    pub provider: CaptchaProvider,
    pub site_key: SiteKey,
    pub secret: CaptchaSecret,
}

impl Captcha {
    /// The `application/x-www-form-urlencoded` body of a verify call for `token` from the
    /// visitor at `remote_ip` (sent when it is an IP address).
    pub fn verify_body(&self, token: &str, remote_ip: Option<&str>) -> String {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("secret", self.secret.expose());
        form.append_pair("response", token);
        if let Some(ip) = remote_ip.filter(|ip| ip.parse::<std::net::IpAddr>().is_ok()) {
            form.append_pair("remoteip", ip);
        }
        if self.provider == CaptchaProvider::Hcaptcha {
            form.append_pair("sitekey", self.site_key.as_ref());
        }
        form.finish()
    }
}

/// What a settings answer shows of the captcha: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptchaView {
    pub provider: CaptchaProvider,
    pub site_key: SiteKey,
    pub secret_set: bool,
}

/// A tenant's spam rules. The default: no captcha, no minimum fill time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpamRules {
    pub captcha: Option<Captcha>,
    /// Posts sent sooner than this after the form was shown are spam; 0: no minimum.
    /// Invariant: at most [`MAX_MIN_FILL_SECONDS`].
    pub min_fill_seconds: u32,
}

/// The spam rules as a settings answer shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpamRulesView {
    pub captcha: Option<CaptchaView>,
    pub min_fill_seconds: u32,
}

/// What a post's captcha token is, before any verify call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaToken<'a> {
    /// The tenant has no captcha: nothing to verify.
    NotRequired,
    /// The token field is missing, empty or too long: the check fails without a call.
    Missing,
    /// Send this token to the provider.
    Verify(&'a Captcha, &'a str),
}

impl SpamRules {
    /// Rebuilds stored rules (a `tenant_spam_rules` row: provider, site key and secret, all
    /// present or all absent, and the minimum fill time), parsing each value again.
    pub fn from_stored(
        provider: Option<&str>,
        site_key: Option<&str>,
        secret: Option<&str>,
        min_fill_seconds: i64,
    ) -> Result<Self, FieldError> {
        let captcha = match (provider, site_key, secret) {
            (None, None, None) => None,
            (Some(provider), Some(site_key), Some(secret)) => Some(Captcha {
                provider: CaptchaProvider::parse(provider)
                    .ok_or_else(|| FieldError::new("captcha", "provider: unknown"))?,
                site_key: SiteKey::parse(site_key)?,
                secret: CaptchaSecret::parse(secret)?,
            }),
            _ => return Err(FieldError::new("captcha", "stored only in part")),
        };
        let min_fill_seconds = u32::try_from(min_fill_seconds)
            .ok()
            .filter(|s| *s <= MAX_MIN_FILL_SECONDS)
            .ok_or_else(|| FieldError::new("min_fill_seconds", "out of range"))?;
        Ok(Self {
            captcha,
            min_fill_seconds,
        })
    }

    pub fn view(&self) -> SpamRulesView {
        SpamRulesView {
            captcha: self.captcha.as_ref().map(|c| CaptchaView {
                provider: c.provider,
                site_key: c.site_key.clone(),
                secret_set: true,
            }),
            min_fill_seconds: self.min_fill_seconds,
        }
    }

    /// Whether a post came sooner than the minimum fill time allows. With a minimum set, a
    /// post that does not say how long the form was shown (`_fill_ms`, whole milliseconds)
    /// came too soon: it did not come through the form script.
    pub fn filled_too_fast(&self, fields: &RawFields) -> bool {
        if self.min_fill_seconds == 0 {
            return false;
        }
        match fields.first(FILL_MS_FIELD).map(str::parse::<u64>) {
            Some(Ok(ms)) => ms < u64::from(self.min_fill_seconds) * 1000,
            _ => true,
        }
    }

    /// The captcha token a post carries, for the tenant's provider.
    pub fn captcha_token<'a>(&'a self, fields: &'a RawFields) -> CaptchaToken<'a> {
        let Some(captcha) = &self.captcha else {
            return CaptchaToken::NotRequired;
        };
        match fields.first(captcha.provider.token_field()) {
            Some(token) if token.len() <= MAX_TOKEN_CHARS => CaptchaToken::Verify(captcha, token),
            _ => CaptchaToken::Missing,
        }
    }

    /// These rules with a settings body's changes applied. Turning the captcha on, or changing
    /// its provider, needs a secret; otherwise a body without one keeps the stored secret.
    pub fn updated(&self, update: SpamUpdate) -> Result<Self, FieldError> {
        let captcha = match update.captcha {
            CaptchaUpdate::Keep => self.captcha.clone(),
            CaptchaUpdate::Off => None,
            CaptchaUpdate::Set {
                provider,
                site_key,
                secret,
            } => {
                let secret = match (secret, &self.captcha) {
                    (Some(secret), _) => secret,
                    (None, Some(current)) if current.provider == provider => current.secret.clone(),
                    (None, _) => {
                        return Err(FieldError::new(
                            "captcha",
                            "secret: required to turn the captcha on or change its provider",
                        ));
                    }
                };
                Some(Captcha {
                    provider,
                    site_key,
                    secret,
                })
            }
        };
        Ok(Self {
            captcha,
            min_fill_seconds: update.min_fill_seconds.unwrap_or(self.min_fill_seconds),
        })
    }
}

/// What a settings body asks of the captcha.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptchaUpdate {
    /// `captcha` left out: as it is.
    Keep,
    /// `captcha: null`: off.
    Off,
    /// On, with this provider and site key, and a new secret or (`None`) the stored one.
    Set {
        provider: CaptchaProvider,
        site_key: SiteKey,
        secret: Option<CaptchaSecret>,
    },
}

/// The spam-rule changes a `PUT /v1/dashboard/settings` body asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpamUpdate {
    pub captcha: CaptchaUpdate,
    /// `None`: left out, as it is.
    pub min_fill_seconds: Option<u32>,
}

impl SpamUpdate {
    /// Reads `captcha` (`null`, or `{provider, site_key, secret?}`; a `GET`'s `secret_set` may
    /// be sent back and is ignored) and `min_fill_seconds` (0 to [`MAX_MIN_FILL_SECONDS`];
    /// `null` is 0) from a settings body; the body's other fields are not looked at.
    pub fn parse(body: &serde_json::Value) -> Result<Self, FieldError> {
        let captcha = match body.get("captcha") {
            None => CaptchaUpdate::Keep,
            Some(serde_json::Value::Null) => CaptchaUpdate::Off,
            Some(serde_json::Value::Object(fields)) => parse_captcha(fields)?,
            Some(_) => {
                return Err(FieldError::new(
                    "captcha",
                    "must be null or an object with provider, site_key and secret",
                ));
            }
        };
        let min_fill_seconds = match body.get("min_fill_seconds") {
            None => None,
            Some(serde_json::Value::Null) => Some(0),
            Some(value) => Some(
                value
                    .as_u64()
                    .and_then(|s| u32::try_from(s).ok())
                    .filter(|s| *s <= MAX_MIN_FILL_SECONDS)
                    .ok_or_else(|| {
                        FieldError::new(
                            "min_fill_seconds",
                            format!(
                                "must be a whole number of seconds from 0 to {MAX_MIN_FILL_SECONDS}"
                            ),
                        )
                    })?,
            ),
        };
        Ok(Self {
            captcha,
            min_fill_seconds,
        })
    }
}

fn parse_captcha(
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<CaptchaUpdate, FieldError> {
    if let Some(unknown) = fields.keys().find(|k| {
        !matches!(
            k.as_str(),
            "provider" | "site_key" | "secret" | "secret_set"
        )
    }) {
        // Keys are client text: name only how many characters the unknown one has.
        return Err(FieldError::new(
            "captcha",
            format!(
                "unknown key ({} characters); expected provider, site_key, secret",
                unknown.chars().count()
            ),
        ));
    }
    let text = |name: &str| fields.get(name).and_then(serde_json::Value::as_str);
    let provider = text("provider")
        .and_then(CaptchaProvider::parse)
        .ok_or_else(|| FieldError::new("captcha", "provider: must be turnstile or hcaptcha"))?;
    let site_key = SiteKey::parse(text("site_key").unwrap_or_default())?;
    let secret = match fields.get("secret") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
        Some(serde_json::Value::String(s)) => Some(CaptchaSecret::parse(s)?),
        Some(_) => return Err(FieldError::new("captcha", "secret: must be a string")),
    };
    Ok(CaptchaUpdate::Set {
        provider,
        site_key,
        secret,
    })
}

/// What a provider's verify answer means for the post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The token is good: store the lead.
    Passed,
    /// The provider refused the token; its error codes, for the log.
    Failed(Vec<String>),
    /// No usable answer (a 5xx, a 429, a body that is not a verify answer, or the provider's
    /// own internal error): nothing is decided, the visitor may retry.
    Unavailable(String),
}

/// Reads a verify endpoint's answer (`{"success": bool, "error-codes": [...]}`, the same for
/// Turnstile and hCaptcha).
pub fn verdict(status: u16, body: &[u8]) -> Verdict {
    if !(200..300).contains(&status) {
        return Verdict::Unavailable(format!("status {status}"));
    }
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Verdict::Unavailable("the answer is not JSON".into());
    };
    let codes: Vec<String> = answer
        .get("error-codes")
        .and_then(serde_json::Value::as_array)
        .map(|codes| {
            codes
                .iter()
                .filter_map(|c| c.as_str().map(|c| c.chars().take(60).collect()))
                .take(10)
                .collect()
        })
        .unwrap_or_default();
    match answer.get("success").and_then(serde_json::Value::as_bool) {
        Some(true) => Verdict::Passed,
        Some(false) if codes.iter().any(|c| c == "internal-error") => {
            Verdict::Unavailable("the provider reported an internal error".into())
        }
        Some(false) => Verdict::Failed(codes),
        None => Verdict::Unavailable("the answer has no success flag".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> RawFields {
        let body = serde_urlencoded::to_string(pairs).unwrap();
        RawFields::from_form(body.as_bytes()).unwrap()
    }

    fn update(body: &str) -> Result<SpamUpdate, FieldError> {
        SpamUpdate::parse(&serde_json::from_str(body).unwrap())
    }

    fn turnstile() -> SpamRules {
        SpamRules::default()
            .updated(
                update(r#"{"captcha":{"provider":"turnstile","site_key":"0x4AAA","secret":"0xSECRET"}}"#)
                    .unwrap(),
            )
            .unwrap()
    }

    #[test]
    fn no_minimum_fill_time_lets_every_post_through() {
        let rules = SpamRules::default();
        assert!(!rules.filled_too_fast(&fields(&[])));
        assert!(!rules.filled_too_fast(&fields(&[("_fill_ms", "0")])));
    }

    #[test]
    fn a_post_sooner_than_the_minimum_or_without_a_fill_time_is_too_fast() {
        let rules = SpamRules {
            min_fill_seconds: 3,
            ..SpamRules::default()
        };
        assert!(rules.filled_too_fast(&fields(&[("_fill_ms", "2999")])));
        assert!(!rules.filled_too_fast(&fields(&[("_fill_ms", "3000")])));
        assert!(rules.filled_too_fast(&fields(&[])));
        assert!(rules.filled_too_fast(&fields(&[("_fill_ms", "-5000")])));
        assert!(rules.filled_too_fast(&fields(&[("_fill_ms", "soon")])));
    }

    #[test]
    fn the_minimum_fill_time_is_0_to_60_whole_seconds() {
        assert_eq!(
            update(r#"{"min_fill_seconds":5}"#)
                .unwrap()
                .min_fill_seconds,
            Some(5)
        );
        assert_eq!(
            update(r#"{"min_fill_seconds":null}"#)
                .unwrap()
                .min_fill_seconds,
            Some(0)
        );
        assert_eq!(update("{}").unwrap().min_fill_seconds, None);
        for bad in ["61", "-1", "2.5", r#""3""#] {
            let err = update(&format!(r#"{{"min_fill_seconds":{bad}}}"#)).unwrap_err();
            assert_eq!(err.field, "min_fill_seconds", "{bad}");
        }
    }

    #[test]
    fn turning_the_captcha_on_needs_a_secret() {
        let err = SpamRules::default()
            .updated(update(r#"{"captcha":{"provider":"hcaptcha","site_key":"abc"}}"#).unwrap())
            .unwrap_err();
        assert_eq!(err.field, "captcha");
        let rules = turnstile();
        let captcha = rules.captcha.as_ref().unwrap();
        assert_eq!(captcha.provider, CaptchaProvider::Turnstile);
        assert_eq!(captcha.secret.expose(), "0xSECRET");
    }

    #[test]
    fn a_body_without_a_secret_keeps_the_stored_one_for_the_same_provider_only() {
        let rules = turnstile();
        let kept = rules
            .updated(
                update(
                    r#"{"captcha":{"provider":"turnstile","site_key":"0xNEW","secret_set":true}}"#,
                )
                .unwrap(),
            )
            .unwrap();
        let captcha = kept.captcha.unwrap();
        assert_eq!(captcha.secret.expose(), "0xSECRET");
        assert_eq!(captcha.site_key.as_ref(), "0xNEW");
        assert!(
            rules
                .updated(update(r#"{"captcha":{"provider":"hcaptcha","site_key":"k"}}"#).unwrap())
                .is_err()
        );
    }

    #[test]
    fn leaving_the_spam_fields_out_keeps_them_and_null_turns_them_off() {
        let rules = SpamRules {
            min_fill_seconds: 4,
            ..turnstile()
        };
        assert_eq!(rules.updated(update("{}").unwrap()).unwrap(), rules);
        let off = rules
            .updated(update(r#"{"captcha":null,"min_fill_seconds":0}"#).unwrap())
            .unwrap();
        assert_eq!(off, SpamRules::default());
    }

    #[test]
    fn a_captcha_body_is_checked_key_by_key() {
        for bad in [
            r#"{"captcha":true}"#,
            r#"{"captcha":{"provider":"recaptcha","site_key":"k","secret":"s"}}"#,
            r#"{"captcha":{"provider":"turnstile","site_key":"","secret":"s"}}"#,
            r#"{"captcha":{"provider":"turnstile","site_key":"k k","secret":"s"}}"#,
            r#"{"captcha":{"provider":"turnstile","site_key":"k","secret":"a b"}}"#,
            r#"{"captcha":{"provider":"turnstile","site_key":"k","secret":7}}"#,
            r#"{"captcha":{"provider":"turnstile","site_key":"k","secret":"s","colour":1}}"#,
        ] {
            assert_eq!(update(bad).unwrap_err().field, "captcha", "{bad}");
        }
    }

    #[test]
    fn stored_rules_are_parsed_again() {
        let rules = turnstile();
        let captcha = rules.captcha.as_ref().unwrap();
        assert_eq!(
            SpamRules::from_stored(
                Some(captcha.provider.as_str()),
                Some(captcha.site_key.as_ref()),
                Some(captcha.secret.expose()),
                0
            )
            .unwrap(),
            rules
        );
        assert_eq!(
            SpamRules::from_stored(None, None, None, 0).unwrap(),
            SpamRules::default()
        );
        assert!(SpamRules::from_stored(Some("turnstile"), Some("k"), None, 0).is_err());
        assert!(SpamRules::from_stored(None, None, None, 61).is_err());
    }

    #[test]
    fn the_view_shows_the_site_key_and_never_the_secret() {
        let view = serde_json::to_value(turnstile().view()).unwrap();
        assert_eq!(
            view,
            serde_json::json!({"captcha":{"provider":"turnstile","site_key":"0x4AAA","secret_set":true},"min_fill_seconds":0})
        );
        assert!(!format!("{:?}", turnstile()).contains("0xSECRET"));
    }

    #[test]
    fn the_token_is_read_from_the_providers_field() {
        let rules = turnstile();
        assert_eq!(
            SpamRules::default().captcha_token(&fields(&[])),
            CaptchaToken::NotRequired
        );
        assert_eq!(
            rules.captcha_token(&fields(&[("h-captcha-response", "tok")])),
            CaptchaToken::Missing
        );
        let posted = fields(&[("cf-turnstile-response", "tok")]);
        assert!(matches!(
            rules.captcha_token(&posted),
            CaptchaToken::Verify(_, "tok")
        ));
        let long = "x".repeat(MAX_TOKEN_CHARS + 1);
        assert_eq!(
            rules.captcha_token(&fields(&[("cf-turnstile-response", &long)])),
            CaptchaToken::Missing
        );
    }

    #[test]
    fn the_verify_body_carries_secret_token_and_a_real_ip_only() {
        let captcha = turnstile().captcha.unwrap();
        assert_eq!(
            captcha.verify_body("t&k", Some("203.0.113.9")),
            "secret=0xSECRET&response=t%26k&remoteip=203.0.113.9"
        );
        assert_eq!(
            captcha.verify_body("tok", Some("unknown")),
            "secret=0xSECRET&response=tok"
        );
    }

    #[test]
    fn a_verify_answer_passes_fails_or_decides_nothing() {
        assert_eq!(verdict(200, br#"{"success":true}"#), Verdict::Passed);
        assert_eq!(
            verdict(
                200,
                br#"{"success":false,"error-codes":["invalid-input-response"]}"#
            ),
            Verdict::Failed(vec!["invalid-input-response".into()])
        );
        for (status, body) in [
            (
                200,
                &br#"{"success":false,"error-codes":["internal-error"]}"#[..],
            ),
            (500, br#"{"success":true}"#),
            (429, b""),
            (200, b"<html>"),
            (200, b"{}"),
        ] {
            assert!(matches!(verdict(status, body), Verdict::Unavailable(_)));
        }
    }
}
