//! `GET /v1/dashboard/leads.csv?stage=&q=&…`: the tenant's leads the list's filters select, in
//! the list's order (every lead, newest first, without any) as CSV, streamed page by page
//! (keyset pages of 200), so memory stays flat however many leads there are. Cells that a
//! spreadsheet would run as formulas are neutralised.

use domain::dashboard::{Cursor, LeadQuery, MAX_PAGE, spreadsheet_safe};
use domain::token::Scope;
use futures::SinkExt;
use platform::auth::authenticate;
use platform::response::send;
use serde::{Serialize, Serializer};
use spin_sdk::http::{Fields, OutgoingResponse, Request, ResponseOutparam};

use crate::store::{Dashboard, LeadView};

/// Text a spreadsheet would run as a formula is neutralised.
fn safe<S: Serializer>(cell: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&spreadsheet_safe(cell))
}

fn safe_opt<S: Serializer>(cell: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    safe(cell.as_deref().unwrap_or_default(), s)
}

/// One CSV row; the field names are the header.
#[derive(Serialize)]
struct CsvLead<'a> {
    id: &'a str,
    #[serde(serialize_with = "safe")]
    email: &'a str,
    #[serde(serialize_with = "safe_opt")]
    name: &'a Option<String>,
    #[serde(serialize_with = "safe_opt")]
    phone: &'a Option<String>,
    #[serde(serialize_with = "safe_opt")]
    ib_type: &'a Option<String>,
    #[serde(serialize_with = "safe_opt")]
    monthly_leads: &'a Option<String>,
    #[serde(serialize_with = "safe_opt")]
    volume: &'a Option<String>,
    #[serde(serialize_with = "safe_opt")]
    broker_network: &'a Option<String>,
    #[serde(serialize_with = "safe")]
    form: &'a str,
    #[serde(serialize_with = "safe_opt")]
    utm_source: &'a Option<String>,
    #[serde(serialize_with = "safe_opt")]
    utm_medium: &'a Option<String>,
    #[serde(serialize_with = "safe_opt")]
    utm_campaign: &'a Option<String>,
    #[serde(serialize_with = "safe_opt")]
    utm_term: &'a Option<String>,
    #[serde(serialize_with = "safe_opt")]
    utm_content: &'a Option<String>,
    #[serde(serialize_with = "safe_opt")]
    gclid: &'a Option<String>,
    #[serde(serialize_with = "safe_opt")]
    fbclid: &'a Option<String>,
    #[serde(serialize_with = "safe_opt")]
    ttclid: &'a Option<String>,
    #[serde(serialize_with = "safe_opt")]
    referrer: &'a Option<String>,
    #[serde(serialize_with = "safe_opt")]
    page_url: &'a Option<String>,
    consent: bool,
    /// Space-separated.
    tags: String,
    source: &'a str,
    stage: &'static str,
    sync_status: &'static str,
    emails_sent: i64,
    emails_opened: i64,
    emails_clicked: i64,
    revenue_cents: i64,
    created_at: &'a str,
}

impl<'a> From<&'a LeadView> for CsvLead<'a> {
    fn from(lead: &'a LeadView) -> Self {
        Self {
            id: lead.id.as_ref(),
            email: &lead.email,
            name: &lead.name,
            phone: &lead.phone,
            ib_type: &lead.ib_type,
            monthly_leads: &lead.monthly_leads,
            volume: &lead.volume,
            broker_network: &lead.broker_network,
            form: &lead.form,
            utm_source: &lead.utm_source,
            utm_medium: &lead.utm_medium,
            utm_campaign: &lead.utm_campaign,
            utm_term: &lead.utm_term,
            utm_content: &lead.utm_content,
            gclid: &lead.gclid,
            fbclid: &lead.fbclid,
            ttclid: &lead.ttclid,
            referrer: &lead.referrer,
            page_url: &lead.page_url,
            consent: lead.consent,
            tags: lead
                .tags
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<&str>>()
                .join(" "),
            source: &lead.source,
            stage: lead.stage.as_str(),
            sync_status: lead.sync_status.as_str(),
            emails_sent: lead.emails_sent,
            emails_opened: lead.emails_opened,
            emails_clicked: lead.emails_clicked,
            revenue_cents: lead.revenue_cents,
            created_at: &lead.created_at,
        }
    }
}

/// One page of leads as CSV, with the header row when `header` is set.
fn csv_chunk(leads: &[LeadView], header: bool) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(header)
        .from_writer(Vec::new());
    for lead in leads {
        writer.serialize(CsvLead::from(lead))?;
    }
    writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Streams the export. Errors before the first byte are problem+json; a failure mid-stream
/// can only cut the body short, and is logged.
pub async fn export_leads(req: &Request, out: ResponseOutparam) {
    // The list's filters and `sort` select and order the rows, so the file holds what the
    // list shows; paging is the export's own (`limit` and `cursor` are replaced, though a malformed
    // one is still `400 invalid_query`, as on the list).
    let mut query = match platform::request::query::<LeadQuery>(req) {
        Ok(query) => LeadQuery {
            limit: MAX_PAGE,
            cursor: None,
            ..query
        },
        Err(e) => return send(out, e.into_response()).await,
    };
    // The gate and the first page are read (and retried) before the status is sent, so a
    // failing database is still a problem+json answer.
    let opened = platform::retry::with_retries(|| {
        let ctx = authenticate(req, Scope::Dashboard)?;
        let dashboard = Dashboard::new(&ctx)?;
        let first = dashboard.leads(&query)?;
        Ok((dashboard, first))
    });
    let (dashboard, first) = match opened {
        Ok(opened) => opened,
        Err(e) => return send(out, e.into_response()).await,
    };
    let headers = Fields::from_list(&[
        (
            "content-type".to_owned(),
            b"text/csv; charset=utf-8".to_vec(),
        ),
        (
            "content-disposition".to_owned(),
            b"attachment; filename=\"leads.csv\"".to_vec(),
        ),
        ("cache-control".to_owned(), b"no-store".to_vec()),
    ]);
    let Ok(headers) = headers else {
        eprintln!("building the CSV response headers failed");
        return;
    };
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(200);
    let mut body = response.take_body();
    out.set(response);
    let mut page = first;
    let mut header = true;
    loop {
        let chunk = match csv_chunk(&page.leads, std::mem::take(&mut header)) {
            Ok(chunk) => chunk,
            Err(e) => {
                eprintln!("writing CSV: {e:#}");
                return;
            }
        };
        if let Err(e) = body.send(chunk).await {
            eprintln!("streaming CSV: {e:?}");
            return;
        }
        let Some(next) = page
            .next_cursor
            .as_deref()
            .and_then(|c| Cursor::parse(c).ok())
        else {
            return;
        };
        query.cursor = Some(next);
        page = match dashboard.leads(&query) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("reading leads for the CSV export (body cut short): {e:#}");
                return;
            }
        };
    }
}
