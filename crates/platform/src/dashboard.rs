//! A tenant's dashboard reads: stats, the lead list, one lead with its timeline, erasure, and
//! the CSV export's pages. Built only from a verified tenant ([`TenantContext::dashboard`]);
//! every statement goes through [`TenantDb`].

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use domain::dashboard::{
    Cursor, Day, DayCounts, Days, LeadQuery, daily_series, date_of, day_string, month_start, rate,
    sum_since, window_start,
};
use domain::funnel::Stage;
use serde::Serialize;
use serde_json::Value as Json;
use spin_sdk::sqlite::{QueryResult, RowResult, Value};

use crate::ApiError;
use crate::auth::TenantContext;
use crate::tenant::TenantDb;
use crate::tenant_sql;

/// The tenant's dashboard.
pub struct Dashboard {
    db: TenantDb,
}

impl TenantContext {
    pub fn dashboard(&self) -> Result<Dashboard, ApiError> {
        Ok(Dashboard { db: self.db()? })
    }
}

#[derive(Debug, Serialize)]
pub struct Window {
    pub days: u16,
    pub from: String,
    pub to: String,
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
}

/// Most buckets listed per breakdown (largest first).
const MAX_BUCKETS: usize = 20;

/// One lead as the dashboard shows it.
#[derive(Debug, Serialize)]
pub struct LeadView {
    pub id: String,
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
    pub page_url: Option<String>,
    pub consent: bool,
    pub tags: Json,
    pub source: String,
    pub stage: String,
    pub sync_status: String,
    pub sync_attempts: i64,
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

impl LeadView {
    pub(crate) fn read(row: &RowResult) -> Result<Self> {
        let text = |i: usize| {
            row.get::<&str>(i)
                .map(str::to_string)
                .ok_or_else(|| anyhow!("lead row: column {i}"))
        };
        let opt = |i: usize| row.get::<&str>(i).map(str::to_string);
        let int = |i: usize| {
            row.get::<i64>(i)
                .ok_or_else(|| anyhow!("lead row: column {i}"))
        };
        Ok(Self {
            id: text(0)?,
            email: text(1)?,
            name: opt(2),
            phone: opt(3),
            ib_type: opt(4),
            monthly_leads: opt(5),
            volume: opt(6),
            broker_network: opt(7),
            form: text(8)?,
            utm_source: opt(9),
            utm_medium: opt(10),
            utm_campaign: opt(11),
            page_url: opt(12),
            consent: int(13)? != 0,
            tags: serde_json::from_str(&text(14)?)?,
            source: text(15)?,
            stage: text(16)?,
            sync_status: text(17)?,
            sync_attempts: int(18)?,
            emails_sent: int(19)?,
            emails_opened: int(20)?,
            emails_clicked: int(21)?,
            sales: int(22)?,
            revenue_cents: int(23)?,
            opted_in: int(24)? != 0,
            inactive: int(25)? != 0,
            churned: int(26)? != 0,
            created_at: text(27)?,
            updated_at: text(28)?,
        })
    }
}

/// One timeline entry.
#[derive(Debug, Serialize)]
pub struct TimelineEntry {
    pub kind: String,
    pub detail: Json,
    pub at: String,
}

/// A lead with its timeline (oldest first).
#[derive(Debug, Serialize)]
pub struct LeadDetail {
    #[serde(flatten)]
    pub lead: LeadView,
    pub timeline: Vec<TimelineEntry>,
}

/// A page of leads, newest first.
#[derive(Debug, Serialize)]
pub struct LeadPage {
    pub leads: Vec<LeadView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Most timeline entries returned with a lead (the newest ones).
const MAX_TIMELINE: i64 = 500;

impl Dashboard {
    /// The tenant's stats over the last `days` days up to `today_unix`'s date (UTC).
    ///
    /// Cost: two indexed queries, one over `lead_facets` (one row per distinct stage, sync
    /// status, ib_type, volume and utm_source value) and one over at most 366 `daily_rollups`
    /// rows. Neither depends on how many leads the tenant has: O(distinct values + days).
    pub fn stats(&self, days: Days, today_unix: i64) -> Result<Stats> {
        let today = date_of(today_unix).ok_or_else(|| anyhow!("clock out of range"))?;
        let from = window_start(today, days);
        let week = window_start(today, Days::parse(Some("7")).map_err(|e| anyhow!("{e}"))?);
        let month = month_start(today);
        let earliest = from.min(week).min(month);

        let facets = self.db.execute(
            tenant_sql!("SELECT facet, value, n FROM lead_facets WHERE tenant_id = ?1 AND n > 0"),
            &[],
        )?;
        let mut stages: BTreeMap<&'static str, i64> =
            Stage::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        let mut sync = SyncHealth::default();
        let mut buckets: BTreeMap<String, Vec<Bucket>> = BTreeMap::new();
        for row in &facets.rows {
            let facet = row.get::<&str>(0).unwrap_or_default();
            let value = row.get::<&str>(1).unwrap_or_default();
            let n = row.get::<i64>(2).unwrap_or_default();
            match facet {
                "stage" => {
                    if let Some(stage) = Stage::parse(value) {
                        stages.insert(stage.as_str(), n);
                    }
                }
                "sync" => match value {
                    "synced" => sync.synced = n,
                    "pending" => sync.pending = n,
                    "failed" => sync.failed = n,
                    "held" => sync.held = n,
                    _ => {}
                },
                other => buckets.entry(other.to_string()).or_default().push(Bucket {
                    value: Some(value.to_string()).filter(|v| !v.is_empty()),
                    leads: n,
                }),
            }
        }
        let at_least = |s: Stage| {
            Stage::ALL
                .iter()
                .filter(|x| **x >= s)
                .map(|x| stages.get(x.as_str()).copied().unwrap_or_default())
                .sum::<i64>()
        };
        let total = at_least(Stage::New);
        let converted_leads = at_least(Stage::Converted);

        let rollups = self.db.execute(
            tenant_sql!(
                "SELECT day, leads, spam, emails_sent, emails_opened, emails_clicked, conversions, revenue_cents
                 FROM daily_rollups WHERE tenant_id = ?1 AND day >= ?2 AND day <= ?3"
            ),
            &[Value::Text(day_string(earliest)), Value::Text(day_string(today))],
        )?;
        let rows = day_rows(&rollups)?;
        let window = sum_since(&rows, from);
        let mut take = |facet: &str| {
            let mut list = buckets.remove(facet).unwrap_or_default();
            list.sort_by(|a, b| b.leads.cmp(&a.leads).then_with(|| a.value.cmp(&b.value)));
            list.truncate(MAX_BUCKETS);
            list
        };
        Ok(Stats {
            window: Window {
                days: days.get(),
                from: day_string(from),
                to: day_string(today),
            },
            leads: LeadTotals {
                total,
                this_month: sum_since(&rows, month).leads,
                last_7_days: sum_since(&rows, week).leads,
                in_window: window.leads,
            },
            funnel: Funnel {
                capture: total,
                nurture: at_least(Stage::Nurturing),
                convert: converted_leads,
                retain: at_least(Stage::Retained),
            },
            emails: Emails {
                sent: window.emails_sent,
                opened: window.emails_opened,
                clicked: window.emails_clicked,
                open_rate: rate(window.emails_opened, window.emails_sent),
                click_rate: rate(window.emails_clicked, window.emails_sent),
            },
            conversions: Conversions {
                rate: rate(converted_leads, total),
                converted_leads,
                in_window: window.conversions,
            },
            revenue_cents: window.revenue_cents,
            sync,
            spam: window.spam,
            breakdowns: Breakdowns {
                ib_type: take("ib_type"),
                volume: take("volume"),
                utm_source: take("utm_source"),
            },
            daily: daily_series(&rows, from, today),
            stages,
        })
    }

    /// A page of leads, newest first, after the cursor. New leads sort before any cursor, so
    /// paging never repeats or skips a lead while leads arrive.
    pub fn leads(&self, query: &LeadQuery) -> Result<LeadPage> {
        let cursor = query
            .cursor
            .as_ref()
            .map_or(Value::Null, |c| Value::Text(c.id().to_string()));
        let like = query.like_pattern().map_or(Value::Null, Value::Text);
        let limit = Value::Integer(i64::from(query.limit) + 1);
        let result = match query.stage {
            Some(stage) => self.db.execute(
                tenant_sql!(
                    "SELECT id, email, name, phone, ib_type, monthly_leads, volume, broker_network, form,
                        utm_source, utm_medium, utm_campaign, page_url, consent, tags, source, stage,
                        sync_status, sync_attempts, emails_sent, emails_opened, emails_clicked, sales,
                        revenue_cents, opted_in, inactive, churned, created_at, updated_at
                     FROM leads WHERE tenant_id = ?1 AND stage = ?2 AND (?3 IS NULL OR id < ?3)
                        AND (?4 IS NULL OR email LIKE ?4 ESCAPE '\\' OR lower(name) LIKE ?4 ESCAPE '\\')
                     ORDER BY id DESC LIMIT ?5"
                ),
                &[Value::Text(stage.as_str().into()), cursor, like, limit],
            )?,
            None => self.db.execute(
                tenant_sql!(
                    "SELECT id, email, name, phone, ib_type, monthly_leads, volume, broker_network, form,
                        utm_source, utm_medium, utm_campaign, page_url, consent, tags, source, stage,
                        sync_status, sync_attempts, emails_sent, emails_opened, emails_clicked, sales,
                        revenue_cents, opted_in, inactive, churned, created_at, updated_at
                     FROM leads WHERE tenant_id = ?1 AND (?2 IS NULL OR id < ?2)
                        AND (?3 IS NULL OR email LIKE ?3 ESCAPE '\\' OR lower(name) LIKE ?3 ESCAPE '\\')
                     ORDER BY id DESC LIMIT ?4"
                ),
                &[cursor, like, limit],
            )?,
        };
        let mut leads = result
            .rows
            .iter()
            .map(LeadView::read)
            .collect::<Result<Vec<_>>>()?;
        let more = leads.len() > usize::try_from(query.limit).unwrap_or(usize::MAX);
        leads.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        let next_cursor = if more {
            leads.last().map(|l| Cursor::after(&l.id).encode())
        } else {
            None
        };
        Ok(LeadPage { leads, next_cursor })
    }

    /// One lead of this tenant with its timeline; `None` for a missing id and for another
    /// tenant's id alike.
    pub fn lead(&self, id: &str) -> Result<Option<LeadDetail>> {
        let found = self.db.execute(
            tenant_sql!(
                "SELECT id, email, name, phone, ib_type, monthly_leads, volume, broker_network, form,
                    utm_source, utm_medium, utm_campaign, page_url, consent, tags, source, stage,
                    sync_status, sync_attempts, emails_sent, emails_opened, emails_clicked, sales,
                    revenue_cents, opted_in, inactive, churned, created_at, updated_at
                 FROM leads WHERE tenant_id = ?1 AND id = ?2"
            ),
            &[Value::Text(id.to_string())],
        )?;
        let Some(row) = found.rows.first() else {
            return Ok(None);
        };
        let lead = LeadView::read(row)?;
        let events = self.db.execute(
            tenant_sql!(
                "SELECT kind, detail, created_at FROM (
                    SELECT id, kind, detail, created_at FROM lead_events
                    WHERE tenant_id = ?1 AND lead_id = ?2 ORDER BY id DESC LIMIT ?3)
                 ORDER BY id"
            ),
            &[Value::Text(id.to_string()), Value::Integer(MAX_TIMELINE)],
        )?;
        let timeline = events
            .rows
            .iter()
            .map(|r| {
                Ok(TimelineEntry {
                    kind: r
                        .get::<&str>(0)
                        .ok_or_else(|| anyhow!("event: kind"))?
                        .to_string(),
                    detail: serde_json::from_str(r.get::<&str>(1).unwrap_or("{}"))?,
                    at: r
                        .get::<&str>(2)
                        .ok_or_else(|| anyhow!("event: time"))?
                        .to_string(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(LeadDetail { lead, timeline }))
    }

    /// Erases a lead and its timeline (GDPR); `false` when the tenant has no such lead.
    pub fn erase(&self, id: &str) -> Result<bool> {
        let deleted = self.db.execute(
            tenant_sql!("DELETE FROM leads WHERE tenant_id = ?1 AND id = ?2 RETURNING id"),
            &[Value::Text(id.to_string())],
        )?;
        Ok(!deleted.rows.is_empty())
    }
}

fn day_rows(result: &QueryResult) -> Result<BTreeMap<String, DayCounts>> {
    result
        .rows
        .iter()
        .map(|r| {
            let int = |i: usize| r.get::<i64>(i).unwrap_or_default();
            Ok((
                r.get::<&str>(0)
                    .ok_or_else(|| anyhow!("rollup: day"))?
                    .to_string(),
                DayCounts {
                    leads: int(1),
                    spam: int(2),
                    emails_sent: int(3),
                    emails_opened: int(4),
                    emails_clicked: int(5),
                    conversions: int(6),
                    revenue_cents: int(7),
                },
            ))
        })
        .collect()
}
