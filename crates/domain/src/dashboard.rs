//! Dashboard rules: query parameters, the opaque keyset cursor, rates, the zero-filled daily
//! series, and spreadsheet-safe CSV cells.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::{Date, Duration};

use crate::funnel::Stage;

/// A query parameter that is not acceptable; `400 invalid_query`.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{param}: {reason}")]
pub struct QueryError {
    pub param: &'static str,
    pub reason: String,
}

fn bad(param: &'static str, reason: impl Into<String>) -> QueryError {
    QueryError {
        param,
        reason: reason.into(),
    }
}

/// The stats window in days. Invariant: 1..=365.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Days(u16);

impl TryFrom<String> for Days {
    type Error = QueryError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(Some(&value))
    }
}

/// `GET /v1/dashboard/stats`'s query: `days`, default [`Days::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct StatsQuery {
    #[serde(default = "Days::default_window")]
    pub days: Days,
}

impl Days {
    pub const DEFAULT: Self = Self(30);

    fn default_window() -> Self {
        Self::DEFAULT
    }

    pub fn parse(value: Option<&str>) -> Result<Self, QueryError> {
        match value {
            None => Ok(Self::DEFAULT),
            Some(v) => v
                .parse::<u16>()
                .ok()
                .filter(|d| (1..=365).contains(d))
                .map(Self)
                .ok_or_else(|| bad("days", "must be a whole number from 1 to 365")),
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// An opaque position in a tenant's lead list, newest first. Invariant: wraps a lead id (a
/// lowercase hyphenated UUID); clients see only its base64url form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    /// The position after the lead with this id.
    pub fn after(id: &str) -> Self {
        Self(id.to_string())
    }

    pub fn parse(value: &str) -> Result<Self, QueryError> {
        let invalid = || bad("cursor", "is not a cursor this API returned");
        let bytes = URL_SAFE_NO_PAD.decode(value).map_err(|_| invalid())?;
        let id = String::from_utf8(bytes).map_err(|_| invalid())?;
        if crate::id::is_canonical_uuid(&id) {
            Ok(Self(id))
        } else {
            Err(invalid())
        }
    }

    /// The lead id the next page starts after.
    pub fn id(&self) -> &str {
        &self.0
    }

    /// What the client sends back.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }
}

/// Most leads one page may hold.
pub const MAX_PAGE: u32 = 200;

/// A validated `GET /v1/dashboard/leads` query; deserialises from the query string's
/// `stage`, `q`, `limit` and `cursor` (unknown parameters are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawLeadQuery")]
pub struct LeadQuery {
    pub stage: Option<Stage>,
    /// Lowercased search text matched against email and name.
    pub q: Option<String>,
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

/// The lead-list query as sent, before validation.
#[derive(Deserialize)]
struct RawLeadQuery {
    stage: Option<String>,
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl TryFrom<RawLeadQuery> for LeadQuery {
    type Error = QueryError;

    fn try_from(raw: RawLeadQuery) -> Result<Self, Self::Error> {
        let pairs = [
            ("stage", raw.stage),
            ("q", raw.q),
            ("limit", raw.limit),
            ("cursor", raw.cursor),
        ];
        Self::parse(
            pairs
                .iter()
                .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v))),
        )
    }
}

impl LeadQuery {
    /// From query pairs; unknown parameters are ignored.
    pub fn parse<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Result<Self, QueryError> {
        let mut query = Self {
            stage: None,
            q: None,
            limit: 50,
            cursor: None,
        };
        for (key, value) in pairs {
            match key {
                "stage" if !value.is_empty() => {
                    query.stage = Some(Stage::parse(value).ok_or_else(|| {
                        bad(
                            "stage",
                            "must be new, nurturing, engaged, converted or retained",
                        )
                    })?);
                }
                "q" => {
                    let q = value.trim();
                    if q.chars().count() > 100 {
                        return Err(bad("q", "must be at most 100 characters"));
                    }
                    query.q = Some(q.to_lowercase()).filter(|q| !q.is_empty());
                }
                "limit" => {
                    query.limit = value
                        .parse::<u32>()
                        .ok()
                        .filter(|l| (1..=MAX_PAGE).contains(l))
                        .ok_or_else(|| {
                            bad(
                                "limit",
                                format!("must be a whole number from 1 to {MAX_PAGE}"),
                            )
                        })?;
                }
                "cursor" if !value.is_empty() => query.cursor = Some(Cursor::parse(value)?),
                _ => {}
            }
        }
        Ok(query)
    }

    /// The `LIKE` pattern for `q`, with `%`, `_` and `\` escaped (use `ESCAPE '\'`).
    pub fn like_pattern(&self) -> Option<String> {
        self.q.as_ref().map(|q| {
            let escaped: String = q
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            format!("%{escaped}%")
        })
    }
}

/// `part / whole`, rounded to four decimals; 0 when `whole` is 0.
pub fn rate(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let r = part as f64 / whole as f64;
    (r * 10_000.0).round() / 10_000.0
}

/// One day of a tenant's rollup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DayCounts {
    pub leads: i64,
    pub spam: i64,
    pub emails_sent: i64,
    pub emails_opened: i64,
    pub emails_clicked: i64,
    pub conversions: i64,
    pub revenue_cents: i64,
}

impl DayCounts {
    fn add(&mut self, o: &Self) {
        self.leads += o.leads;
        self.spam += o.spam;
        self.emails_sent += o.emails_sent;
        self.emails_opened += o.emails_opened;
        self.emails_clicked += o.emails_clicked;
        self.conversions += o.conversions;
        self.revenue_cents += o.revenue_cents;
    }
}

/// A day in the series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Day {
    pub day: String,
    #[serde(flatten)]
    pub counts: DayCounts,
}

/// `YYYY-MM-DD`.
pub fn day_string(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The first day of a window of `days` ending `today` (inclusive).
pub fn window_start(today: Date, days: Days) -> Date {
    today - Duration::days(i64::from(days.get()) - 1)
}

/// The first day of `today`'s month.
pub fn month_start(today: Date) -> Date {
    Date::from_calendar_date(today.year(), today.month(), 1).unwrap_or(today)
}

/// The daily series from `from` to `to` inclusive, one entry per day, zero where the rollups
/// have no row.
pub fn daily_series(rows: &BTreeMap<String, DayCounts>, from: Date, to: Date) -> Vec<Day> {
    let mut out = Vec::new();
    let mut d = from;
    while d <= to {
        let key = day_string(d);
        out.push(Day {
            counts: rows.get(&key).copied().unwrap_or_default(),
            day: key,
        });
        match d.next_day() {
            Some(next) => d = next,
            None => break,
        }
    }
    out
}

/// Sums of the rollup days from `from` (inclusive).
pub fn sum_since(rows: &BTreeMap<String, DayCounts>, from: Date) -> DayCounts {
    let mut total = DayCounts::default();
    for (_, c) in rows.range(day_string(from)..) {
        total.add(c);
    }
    total
}

/// A CSV cell that spreadsheet apps will not run as a formula: a cell starting with `=`, `+`,
/// `-`, `@`, a tab or a carriage return gets a leading `'` (OWASP's advice).
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Today's date from a unix time.
pub fn date_of(unix: i64) -> Option<Date> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .map(time::OffsetDateTime::date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Month;

    fn date(s: &str) -> Date {
        let p: Vec<i32> = s.split('-').map(|x| x.parse().unwrap()).collect();
        Date::from_calendar_date(p[0], Month::try_from(p[1] as u8).unwrap(), p[2] as u8).unwrap()
    }

    #[test]
    fn days_default_to_30_and_must_be_1_to_365() {
        assert_eq!(Days::parse(None).unwrap().get(), 30);
        assert_eq!(Days::parse(Some("365")).unwrap().get(), 365);
        for bad in ["0", "366", "-1", "x", ""] {
            assert_eq!(Days::parse(Some(bad)).unwrap_err().param, "days", "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = Cursor::after("019a0c5e-0000-7000-8000-000000000001");
        assert_eq!(Cursor::parse(&c.encode()).unwrap(), c);
        for bad in ["", "!!", "bm90LWEtdXVpZA", "x"] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lead_queries_validate_each_parameter() {
        let q =
            LeadQuery::parse([("stage", "engaged"), ("q", " Ana "), ("limit", "200")].into_iter())
                .unwrap();
        assert_eq!(
            (q.stage, q.q.as_deref(), q.limit),
            (Some(Stage::Engaged), Some("ana"), 200)
        );
        assert_eq!(
            LeadQuery::parse([("limit", "201")].into_iter())
                .unwrap_err()
                .param,
            "limit"
        );
        assert_eq!(
            LeadQuery::parse([("limit", "0")].into_iter())
                .unwrap_err()
                .param,
            "limit"
        );
        assert_eq!(
            LeadQuery::parse([("stage", "vip")].into_iter())
                .unwrap_err()
                .param,
            "stage"
        );
        assert_eq!(
            LeadQuery::parse([("cursor", "zz")].into_iter())
                .unwrap_err()
                .param,
            "cursor"
        );
    }

    #[test]
    fn search_text_is_escaped_for_like() {
        let q = LeadQuery::parse([("q", "50%_a\\b")].into_iter()).unwrap();
        assert_eq!(q.like_pattern().as_deref(), Some("%50\\%\\_a\\\\b%"));
    }

    #[test]
    fn rates_round_and_survive_zero() {
        assert_eq!(rate(1, 3), 0.3333);
        assert_eq!(rate(5, 0), 0.0);
    }

    #[test]
    fn the_daily_series_is_zero_filled_and_inclusive() {
        let mut rows = BTreeMap::new();
        rows.insert(
            "2026-11-21".to_string(),
            DayCounts {
                leads: 2,
                ..DayCounts::default()
            },
        );
        let series = daily_series(&rows, date("2026-11-20"), date("2026-11-22"));
        let leads: Vec<(String, i64)> = series
            .iter()
            .map(|d| (d.day.clone(), d.counts.leads))
            .collect();
        assert_eq!(
            leads,
            [
                ("2026-11-20".into(), 0),
                ("2026-11-21".into(), 2),
                ("2026-11-22".into(), 0)
            ]
        );
        assert_eq!(
            window_start(date("2026-11-22"), Days::parse(Some("7")).unwrap()),
            date("2026-11-16")
        );
        assert_eq!(month_start(date("2026-11-22")), date("2026-11-01"));
        assert_eq!(sum_since(&rows, date("2026-11-21")).leads, 2);
        assert_eq!(sum_since(&rows, date("2026-11-22")).leads, 0);
    }

    #[test]
    fn cells_that_look_like_formulas_are_neutralised() {
        for (cell, safe) in [
            ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
            ("+351 9", "'+351 9"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("ana@x.co", "ana@x.co"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_safe(cell), safe);
        }
    }
}
