//! A tenant's dashboard reads: stats, the lead list, one lead with its timeline, erasure, and
//! the CSV export's pages. Built only from a verified tenant ([`Dashboard::new`]); every
//! statement goes through [`TenantDb`].

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use domain::dashboard::{
    Cursor, Day, DayCounts, Days, LeadQuery, Money, Sort, StatsQuery, StatsWindow, by_currency,
    daily_series, date_of, day_string, month_start, rate, sum_between, window_start,
};
use domain::funnel::Stage;
use domain::id::LeadId;
use domain::lead::{SyncStatus, erasure_key};
use domain::settings::SyncRules;
use domain::spam::SpamRules;
use domain::tags::Tag;
use platform::ApiError;
use platform::db::{FromRow, Row};
use platform::scope::TenantDb;
use platform::tenant::TenantContext;
use platform::tenant_sql;
use serde::Serialize;
use serde_json::Value as Json;
use spin_sdk::sqlite::Value;

/// The tenant's dashboard.
pub struct Dashboard {
    db: TenantDb,
}

impl Dashboard {
    /// The verified tenant's dashboard.
    pub fn new(ctx: &TenantContext) -> Result<Self, ApiError> {
        Ok(Self { db: ctx.db()? })
    }
}

/// The `404` for a lead that is not this tenant's: missing, malformed and foreign ids answer
/// alike, so ids cannot be probed.
pub fn lead_not_found() -> ApiError {
    ApiError::NotFound {
        code: "lead_not_found",
        detail: "no such lead".into(),
    }
}

/// What every lead-list statement adds after its stage condition: the search (`?4`), the page
/// size (`?5`), the captured-date bounds (`?6`, `?7`), the exact filters (`?8` source, `?9`
/// sync status, `?10` tag, `?11` ib_type, `?12` volume, `?13` utm_source); each statement
/// then compares the cursor (`?3`) and orders one way (`<`/`DESC`, newest first) or the other.
/// The cursor comparison is an index range only while `?3` is never NULL, so a first page binds
/// [`BEFORE_EVERY_ID`] or [`AFTER_NO_ID`].
macro_rules! lead_page_filters {
    () => {
        " AND (?4 IS NULL OR email LIKE ?4 ESCAPE '\\' OR lower(name) LIKE ?4 ESCAPE '\\')
            AND (?6 IS NULL OR created_at >= ?6) AND (?7 IS NULL OR created_at < ?7)
            AND (?8 IS NULL OR source = ?8) AND (?9 IS NULL OR sync_status = ?9)
            AND (?10 IS NULL OR EXISTS (SELECT 1 FROM json_each(leads.tags) WHERE value = ?10))
            AND (?11 IS NULL OR ib_type = ?11) AND (?12 IS NULL OR volume = ?12)
            AND (?13 IS NULL OR utm_source = ?13)"
    };
}

/// The cursor of a first page newest first: sorts after every lead id (lowercase hyphenated
/// UUID text, compared byte by byte).
const BEFORE_EVERY_ID: &str = "~";

/// The cursor of a first page oldest first: sorts before every lead id.
const AFTER_NO_ID: &str = "";

/// The columns [`LeadView`] reads, for every statement that returns leads.
macro_rules! lead_view_columns {
    () => {
        "id, email, name, phone, ib_type, monthly_leads, volume, broker_network, form,
        utm_source, utm_medium, utm_campaign, utm_term, utm_content, gclid, fbclid, ttclid, referrer,
        page_url, consent, tags, kept_back_tags, source, stage,
        sync_status, sync_attempts, sync_error, held_for_consent, emails_sent, emails_opened, emails_clicked, sales,
        revenue_cents, opted_in, inactive, churned, created_at, updated_at"
    };
}

#[derive(Debug, Serialize)]
pub struct Window {
    pub days: u16,
    pub from: String,
    pub to: String,
}

/// One window's sums from the rollups, with its revenue per currency as sold.
#[derive(Debug, Serialize)]
pub struct Period {
    pub from: String,
    pub to: String,
    pub days: u16,
    #[serde(flatten)]
    pub counts: DayCounts,
    /// Sales minus cancellations per currency, from the sale events of leads the tenant still
    /// holds (an erased lead's sales stay in `revenue_cents` only).
    pub revenue: Vec<Money>,
}

#[derive(Debug, Serialize)]
pub struct LeadTotals {
    /// Leads stored now (all time, minus erased ones).
    pub total: i64,
    pub this_month: i64,
    pub last_7_days: i64,
    pub in_window: i64,
}

#[derive(Debug, Serialize)]
pub struct Funnel {
    pub capture: i64,
    pub nurture: i64,
    pub convert: i64,
    pub retain: i64,
}

#[derive(Debug, Serialize)]
pub struct Emails {
    pub sent: i64,
    pub opened: i64,
    pub clicked: i64,
    /// opened / sent
    pub open_rate: f64,
    /// clicked / sent
    pub click_rate: f64,
}

#[derive(Debug, Serialize)]
pub struct Conversions {
    /// Leads converted (or retained) / all leads.
    pub rate: f64,
    pub converted_leads: i64,
    pub in_window: i64,
}

#[derive(Debug, Serialize, Default)]
pub struct SyncHealth {
    pub synced: i64,
    pub pending: i64,
    pub failed: i64,
    pub held: i64,
}

#[derive(Debug, Serialize)]
pub struct Bucket {
    /// `null` for leads without a value.
    pub value: Option<String>,
    pub leads: i64,
}

#[derive(Debug, Serialize)]
pub struct Breakdowns {
    pub ib_type: Vec<Bucket>,
    pub volume: Vec<Bucket>,
    pub utm_source: Vec<Bucket>,
}

/// `GET /v1/dashboard/stats`.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub window: Window,
    pub leads: LeadTotals,
    pub funnel: Funnel,
    pub stages: BTreeMap<&'static str, i64>,
    pub emails: Emails,
    pub conversions: Conversions,
    pub revenue_cents: i64,
    pub sync: SyncHealth,
    pub spam: i64,
    pub breakdowns: Breakdowns,
    pub daily: Vec<Day>,
    /// The window's sums, and those of the window of as many days just before it, for
    /// period-over-period comparison.
    pub period: Period,
    pub previous: Period,
}

/// Most buckets listed per breakdown (largest first).
const MAX_BUCKETS: usize = 20;

/// One lead as the dashboard shows it, read by column name ([`lead_view_columns!`]).
#[derive(Debug, Serialize)]
pub struct LeadView {
    pub id: LeadId,
    pub email: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub ib_type: Option<String>,
    pub monthly_leads: Option<String>,
    pub volume: Option<String>,
    pub broker_network: Option<String>,
    pub form: String,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    pub gclid: Option<String>,
    pub fbclid: Option<String>,
    pub ttclid: Option<String>,
    pub referrer: Option<String>,
    pub page_url: Option<String>,
    pub consent: bool,
    pub tags: Vec<Tag>,
    /// Tags the tenant's tag budget kept back from Systeme.io (stored, never synced).
    pub tags_kept_back: Vec<Tag>,
    pub source: String,
    pub stage: Stage,
    pub sync_status: SyncStatus,
    pub sync_attempts: i64,
    /// Why the last sync attempt failed (`null` once synced or never tried).
    pub sync_error: Option<String>,
    /// Why a `held` lead is not synced: `consent` (the tenant syncs only leads who consented)
    /// or `quota` (over the plan's lead limit); `null` for every other status.
    pub held_for: Option<&'static str>,
    pub emails_sent: i64,
    pub emails_opened: i64,
    pub emails_clicked: i64,
    pub sales: i64,
    pub revenue_cents: i64,
    pub opted_in: bool,
    pub inactive: bool,
    pub churned: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl FromRow for LeadView {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            id: row.parsed("id", LeadId::parse)?,
            email: row.text("email")?.to_string(),
            name: row.opt_text("name"),
            phone: row.opt_text("phone"),
            ib_type: row.opt_text("ib_type"),
            monthly_leads: row.opt_text("monthly_leads"),
            volume: row.opt_text("volume"),
            broker_network: row.opt_text("broker_network"),
            form: row.text("form")?.to_string(),
            utm_source: row.opt_text("utm_source"),
            utm_medium: row.opt_text("utm_medium"),
            utm_campaign: row.opt_text("utm_campaign"),
            utm_term: row.opt_text("utm_term"),
            utm_content: row.opt_text("utm_content"),
            gclid: row.opt_text("gclid"),
            fbclid: row.opt_text("fbclid"),
            ttclid: row.opt_text("ttclid"),
            referrer: row.opt_text("referrer"),
            page_url: row.opt_text("page_url"),
            consent: row.flag("consent")?,
            tags: row.json("tags")?,
            tags_kept_back: row.json("kept_back_tags")?,
            source: row.text("source")?.to_string(),
            stage: row.parsed("stage", |s| Stage::parse(s).ok_or("unknown stage"))?,
            sync_status: row.parsed("sync_status", |s| {
                SyncStatus::parse(s).ok_or("unknown sync status")
            })?,
            sync_attempts: row.int("sync_attempts")?,
            sync_error: row.opt_text("sync_error"),
            held_for: match (row.text("sync_status")?, row.flag("held_for_consent")?) {
                ("held", true) => Some("consent"),
                ("held", false) => Some("quota"),
                _ => None,
            },
            emails_sent: row.int("emails_sent")?,
            emails_opened: row.int("emails_opened")?,
            emails_clicked: row.int("emails_clicked")?,
            sales: row.int("sales")?,
            revenue_cents: row.int("revenue_cents")?,
            opted_in: row.flag("opted_in")?,
            inactive: row.flag("inactive")?,
            churned: row.flag("churned")?,
            created_at: row.text("created_at")?.to_string(),
            updated_at: row.text("updated_at")?.to_string(),
        })
    }
}

/// A `tenant_sync_rules` row.
struct SyncRulesRow(SyncRules);

impl FromRow for SyncRulesRow {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self(SyncRules {
            sync_requires_consent: row.flag("sync_requires_consent")?,
        }))
    }
}

/// What a retry of a lead's sync came to.
pub enum Retried {
    /// The failed lead is pending again, due at once.
    Queued,
    /// The tenant has the lead, but its sync has not failed.
    NotFailed,
    /// The tenant has no such lead.
    NotFound,
}

/// A lead's `email`.
struct LeadEmail(String);

impl FromRow for LeadEmail {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self(row.text("email")?.to_string()))
    }
}

/// One timeline entry, read from `kind, detail, created_at`.
#[derive(Debug, Serialize)]
pub struct TimelineEntry {
    pub kind: String,
    pub detail: Json,
    pub at: String,
}

impl FromRow for TimelineEntry {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            kind: row.text("kind")?.to_string(),
            detail: row.json("detail")?,
            at: row.text("created_at")?.to_string(),
        })
    }
}

/// One facet count: `facet, value, n`.
struct FacetCount {
    facet: String,
    value: String,
    n: i64,
}

impl FromRow for FacetCount {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            facet: row.text("facet")?.to_string(),
            value: row.opt_text("value").unwrap_or_default(),
            n: row.int("n")?,
        })
    }
}

/// One day's rollup row.
struct RollupRow {
    day: String,
    counts: DayCounts,
}

impl FromRow for RollupRow {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            day: row.text("day")?.to_string(),
            counts: DayCounts {
                leads: row.int("leads")?,
                spam: row.int("spam")?,
                emails_sent: row.int("emails_sent")?,
                emails_opened: row.int("emails_opened")?,
                emails_clicked: row.int("emails_clicked")?,
                conversions: row.int("conversions")?,
                revenue_cents: row.int("revenue_cents")?,
            },
        })
    }
}

/// A lead with its timeline (oldest first).
#[derive(Debug, Serialize)]
pub struct LeadDetail {
    #[serde(flatten)]
    pub lead: LeadView,
    /// The lead's sales minus cancellations per currency, from its timeline.
    pub revenue: Vec<Money>,
    pub timeline: Vec<TimelineEntry>,
}

/// The signed amount and currency of a timeline's sale entry (`None` for any other entry).
fn sale_amount(entry: &TimelineEntry) -> Option<(Option<String>, i64)> {
    let sign = match entry.kind.as_str() {
        "sale" => 1,
        "sale_canceled" => -1,
        _ => return None,
    };
    let cents = entry.detail.get("amount_cents")?.as_i64()?;
    let currency = entry
        .detail
        .get("currency")
        .and_then(Json::as_str)
        .map(String::from);
    Some((currency, sign * cents))
}

/// One currency's sales sum in one window: `current, currency, cents`.
struct CurrencySum {
    current: bool,
    currency: Option<String>,
    cents: i64,
}

impl FromRow for CurrencySum {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            current: row.flag("current")?,
            currency: row.opt_text("currency"),
            cents: row.int("cents")?,
        })
    }
}

/// A page of leads, newest first.
#[derive(Debug, Serialize)]
pub struct LeadPage {
    pub leads: Vec<LeadView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The tenant's lead counts by stage, by sync status and by each breakdown's value, from
/// `lead_facets`.
struct FacetTotals {
    stages: BTreeMap<&'static str, i64>,
    sync: SyncHealth,
    buckets: BTreeMap<String, Vec<Bucket>>,
}

/// Each breakdown's largest buckets (at most [`MAX_BUCKETS`]), most leads first.
fn breakdowns(mut buckets: BTreeMap<String, Vec<Bucket>>) -> Breakdowns {
    let mut take = |facet: &str| {
        let mut list = buckets.remove(facet).unwrap_or_default();
        list.sort_by(|a, b| b.leads.cmp(&a.leads).then_with(|| a.value.cmp(&b.value)));
        list.truncate(MAX_BUCKETS);
        list
    };
    Breakdowns {
        ib_type: take("ib_type"),
        volume: take("volume"),
        utm_source: take("utm_source"),
    }
}

/// Most timeline entries returned with a lead (the newest ones).
const MAX_TIMELINE: i64 = 500;

impl Dashboard {
    /// One indexed query over `lead_facets` (a row per distinct value), grouped by facet.
    fn facet_totals(&self) -> Result<FacetTotals> {
        let facets = self.db.query::<FacetCount>(
            tenant_sql!("SELECT facet, value, n FROM lead_facets WHERE tenant_id = ?1 AND n > 0"),
            &[],
        )?;
        let mut totals = FacetTotals {
            stages: Stage::ALL.iter().map(|s| (s.as_str(), 0)).collect(),
            sync: SyncHealth::default(),
            buckets: BTreeMap::new(),
        };
        for FacetCount { facet, value, n } in facets {
            let value = value.as_str();
            match facet.as_str() {
                "stage" => {
                    if let Some(stage) = Stage::parse(value) {
                        totals.stages.insert(stage.as_str(), n);
                    }
                }
                "sync" => match value {
                    "synced" => totals.sync.synced = n,
                    "pending" => totals.sync.pending = n,
                    "failed" => totals.sync.failed = n,
                    "held" => totals.sync.held = n,
                    _ => {}
                },
                other => totals
                    .buckets
                    .entry(other.to_string())
                    .or_default()
                    .push(Bucket {
                        value: Some(value.to_string()).filter(|v| !v.is_empty()),
                        leads: n,
                    }),
            }
        }
        Ok(totals)
    }

    /// The tenant's stats over the query's window (the last `days` days up to `today_unix`'s
    /// date, UTC, or the `from`/`to` dates), with the window just before it beside.
    ///
    /// Cost: two indexed queries, one over `lead_facets` (one row per distinct stage, sync
    /// status, ib_type, volume and utm_source value) and one over at most 731 `daily_rollups`
    /// rows, neither depending on how many leads the tenant has (O(distinct values + days));
    /// and the revenue per currency, which reads the tenant's timeline entries in the two
    /// windows through `lead_events_lead`.
    pub fn stats(&self, query: StatsQuery, today_unix: i64) -> Result<Stats> {
        let today = date_of(today_unix).ok_or_else(|| anyhow!("clock out of range"))?;
        let window = query.window(today);
        let previous = window.previous();
        let week = window_start(today, Days::parse(Some("7")).map_err(|e| anyhow!("{e}"))?);
        let month = month_start(today);
        let earliest = previous.from().min(week).min(month);
        let latest = window.to().max(today);

        let FacetTotals {
            stages,
            sync,
            buckets,
        } = self.facet_totals()?;
        let at_least = |s: Stage| {
            Stage::ALL
                .iter()
                .filter(|x| **x >= s)
                .map(|x| stages.get(x.as_str()).copied().unwrap_or_default())
                .sum::<i64>()
        };
        let total = at_least(Stage::New);
        let converted_leads = at_least(Stage::Converted);

        let rows = self.rollups(day_string(earliest), day_string(latest))?;
        let (revenue, previous_revenue) = self.revenue(window, previous)?;
        let period = |w: StatsWindow, revenue: Vec<Money>| Period {
            from: day_string(w.from()),
            to: day_string(w.to()),
            days: w.days(),
            counts: sum_between(&rows, w.from(), w.to()),
            revenue,
        };
        let current = period(window, revenue);
        let before = period(previous, previous_revenue);
        let totals = current.counts;
        Ok(Stats {
            window: Window {
                days: window.days(),
                from: day_string(window.from()),
                to: day_string(window.to()),
            },
            leads: LeadTotals {
                total,
                this_month: sum_between(&rows, month, today).leads,
                last_7_days: sum_between(&rows, week, today).leads,
                in_window: totals.leads,
            },
            funnel: Funnel {
                capture: total,
                nurture: at_least(Stage::Nurturing),
                convert: converted_leads,
                retain: at_least(Stage::Retained),
            },
            emails: Emails {
                sent: totals.emails_sent,
                opened: totals.emails_opened,
                clicked: totals.emails_clicked,
                open_rate: rate(totals.emails_opened, totals.emails_sent),
                click_rate: rate(totals.emails_clicked, totals.emails_sent),
            },
            conversions: Conversions {
                rate: rate(converted_leads, total),
                converted_leads,
                in_window: totals.conversions,
            },
            revenue_cents: totals.revenue_cents,
            sync,
            spam: totals.spam,
            breakdowns: breakdowns(buckets),
            daily: daily_series(&rows, window.from(), window.to()),
            stages,
            period: current,
            previous: before,
        })
    }

    /// The tenant's daily rollups from day `first` to day `last` (`YYYY-MM-DD`), by day: one indexed range read of at
    /// most 731 rows.
    fn rollups(&self, first: String, last: String) -> Result<BTreeMap<String, DayCounts>> {
        let rollups = self.db.query::<RollupRow>(
            tenant_sql!(
                "SELECT day, leads, spam, emails_sent, emails_opened, emails_clicked, conversions, revenue_cents
                 FROM daily_rollups WHERE tenant_id = ?1 AND day >= ?2 AND day <= ?3"
            ),
            &[Value::Text(first), Value::Text(last)],
        )?;
        Ok(rollups.into_iter().map(|r| (r.day, r.counts)).collect())
    }

    /// Sales minus cancellations per currency in `window` and in `previous` (which ends
    /// before `window` starts), by the day their event arrived, as the rollups count them.
    fn revenue(
        &self,
        window: StatsWindow,
        previous: StatsWindow,
    ) -> Result<(Vec<Money>, Vec<Money>)> {
        let end = window
            .to()
            .next_day()
            .ok_or_else(|| anyhow!("date out of range"))?;
        let sums = self.db.query::<CurrencySum>(
            tenant_sql!(
                "SELECT created_at >= ?3 AS current, json_extract(detail, '$.currency') AS currency,
                    SUM(CASE kind WHEN 'sale' THEN 1 ELSE -1 END
                        * COALESCE(json_extract(detail, '$.amount_cents'), 0)) AS cents
                 FROM lead_events
                 WHERE tenant_id = ?1 AND kind IN ('sale', 'sale_canceled')
                    AND created_at >= ?2 AND created_at < ?4
                 GROUP BY 1, 2"
            ),
            &[
                Value::Text(day_string(previous.from())),
                Value::Text(day_string(window.from())),
                Value::Text(day_string(end)),
            ],
        )?;
        let (current, before): (Vec<CurrencySum>, Vec<CurrencySum>) =
            sums.into_iter().partition(|s| s.current);
        let money =
            |list: Vec<CurrencySum>| by_currency(list.into_iter().map(|s| (s.currency, s.cents)));
        Ok((money(current), money(before)))
    }

    /// A page of leads in the query's order after the cursor, with its filters. Newest first,
    /// new leads sort before any cursor, so paging never repeats or skips a lead while leads
    /// arrive; oldest first, they come on the last page.
    ///
    /// Each page is one index range from the cursor on, so a page costs the same deep in a
    /// million leads as on top (the CSV export reads every page); filters other than the stage
    /// are checked on the rows that range walks. A stage other than `new` is searched in
    /// `leads_tenant_stage_moved`, which holds only leads whose stage has
    /// moved, so a capture writes no entry in it; `new` leads are the newest, found walking
    /// the tenant's leads from the top.
    pub fn leads(&self, query: &LeadQuery) -> Result<LeadPage> {
        let first = match query.sort {
            Sort::NewestFirst => BEFORE_EVERY_ID,
            Sort::OldestFirst => AFTER_NO_ID,
        };
        let cursor = query
            .cursor
            .as_ref()
            .map_or(first.to_string(), |c| c.id().to_string());
        let text = |v: Option<&str>| v.map_or(Value::Null, |v| Value::Text(v.to_string()));
        let (since, before) = query.captured_between();
        let params = [
            text(query.stage.map(|s| s.as_str())),
            Value::Text(cursor),
            text(query.like_pattern().as_deref()),
            Value::Integer(i64::from(query.limit) + 1),
            text(since.as_deref()),
            text(before.as_deref()),
            text(query.source.as_deref()),
            text(query.sync.map(|s| s.as_str())),
            text(query.tag.as_deref()),
            text(query.ib_type.as_deref()),
            text(query.volume.as_deref()),
            text(query.utm_source.as_deref()),
        ];
        let moved = query.stage.is_some_and(|s| s != Stage::New);
        let mut leads = match (moved, query.sort) {
            (true, Sort::NewestFirst) => self.db.query::<LeadView>(
                tenant_sql!(
                    "SELECT ",
                    lead_view_columns!(),
                    " FROM leads WHERE tenant_id = ?1 AND stage = ?2 AND stage != 'new'",
                    lead_page_filters!(),
                    " AND id < ?3 ORDER BY id DESC LIMIT CAST(?5 AS INTEGER)"
                ),
                &params,
            )?,
            (true, Sort::OldestFirst) => self.db.query::<LeadView>(
                tenant_sql!(
                    "SELECT ",
                    lead_view_columns!(),
                    " FROM leads WHERE tenant_id = ?1 AND stage = ?2 AND stage != 'new'",
                    lead_page_filters!(),
                    " AND id > ?3 ORDER BY id ASC LIMIT CAST(?5 AS INTEGER)"
                ),
                &params,
            )?,
            (false, Sort::NewestFirst) => self.db.query::<LeadView>(
                tenant_sql!(
                    "SELECT ",
                    lead_view_columns!(),
                    " FROM leads WHERE tenant_id = ?1 AND (?2 IS NULL OR stage = ?2)",
                    lead_page_filters!(),
                    " AND id < ?3 ORDER BY id DESC LIMIT CAST(?5 AS INTEGER)"
                ),
                &params,
            )?,
            (false, Sort::OldestFirst) => self.db.query::<LeadView>(
                tenant_sql!(
                    "SELECT ",
                    lead_view_columns!(),
                    " FROM leads WHERE tenant_id = ?1 AND (?2 IS NULL OR stage = ?2)",
                    lead_page_filters!(),
                    " AND id > ?3 ORDER BY id ASC LIMIT CAST(?5 AS INTEGER)"
                ),
                &params,
            )?,
        };
        let more = leads.len() > usize::try_from(query.limit).unwrap_or(usize::MAX);
        leads.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        let next_cursor = if more {
            leads.last().map(|l| Cursor::after(l.id.as_ref()).encode())
        } else {
            None
        };
        Ok(LeadPage { leads, next_cursor })
    }

    /// One lead of this tenant with its timeline; `None` for a missing id and for another
    /// tenant's id alike. The timeline's first entry is kept in the lead's row, `first_event`,
    /// when capture stored the lead; otherwise, and for every later entry, it
    /// is one of its `lead_events`.
    pub fn lead(&self, id: &LeadId) -> Result<Option<LeadDetail>> {
        let found = self.db.query_one::<LeadView>(
            tenant_sql!(
                "SELECT ",
                lead_view_columns!(),
                " FROM leads WHERE tenant_id = ?1 AND id = ?2"
            ),
            &[Value::Text(id.to_string())],
        )?;
        let Some(lead) = found else {
            return Ok(None);
        };
        let timeline = self.db.query::<TimelineEntry>(
            tenant_sql!(
                "SELECT kind, detail, created_at FROM (
                    SELECT id, kind, detail, created_at FROM lead_events
                    WHERE tenant_id = ?1 AND lead_id = ?2
                    UNION ALL
                    SELECT 0, CASE source WHEN 'systeme' THEN 'systeme_contact' ELSE 'captured' END,
                        first_event, created_at
                    FROM leads WHERE tenant_id = ?1 AND id = ?2 AND first_event IS NOT NULL
                    ORDER BY id DESC LIMIT CAST(?3 AS INTEGER))
                 ORDER BY id"
            ),
            &[Value::Text(id.to_string()), Value::Integer(MAX_TIMELINE)],
        )?;
        let revenue = by_currency(timeline.iter().filter_map(sale_amount));
        Ok(Some(LeadDetail {
            lead,
            revenue,
            timeline,
        }))
    }

    /// The tenant's sync rules (the defaults when it never set any).
    pub fn sync_rules(&self) -> Result<SyncRules> {
        Ok(self
            .db
            .query_one::<SyncRulesRow>(
                tenant_sql!(
                    "SELECT sync_requires_consent FROM tenant_sync_rules WHERE tenant_id = ?1"
                ),
                &[],
            )?
            .map(|r| r.0)
            .unwrap_or_default())
    }

    /// Stores the tenant's sync rules. Turning the consent rule off queues the leads it held
    /// for sync at once (`now`).
    pub fn set_sync_rules(&self, rules: SyncRules, now: i64) -> Result<()> {
        let before = self.sync_rules()?;
        self.db.execute(
            tenant_sql!(
                "INSERT INTO tenant_sync_rules (tenant_id, sync_requires_consent) VALUES (?1, ?2)
                 ON CONFLICT (tenant_id) DO UPDATE SET sync_requires_consent = excluded.sync_requires_consent"
            ),
            &[Value::Integer(i64::from(rules.sync_requires_consent))],
        )?;
        if before.sync_requires_consent && !rules.sync_requires_consent {
            self.db.execute(
                tenant_sql!(
                    "UPDATE leads SET sync_status = 'pending', held_for_consent = 0, sync_attempts = 0,
                        next_sync_at = ?2
                     WHERE tenant_id = ?1 AND sync_status = 'held' AND held_for_consent = 1"
                ),
                &[Value::Integer(now)],
            )?;
        }
        Ok(())
    }

    /// The tenant's spam rules (`tenant_spam_rules`; no row: the defaults).
    pub fn spam_rules(&self) -> Result<SpamRules> {
        platform::spam_rules::read(&self.db)
    }

    /// Stores the tenant's spam rules; the next capture applies them.
    pub fn set_spam_rules(&self, rules: &SpamRules) -> Result<()> {
        let text = |v: Option<&str>| v.map_or(Value::Null, |v| Value::Text(v.to_string()));
        let captcha = rules.captcha.as_ref();
        self.db.execute(
            tenant_sql!(
                "INSERT INTO tenant_spam_rules
                    (tenant_id, captcha_provider, captcha_site_key, captcha_secret, min_fill_seconds)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant_id) DO UPDATE SET
                    captcha_provider = excluded.captcha_provider,
                    captcha_site_key = excluded.captcha_site_key,
                    captcha_secret = excluded.captcha_secret,
                    min_fill_seconds = excluded.min_fill_seconds"
            ),
            &[
                text(captcha.map(|c| c.provider.as_str())),
                text(captcha.map(|c| c.site_key.as_ref())),
                text(captcha.map(|c| c.secret.expose())),
                Value::Integer(i64::from(rules.min_fill_seconds)),
            ],
        )?;
        Ok(())
    }

    /// Queues a failed lead for sync again: pending, no attempts counted, due at `now`. Its
    /// last `sync_error` stays until a sync replaces it.
    pub fn retry(&self, id: &LeadId, now: i64) -> Result<Retried> {
        let queued = self.db.query_one::<LeadEmail>(
            tenant_sql!(
                "UPDATE leads SET sync_status = 'pending', sync_attempts = 0, next_sync_at = ?3
                 WHERE tenant_id = ?1 AND id = ?2 AND sync_status = 'failed'
                 RETURNING email"
            ),
            &[Value::Text(id.to_string()), Value::Integer(now)],
        )?;
        if queued.is_some() {
            return Ok(Retried::Queued);
        }
        let exists = self.db.query_one::<LeadEmail>(
            tenant_sql!("SELECT email FROM leads WHERE tenant_id = ?1 AND id = ?2"),
            &[Value::Text(id.to_string())],
        )?;
        Ok(if exists.is_some() {
            Retried::NotFailed
        } else {
            Retried::NotFound
        })
    }

    /// Erases a lead and its timeline (GDPR); `false` when the tenant has no such lead.
    pub fn erase(&self, id: &LeadId) -> Result<bool> {
        let Some(lead) = self.db.query_one::<LeadEmail>(
            tenant_sql!("SELECT email FROM leads WHERE tenant_id = ?1 AND id = ?2"),
            &[Value::Text(id.to_string())],
        )?
        else {
            return Ok(false);
        };
        // One statement: writing the tombstone (a hash of tenant and email)
        // deletes the lead, and with it its timeline; the quota keeps counting it.
        self.db.execute(
            tenant_sql!(
                "INSERT INTO erased_leads (tenant_id, email_hash, lead_id, erased_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant_id, email_hash) DO UPDATE SET
                    lead_id = excluded.lead_id, erased_at = excluded.erased_at"
            ),
            &[
                Value::Text(erasure_key(self.db.tenant(), &lead.0)),
                Value::Text(id.to_string()),
                Value::Text(platform::clock::now_rfc3339()?),
            ],
        )?;
        Ok(true)
    }
}
