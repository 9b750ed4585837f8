//! Alert rules: what fires a rule, where its deliveries go, the destination guard, the retry
//! schedule and the Slack/Discord message text. Storage and delivery live in the `alerts`
//! component; docs/alerts.md is the contract.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::funnel::Stage;
use crate::lead::Volume;
use crate::tenant::{FieldError, Plan};

/// What fires a rule, as stored (`alert_rules.event`) and as the payload's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertEvent {
    #[serde(rename = "lead.captured")]
    LeadCaptured,
    #[serde(rename = "lead.stage")]
    LeadStage,
    #[serde(rename = "lead.opened")]
    LeadOpened,
    #[serde(rename = "sale")]
    Sale,
    #[serde(rename = "digest")]
    Digest,
    /// "Send test": never a rule's event, only a delivery's.
    #[serde(rename = "test")]
    Test,
}

impl AlertEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeadCaptured => "lead.captured",
            Self::LeadStage => "lead.stage",
            Self::LeadOpened => "lead.opened",
            Self::Sale => "sale",
            Self::Digest => "digest",
            Self::Test => "test",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::LeadCaptured,
            Self::LeadStage,
            Self::LeadOpened,
            Self::Sale,
            Self::Digest,
            Self::Test,
        ]
        .into_iter()
        .find(|e| e.as_str() == value)
    }
}

/// What fires a rule, with its conditions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", deny_unknown_fields)]
pub enum When {
    /// A form post stores a new lead matching every field given.
    #[serde(rename = "lead.captured")]
    LeadCaptured {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        volume: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ib_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        utm_source: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        form: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// A lead reaches the stage.
    #[serde(rename = "lead.stage")]
    LeadStage { stage: String },
    /// A lead's opened-email count reaches `opens`.
    #[serde(rename = "lead.opened")]
    LeadOpened { opens: i64 },
    /// A sale at or above the amount (in `currency`, or any).
    #[serde(rename = "sale")]
    Sale {
        min_amount_cents: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        currency: Option<String>,
    },
    /// The day's figures, after the tenant's local midnight.
    #[serde(rename = "digest")]
    Digest {
        #[serde(default = "utc")]
        timezone: String,
    },
}

fn utc() -> String {
    "UTC".to_string()
}

/// How a delivery's body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Standard Webhooks: `{"type", "timestamp", "data"}`.
    Json,
    /// A Slack incoming webhook: `{"text"}`.
    Slack,
    /// A Discord webhook: `{"content"}`.
    Discord,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Slack => "slack",
            Self::Discord => "discord",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Json, Self::Slack, Self::Discord]
            .into_iter()
            .find(|f| f.as_str() == value)
    }
}

/// Where a rule's deliveries go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub url: String,
    pub format: Format,
}

/// A rule as the API takes it (`POST`, `PUT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub when: When,
    pub destination: Destination,
}

fn yes() -> bool {
    true
}

/// Why a rule was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("{0}")]
    NotJson(String),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("destination.url: {0}")]
    Destination(#[from] DestinationRefused),
}

/// The longest rule name.
pub const MAX_NAME_CHARS: usize = 80;
/// The largest `opens` a rule may wait for.
pub const MAX_OPENS: i64 = 1000;

impl RuleInput {
    /// Parses and checks a rule; `dev_origin` is the one origin exempt from the destination
    /// guard (`alerts_dev_origin`), if set.
    pub fn parse(body: &[u8], dev_origin: Option<&str>) -> Result<Self, RuleError> {
        let mut rule: Self =
            serde_json::from_slice(body).map_err(|e| RuleError::NotJson(e.to_string()))?;
        rule.name = rule.name.trim().to_string();
        let chars = rule.name.chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS || rule.name.chars().any(char::is_control) {
            return Err(FieldError::new("name", "must be 1 to 80 characters").into());
        }
        rule.when = rule.when.checked()?;
        rule.destination.url = check_destination(&rule.destination.url, dev_origin)?;
        Ok(rule)
    }
}

/// A match value: trimmed, at most 120 characters, empty meaning "any".
fn match_value(field: &'static str, value: Option<String>) -> Result<Option<String>, FieldError> {
    let Some(value) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    if value.chars().count() > 120 || value.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must be at most 120 characters"));
    }
    Ok(Some(value))
}

impl When {
    pub fn event(&self) -> AlertEvent {
        match self {
            Self::LeadCaptured { .. } => AlertEvent::LeadCaptured,
            Self::LeadStage { .. } => AlertEvent::LeadStage,
            Self::LeadOpened { .. } => AlertEvent::LeadOpened,
            Self::Sale { .. } => AlertEvent::Sale,
            Self::Digest { .. } => AlertEvent::Digest,
        }
    }

    fn checked(self) -> Result<Self, FieldError> {
        Ok(match self {
            Self::LeadCaptured {
                volume,
                ib_type,
                utm_source,
                form,
                tag,
            } => {
                let volume = match_value("when.volume", volume)?;
                if volume
                    .as_deref()
                    .is_some_and(|v| Volume::parse(v).is_none())
                {
                    return Err(FieldError::new(
                        "when.volume",
                        "must be high, medium or low",
                    ));
                }
                Self::LeadCaptured {
                    volume,
                    ib_type: match_value("when.ib_type", ib_type)?,
                    utm_source: match_value("when.utm_source", utm_source)?,
                    form: match_value("when.form", form)?,
                    tag: match_value("when.tag", tag)?,
                }
            }
            Self::LeadStage { stage } => match Stage::parse(&stage) {
                Some(s @ (Stage::Engaged | Stage::Converted | Stage::Retained)) => {
                    Self::LeadStage {
                        stage: s.as_str().to_string(),
                    }
                }
                _ => {
                    return Err(FieldError::new(
                        "when.stage",
                        "must be engaged, converted or retained",
                    ));
                }
            },
            Self::LeadOpened { opens } if (1..=MAX_OPENS).contains(&opens) => {
                Self::LeadOpened { opens }
            }
            Self::LeadOpened { .. } => {
                return Err(FieldError::new("when.opens", "must be 1 to 1000"));
            }
            Self::Sale {
                min_amount_cents,
                currency,
            } => checked_sale(min_amount_cents, currency)?,
            Self::Digest { timezone } => {
                let timezone = timezone.trim().to_string();
                if jiff::tz::TimeZone::get(&timezone).is_err() {
                    return Err(FieldError::new(
                        "when.timezone",
                        "must be an IANA time zone name, like Europe/Berlin",
                    ));
                }
                Self::Digest { timezone }
            }
        })
    }
}

/// A sale rule's amount (0 or more) and currency (ISO 4217, upper-cased), checked.
fn checked_sale(min_amount_cents: i64, currency: Option<String>) -> Result<When, FieldError> {
    if min_amount_cents < 0 {
        return Err(FieldError::new(
            "when.min_amount_cents",
            "must be 0 or more",
        ));
    }
    let currency = match_value("when.currency", currency)?.map(|c| c.to_ascii_uppercase());
    if currency
        .as_deref()
        .is_some_and(|c| c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(FieldError::new(
            "when.currency",
            "must be a three-letter ISO 4217 code",
        ));
    }
    Ok(When::Sale {
        min_amount_cents,
        currency,
    })
}

/// Why a destination URL is refused.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum DestinationRefused {
    #[error("must be an absolute URL")]
    NotAUrl,
    #[error("must be at most 2048 bytes")]
    TooLong,
    #[error("must use https")]
    NotHttps,
    #[error("must use port 443")]
    NotPort443,
    #[error("must name a host, not an IP address")]
    IpLiteral,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("must be a public host name, not {0}")]
    PrivateName(String),
}

/// Names that only resolve inside a network or never resolve publicly (RFC 6761, RFC 6762,
/// RFC 8375, RFC 7686, `.internal`, and Kubernetes' `.svc`).
const PRIVATE_SUFFIXES: [&str; 11] = [
    ".localhost",
    ".local",
    ".internal",
    ".home.arpa",
    ".lan",
    ".localdomain",
    ".svc",
    ".test",
    ".invalid",
    ".example",
    ".onion",
];

/// The longest destination URL.
pub const MAX_URL_BYTES: usize = 2048;

/// Checks a destination URL and answers it normalised. `dev_origin` (scheme://host:port) is
/// the one origin exempt, for development and tests.
pub fn check_destination(
    value: &str,
    dev_origin: Option<&str>,
) -> Result<String, DestinationRefused> {
    if value.len() > MAX_URL_BYTES {
        return Err(DestinationRefused::TooLong);
    }
    let url = url::Url::parse(value.trim()).map_err(|_| DestinationRefused::NotAUrl)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DestinationRefused::Credentials);
    }
    let exempt = dev_origin
        .filter(|o| !o.is_empty())
        .is_some_and(|o| url.origin().ascii_serialization() == o.trim_end_matches('/'));
    if exempt {
        return Ok(url.to_string());
    }
    if url.scheme() != "https" {
        return Err(DestinationRefused::NotHttps);
    }
    if url.port().is_some_and(|p| p != 443) {
        return Err(DestinationRefused::NotPort443);
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => return Err(DestinationRefused::IpLiteral),
        None => return Err(DestinationRefused::NotAUrl),
    };
    let private = host == "localhost"
        || !host.contains('.')
        || PRIVATE_SUFFIXES.iter().any(|s| host.ends_with(s));
    if private {
        return Err(DestinationRefused::PrivateName(host));
    }
    Ok(url.to_string())
}

/// Seconds before retry `n` (1-based) of a delivery that got no `2xx`: 1 min, 5 min, 30 min,
/// 2 h, 6 h, then every 24 h.
pub fn retry_after(attempts: i64) -> i64 {
    match attempts {
        ..=1 => 60,
        2 => 300,
        3 => 1_800,
        4 => 7_200,
        5 => 21_600,
        _ => 86_400,
    }
}

/// A rule whose deliveries have failed this long is switched off.
pub const GIVE_UP_AFTER_SECS: i64 = 3 * 86_400;

/// What a plan allows for alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AlertLimits {
    pub rules: u64,
    pub deliveries_per_day: u64,
}

/// Starter: 3 rules, 200 deliveries a day; pro: 20 and 2,000; enterprise: 100 and 20,000.
pub fn limits(plan: Plan) -> AlertLimits {
    let (rules, deliveries_per_day) = match plan {
        Plan::Starter => (3, 200),
        Plan::Pro => (20, 2_000),
        Plan::Enterprise => (100, 20_000),
    };
    AlertLimits {
        rules,
        deliveries_per_day,
    }
}

fn text<'a>(data: &'a Value, pointer: &str) -> Option<&'a str> {
    data.pointer(pointer).and_then(Value::as_str)
}

fn int(data: &Value, pointer: &str) -> i64 {
    data.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The one line a Slack or Discord delivery carries.
pub fn message_text(event: AlertEvent, rule_name: &str, data: &Value) -> String {
    let who = text(data, "/lead/email").unwrap_or("a lead");
    let line = match event {
        AlertEvent::LeadCaptured => {
            let volume = text(data, "/lead/monthly_leads")
                .map(|v| format!(", {v} leads a month"))
                .unwrap_or_default();
            format!("New lead {who}{volume}")
        }
        AlertEvent::LeadStage => format!(
            "{who} reached the {} stage",
            text(data, "/lead/stage").unwrap_or("next")
        ),
        AlertEvent::LeadOpened => format!(
            "{who} has opened {} emails",
            int(data, "/lead/emails_opened")
        ),
        AlertEvent::Sale => format!(
            "Sale of {} {} by {who}",
            money(int(data, "/sale/amount_cents")),
            text(data, "/sale/currency")
                .unwrap_or("")
                .to_ascii_uppercase()
        ),
        AlertEvent::Digest => format!(
            "{}: {} leads, {} conversions, revenue {}",
            text(data, "/digest/day").unwrap_or(""),
            int(data, "/digest/leads"),
            int(data, "/digest/conversions"),
            revenue_text(data.pointer("/digest/revenue")),
        ),
        AlertEvent::Test => "Test alert from ClientFlow Edge".to_string(),
    };
    format!("{rule_name}: {}", line.trim_end())
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

/// `{"USD": 1000, "EUR": 50}` as `10.00 USD, 0.50 EUR`; never summed across currencies.
fn revenue_text(revenue: Option<&Value>) -> String {
    let parts: Vec<String> = revenue
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(c, v)| format!("{} {c}", money(v.as_i64().unwrap_or(0))))
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty() {
        "0".to_string()
    } else {
        parts.join(", ")
    }
}

/// The body of a delivery in `format`: Standard Webhooks' `{"type", "timestamp", "data"}` for
/// `json`, a message for Slack or Discord.
pub fn body(
    format: Format,
    event: AlertEvent,
    rule_name: &str,
    timestamp: &str,
    data: &Value,
) -> Value {
    match format {
        Format::Json => {
            serde_json::json!({"type": event.as_str(), "timestamp": timestamp, "data": data})
        }
        // Slack reads `<…>` as links and mentions (`<!channel>`), so the text is escaped as
        // Slack asks; Discord is told to ping no one, whatever a visitor typed.
        Format::Slack => {
            serde_json::json!({"text": slack_escaped(&message_text(event, rule_name, data))})
        }
        Format::Discord => serde_json::json!({"content": message_text(event, rule_name, data),
            "allowed_mentions": {"parse": []}}),
    }
}

/// Slack's escaping of `&`, `<` and `>` in message text.
fn slack_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The tenant-local day that ended most recently at `now` (Unix seconds), with its start and
/// end as Unix seconds: the day a digest sent at `now` reports.
pub fn last_full_day(timezone: &str, now: i64) -> Option<(String, i64, i64)> {
    let tz = jiff::tz::TimeZone::get(timezone).ok()?;
    let now = jiff::Timestamp::from_second(now).ok()?.to_zoned(tz.clone());
    let today = now.date();
    let yesterday = today.yesterday().ok()?;
    let start = yesterday.to_zoned(tz.clone()).ok()?.timestamp().as_second();
    let end = today.to_zoned(tz).ok()?.timestamp().as_second();
    Some((yesterday.to_string(), start, end))
}

/// The tenant-local date of `at` (Unix seconds).
pub fn local_date(timezone: &str, at: i64) -> Option<String> {
    let tz = jiff::tz::TimeZone::get(timezone).ok()?;
    Some(
        jiff::Timestamp::from_second(at)
            .ok()?
            .to_zoned(tz)
            .date()
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> Result<RuleInput, RuleError> {
        RuleInput::parse(json.as_bytes(), Some("http://127.0.0.1:9999"))
    }

    #[test]
    fn a_rule_parses_with_its_conditions_and_defaults() {
        let r = rule(
            r#"{"name":" VIP ","when":{"event":"lead.captured","volume":"high","form":""},
            "destination":{"url":"https://hooks.example.com/x","format":"slack"}}"#,
        )
        .unwrap();
        assert_eq!(r.name, "VIP");
        assert!(r.enabled);
        assert_eq!(
            r.when,
            When::LeadCaptured {
                volume: Some("high".into()),
                ib_type: None,
                utm_source: None,
                form: None,
                tag: None
            }
        );
        assert_eq!(r.destination.format, Format::Slack);
    }

    #[test]
    fn bad_fields_name_the_field() {
        let cases = [
            (
                r#"{"name":"","when":{"event":"digest"},"destination":{"url":"https://a.example.com","format":"json"}}"#,
                "name",
            ),
            (
                r#"{"name":"x","when":{"event":"lead.opened","opens":0},"destination":{"url":"https://a.example.com","format":"json"}}"#,
                "when.opens",
            ),
            (
                r#"{"name":"x","when":{"event":"lead.stage","stage":"new"},"destination":{"url":"https://a.example.com","format":"json"}}"#,
                "when.stage",
            ),
            (
                r#"{"name":"x","when":{"event":"sale","min_amount_cents":-1},"destination":{"url":"https://a.example.com","format":"json"}}"#,
                "when.min_amount_cents",
            ),
            (
                r#"{"name":"x","when":{"event":"sale","min_amount_cents":1,"currency":"dollars"},"destination":{"url":"https://a.example.com","format":"json"}}"#,
                "when.currency",
            ),
            (
                r#"{"name":"x","when":{"event":"digest","timezone":"Mars/Base"},"destination":{"url":"https://a.example.com","format":"json"}}"#,
                "when.timezone",
            ),
            (
                r#"{"name":"x","when":{"event":"lead.captured","volume":"huge"},"destination":{"url":"https://a.example.com","format":"json"}}"#,
                "when.volume",
            ),
        ];
        for (json, field) in cases {
            match rule(json) {
                Err(RuleError::Field(f)) => assert_eq!(f.field, field, "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
        assert!(matches!(
            rule(r#"{"name":"x"}"#),
            Err(RuleError::NotJson(_))
        ));
        assert!(matches!(
            rule(
                r#"{"name":"x","when":{"event":"digest"},"destination":{"url":"https://a.example.com","format":"sms"}}"#
            ),
            Err(RuleError::NotJson(_))
        ));
    }

    #[test]
    fn the_destination_guard_refuses_what_could_reach_inside() {
        use DestinationRefused::*;
        let refused = [
            ("http://hooks.example.com/x", NotHttps),
            ("https://hooks.example.com:8443/x", NotPort443),
            ("https://127.0.0.1/x", IpLiteral),
            ("https://10.0.0.8/x", IpLiteral),
            ("https://[::1]/x", IpLiteral),
            ("https://169.254.169.254/latest", IpLiteral),
            ("https://2130706433/x", IpLiteral),
            ("https://0x7f.1/x", IpLiteral),
            ("https://localhost/x", PrivateName("localhost".into())),
            ("https://db.localhost/x", PrivateName("db.localhost".into())),
            (
                "https://printer.local/x",
                PrivateName("printer.local".into()),
            ),
            (
                "https://metadata.google.internal/x",
                PrivateName("metadata.google.internal".into()),
            ),
            ("https://intranet/x", PrivateName("intranet".into())),
            ("https://user:pw@hooks.example.com/x", Credentials),
            ("ftp://hooks.example.com/x", NotHttps),
            ("not a url", NotAUrl),
            (
                "https://kubernetes.default.svc/x",
                PrivateName("kubernetes.default.svc".into()),
            ),
            (
                "https://hooks.example/x",
                PrivateName("hooks.example".into()),
            ),
            ("http://127.0.0.1:9998/x", NotHttps),
        ];
        for (url, why) in refused {
            assert_eq!(
                check_destination(url, Some("http://127.0.0.1:9999")),
                Err(why),
                "{url}"
            );
        }
        assert_eq!(
            check_destination("https://hooks.example.com:443/x?a=1", None).unwrap(),
            "https://hooks.example.com/x?a=1"
        );
        assert!(
            check_destination("http://127.0.0.1:9999/hook", Some("http://127.0.0.1:9999")).is_ok()
        );
        assert!(check_destination("http://127.0.0.1:9999/hook", None).is_err());
    }

    #[test]
    fn retries_back_off_to_a_day() {
        let schedule: Vec<i64> = (1..=8).map(retry_after).collect();
        assert_eq!(
            schedule,
            [60, 300, 1_800, 7_200, 21_600, 86_400, 86_400, 86_400]
        );
    }

    #[test]
    fn the_last_full_day_follows_the_time_zone() {
        // 2026-12-07T01:30:00Z: already the 7th in UTC and Berlin, still the 6th in New York.
        let now = 1_796_607_000;
        assert_eq!(local_date("UTC", now).unwrap(), "2026-12-07");
        let (day, start, end) = last_full_day("Europe/Berlin", now).unwrap();
        assert_eq!(day, "2026-12-06");
        assert_eq!(end - start, 86_400);
        assert_eq!(
            last_full_day("America/New_York", now).unwrap().0,
            "2026-12-05"
        );
    }

    #[test]
    fn chat_messages_name_the_rule_and_never_sum_currencies() {
        let data = serde_json::json!({"digest": {"day": "2026-12-06", "leads": 4, "conversions": 1,
            "revenue": {"EUR": 1050, "USD": 20000}}});
        assert_eq!(
            message_text(AlertEvent::Digest, "Daily", &data),
            "Daily: 2026-12-06: 4 leads, 1 conversions, revenue 10.50 EUR, 200.00 USD"
        );
        let sale = serde_json::json!({"lead": {"email": "a@b.co"}, "sale": {"amount_cents": 50000, "currency": "USD"}});
        assert_eq!(
            body(Format::Discord, AlertEvent::Sale, "Big", "t", &sale)["content"],
            "Big: Sale of 500.00 USD by a@b.co"
        );
    }

    #[test]
    fn a_visitors_text_cannot_ping_or_link_in_chat() {
        let sneaky = serde_json::json!({"lead": {"email": "a@b.co",
            "monthly_leads": "<!channel> <https://evil.example|verify>"}});
        let slack = body(Format::Slack, AlertEvent::LeadCaptured, "New", "t", &sneaky);
        assert_eq!(
            slack["text"],
            "New: New lead a@b.co, &lt;!channel&gt; &lt;https://evil.example|verify&gt; leads a month"
        );
        let discord = body(
            Format::Discord,
            AlertEvent::LeadCaptured,
            "New",
            "t",
            &sneaky,
        );
        assert_eq!(
            discord["allowed_mentions"],
            serde_json::json!({"parse": []})
        );
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert_eq!(
            check_destination(&long, None),
            Err(DestinationRefused::TooLong)
        );
    }
}
