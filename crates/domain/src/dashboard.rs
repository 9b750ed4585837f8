//! Dashboard rules: query parameters, the opaque keyset cursor, rates, the zero-filled daily
//! series, and spreadsheet-safe CSV cells.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::{Date, Duration};

use crate::funnel::Stage;
use crate::lead::SyncStatus;

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

/// Longest stats window, in days, whether named by `days` or by `from`/`to`.
pub const MAX_WINDOW_DAYS: i64 = 365;

/// `GET /v1/dashboard/stats`'s query as sent: `days`, or a `from`/`to` pair of dates.
#[derive(Debug, Default, Deserialize)]
pub struct RawStatsQuery {
    pub days: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Why a stats query is refused: a value that does not parse (`400 invalid_query`), or dates
/// that parse but make no window (`422 invalid_range`).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum StatsQueryError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("{0}")]
    Range(&'static str),
}

/// The days a stats answer covers. Invariant: `from <= to`, at most [`MAX_WINDOW_DAYS`] days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsWindow {
    from: Date,
    to: Date,
}

/// A validated stats query: the last `days` days up to today, or the dates between `from` and
/// `to` (both inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsQuery {
    Last(Days),
    Between(StatsWindow),
}

impl StatsQuery {
    /// `days` alone (default [`Days::DEFAULT`]), or `from` and `to` together without `days`.
    pub fn parse(raw: &RawStatsQuery) -> Result<Self, StatsQueryError> {
        match (raw.days.as_deref(), raw.from.as_deref(), raw.to.as_deref()) {
            (days, None, None) => Ok(Self::Last(Days::parse(days)?)),
            (None, Some(from), Some(to)) => {
                let from = parse_date("from", from)?;
                let to = parse_date("to", to)?;
                Ok(Self::Between(StatsWindow::new(from, to)?))
            }
            (Some(_), _, _) => Err(StatsQueryError::Range(
                "send either days or from and to, not both",
            )),
            _ => Err(StatsQueryError::Range("from and to go together: send both")),
        }
    }

    /// The window this query names on `today`.
    pub fn window(self, today: Date) -> StatsWindow {
        match self {
            Self::Last(days) => StatsWindow {
                from: window_start(today, days),
                to: today,
            },
            Self::Between(window) => window,
        }
    }
}

impl StatsWindow {
    pub fn new(from: Date, to: Date) -> Result<Self, StatsQueryError> {
        if from > to {
            return Err(StatsQueryError::Range("from must not be after to"));
        }
        if (to - from).whole_days() >= MAX_WINDOW_DAYS {
            return Err(StatsQueryError::Range(
                "the range may span at most 365 days (from and to included)",
            ));
        }
        Ok(Self { from, to })
    }

    pub fn from(self) -> Date {
        self.from
    }

    pub fn to(self) -> Date {
        self.to
    }

    /// Days in the window, `from` and `to` included: 1..=365.
    pub fn days(self) -> u16 {
        u16::try_from((self.to - self.from).whole_days() + 1).unwrap_or(u16::MAX)
    }

    /// The window of as many days that ends the day before this one starts.
    pub fn previous(self) -> Self {
        let len = Duration::days(i64::from(self.days()));
        Self {
            from: self.from - len,
            to: self.from - Duration::days(1),
        }
    }
}

/// A `YYYY-MM-DD` date; `400 invalid_query` naming `param` otherwise.
pub fn parse_date(param: &'static str, value: &str) -> Result<Date, QueryError> {
    let invalid = || bad(param, "must be a date like 2026-11-30");
    let mut parts = value.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(invalid());
    }
    let year = y.parse::<i32>().map_err(|_| invalid())?;
    let month = m
        .parse::<u8>()
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(invalid)?;
    let day = d.parse::<u8>().map_err(|_| invalid())?;
    Date::from_calendar_date(year, month, day).map_err(|_| invalid())
}

impl Days {
    pub const DEFAULT: Self = Self(30);

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

/// The order of a lead list: by capture, newest first (the default) or oldest first. Lead ids
/// are time-ordered (UUIDv7), so id order is capture order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    NewestFirst,
    OldestFirst,
}

impl Sort {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "newest" => Some(Self::NewestFirst),
            "oldest" => Some(Self::OldestFirst),
            _ => None,
        }
    }
}

/// A validated `GET /v1/dashboard/leads` query; deserialises from the query string's
/// `stage`, `q`, the exact-match filters, `from`/`to`, `sort`, `limit` and `cursor` (unknown
/// parameters are ignored; an empty value is no filter).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawLeadQuery")]
pub struct LeadQuery {
    pub stage: Option<Stage>,
    /// Lowercased search text matched against email and name.
    pub q: Option<String>,
    /// Captured on or after this day (UTC).
    pub from: Option<Date>,
    /// Captured on or before this day (UTC).
    pub to: Option<Date>,
    /// `capture` or `systeme`.
    pub source: Option<String>,
    pub sync: Option<SyncStatus>,
    /// A tag the lead holds, as listed on it.
    pub tag: Option<String>,
    /// A breakdown's value: the lead's `ib_type`, `volume` or `utm_source` is exactly this.
    pub ib_type: Option<String>,
    pub volume: Option<String>,
    pub utm_source: Option<String>,
    pub sort: Sort,
    pub limit: u32,
    /// Valid for the `sort` of the page that returned it.
    pub cursor: Option<Cursor>,
}

/// The lead-list query as sent, before validation.
#[derive(Deserialize)]
struct RawLeadQuery {
    stage: Option<String>,
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
    source: Option<String>,
    sync: Option<String>,
    tag: Option<String>,
    ib_type: Option<String>,
    volume: Option<String>,
    utm_source: Option<String>,
    sort: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl TryFrom<RawLeadQuery> for LeadQuery {
    type Error = QueryError;

    fn try_from(raw: RawLeadQuery) -> Result<Self, Self::Error> {
        let pairs = [
            ("stage", raw.stage),
            ("q", raw.q),
            ("from", raw.from),
            ("to", raw.to),
            ("source", raw.source),
            ("sync", raw.sync),
            ("tag", raw.tag),
            ("ib_type", raw.ib_type),
            ("volume", raw.volume),
            ("utm_source", raw.utm_source),
            ("sort", raw.sort),
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

/// Longest value an exact-match filter (`tag`, `ib_type`, `volume`, `utm_source`) may have.
const MAX_FILTER_CHARS: usize = 200;

/// An exact-match filter's value: `None` when empty, refused when longer than
/// [`MAX_FILTER_CHARS`].
fn exact(param: &'static str, value: &str) -> Result<Option<String>, QueryError> {
    if value.chars().count() > MAX_FILTER_CHARS {
        return Err(bad(
            param,
            format!("must be at most {MAX_FILTER_CHARS} characters"),
        ));
    }
    Ok(Some(value.to_string()).filter(|v| !v.is_empty()))
}

impl LeadQuery {
    /// From query pairs; unknown parameters are ignored.
    pub fn parse<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Result<Self, QueryError> {
        let mut query = Self {
            stage: None,
            q: None,
            from: None,
            to: None,
            source: None,
            sync: None,
            tag: None,
            ib_type: None,
            volume: None,
            utm_source: None,
            sort: Sort::default(),
            limit: 50,
            cursor: None,
        };
        for (key, value) in pairs {
            match key {
                "from" if !value.is_empty() => query.from = Some(parse_date("from", value)?),
                "to" if !value.is_empty() => query.to = Some(parse_date("to", value)?),
                "source" if !value.is_empty() => {
                    query.source = Some(
                        ["capture", "systeme"]
                            .into_iter()
                            .find(|s| *s == value)
                            .ok_or_else(|| bad("source", "must be capture or systeme"))?
                            .to_string(),
                    );
                }
                "sync" if !value.is_empty() => {
                    query.sync =
                        Some(SyncStatus::parse(value).ok_or_else(|| {
                            bad("sync", "must be pending, synced, failed or held")
                        })?);
                }
                "tag" => query.tag = exact("tag", value)?,
                "ib_type" => query.ib_type = exact("ib_type", value)?,
                "volume" => query.volume = exact("volume", value)?,
                "utm_source" => query.utm_source = exact("utm_source", value)?,
                "sort" if !value.is_empty() => {
                    query.sort = Sort::parse(value)
                        .ok_or_else(|| bad("sort", "must be newest or oldest"))?;
                }
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

    /// The first instant (`YYYY-MM-DD`, compared with RFC 3339 text) a lead may have been
    /// captured at, and the first it may not: `to`'s next day.
    pub fn captured_between(&self) -> (Option<String>, Option<String>) {
        (
            self.from.map(day_string),
            self.to.and_then(Date::next_day).map(day_string),
        )
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

/// An amount in one currency. Invariant: `currency` is a three-letter code in capitals, or
/// `None` when the sale named no (readable) currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Money {
    pub currency: Option<String>,
    pub cents: i64,
}

/// A currency as Systeme.io names it (`eur`), as an ISO 4217 code (`EUR`); `None` for
/// anything that is not three ASCII letters.
pub fn currency_code(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|c| c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()))
        .map(str::to_ascii_uppercase)
}

/// Signed amounts (a cancellation negative) summed per currency: largest total first, then by
/// code; currencies that sum to zero are left out.
pub fn by_currency(amounts: impl IntoIterator<Item = (Option<String>, i64)>) -> Vec<Money> {
    let mut sums: BTreeMap<Option<String>, i64> = BTreeMap::new();
    for (currency, cents) in amounts {
        let sum = sums.entry(currency_code(currency.as_deref())).or_default();
        *sum = sum.saturating_add(cents);
    }
    let mut out: Vec<Money> = sums
        .into_iter()
        .filter(|(_, cents)| *cents != 0)
        .map(|(currency, cents)| Money { currency, cents })
        .collect();
    out.sort_by(|a, b| {
        b.cents
            .cmp(&a.cents)
            .then_with(|| a.currency.cmp(&b.currency))
    });
    out
}

/// Sums of the rollup days from `from` to `to`, both included.
pub fn sum_between(rows: &BTreeMap<String, DayCounts>, from: Date, to: Date) -> DayCounts {
    let mut total = DayCounts::default();
    for (_, c) in rows.range(day_string(from)..=day_string(to)) {
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
    fn a_stats_query_is_days_or_a_range_of_one_to_365_days() {
        let raw = |days: Option<&str>, from: Option<&str>, to: Option<&str>| RawStatsQuery {
            days: days.map(String::from),
            from: from.map(String::from),
            to: to.map(String::from),
        };
        let today = date("2026-11-22");
        let last7 = StatsQuery::parse(&raw(Some("7"), None, None)).unwrap();
        assert_eq!(last7.window(today).from(), date("2026-11-16"));
        let between = StatsQuery::parse(&raw(None, Some("2026-01-01"), Some("2026-12-31")))
            .unwrap()
            .window(today);
        assert_eq!((between.days(), between.to()), (365, date("2026-12-31")));
        let one = StatsQuery::parse(&raw(None, Some("2026-03-01"), Some("2026-03-01"))).unwrap();
        assert_eq!(one.window(today).days(), 1);
        for (from, to) in [("2026-01-01", "2027-01-01"), ("2026-03-02", "2026-03-01")] {
            assert!(matches!(
                StatsQuery::parse(&raw(None, Some(from), Some(to))),
                Err(StatsQueryError::Range(_))
            ));
        }
        for r in [
            raw(None, Some("2026-03-01"), None),
            raw(None, None, Some("2026-03-01")),
            raw(Some("7"), Some("2026-03-01"), Some("2026-03-02")),
        ] {
            assert!(matches!(
                StatsQuery::parse(&r),
                Err(StatsQueryError::Range(_))
            ));
        }
        for bad in ["2026-3-01", "2026-02-30", "x", "", "2026-03-01T00:00"] {
            assert!(
                matches!(
                    StatsQuery::parse(&raw(None, Some(bad), Some("2026-03-01"))),
                    Err(StatsQueryError::Query(QueryError { param: "from", .. }))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_previous_window_is_as_long_and_ends_the_day_before() {
        let w = StatsWindow::new(date("2026-03-01"), date("2026-03-10")).unwrap();
        let p = w.previous();
        assert_eq!(
            (p.from(), p.to(), p.days()),
            (date("2026-02-19"), date("2026-02-28"), 10)
        );
    }

    #[test]
    fn lead_filters_parse_and_refuse_unknown_values() {
        let q = LeadQuery::parse(
            [
                ("sort", "oldest"),
                ("from", "2026-03-01"),
                ("to", "2026-03-31"),
                ("sync", "failed"),
                ("source", "capture"),
                ("tag", "ib-1-webinar"),
                ("utm_source", "google"),
                ("ib_type", ""),
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(q.sort, Sort::OldestFirst);
        assert_eq!(q.sync, Some(SyncStatus::Failed));
        assert_eq!(q.ib_type, None);
        assert_eq!(
            q.captured_between(),
            (Some("2026-03-01".into()), Some("2026-04-01".into()))
        );
        for (param, value) in [
            ("sort", "up"),
            ("sync", "lost"),
            ("source", "api"),
            ("from", "yesterday"),
        ] {
            assert_eq!(
                LeadQuery::parse([(param, value)].into_iter())
                    .unwrap_err()
                    .param,
                param
            );
        }
    }

    #[test]
    fn money_is_summed_per_currency_as_sold() {
        let sums = by_currency([
            (Some("eur".to_string()), 19_900),
            (Some("EUR".to_string()), 100),
            (Some("usd".to_string()), 5_000),
            (Some("usd".to_string()), -5_000),
            (Some("euro".to_string()), 7),
            (None, 3),
        ]);
        assert_eq!(
            sums,
            [
                Money {
                    currency: Some("EUR".into()),
                    cents: 20_000
                },
                Money {
                    currency: None,
                    cents: 10
                },
            ]
        );
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
