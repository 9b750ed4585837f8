//! `GET /v1/dashboard/leads.csv`: every lead of the tenant as CSV, streamed page by page
//! (keyset pages of 200), so memory stays flat however many leads there are. Cells that a
//! spreadsheet would run as formulas are neutralised.

use domain::dashboard::{Cursor, LeadQuery, MAX_PAGE, spreadsheet_safe};
use domain::token::Scope;
use futures::SinkExt;
use platform::auth::authenticate;
use platform::dashboard::LeadView;
use spin_sdk::http::{Fields, OutgoingResponse, Request, Response, ResponseOutparam};

const HEADER: [&str; 23] = [
    "id",
    "email",
    "name",
    "phone",
    "ib_type",
    "monthly_leads",
    "volume",
    "broker_network",
    "form",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "page_url",
    "consent",
    "tags",
    "source",
    "stage",
    "sync_status",
    "emails_sent",
    "emails_opened",
    "emails_clicked",
    "revenue_cents",
    "created_at",
];

fn record(lead: &LeadView) -> [String; 23] {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let tags = lead
        .tags
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    [
        lead.id.clone(),
        lead.email.clone(),
        opt(&lead.name),
        opt(&lead.phone),
        opt(&lead.ib_type),
        opt(&lead.monthly_leads),
        opt(&lead.volume),
        opt(&lead.broker_network),
        lead.form.clone(),
        opt(&lead.utm_source),
        opt(&lead.utm_medium),
        opt(&lead.utm_campaign),
        opt(&lead.page_url),
        lead.consent.to_string(),
        tags,
        lead.source.clone(),
        lead.stage.clone(),
        lead.sync_status.clone(),
        lead.emails_sent.to_string(),
        lead.emails_opened.to_string(),
        lead.emails_clicked.to_string(),
        lead.revenue_cents.to_string(),
        lead.created_at.clone(),
    ]
}

fn csv_chunk(
    rows: impl Iterator<Item = [String; 23]>,
    header: Option<[&str; 23]>,
) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if let Some(h) = header {
        writer.write_record(h)?;
    }
    for row in rows {
        writer.write_record(row.iter().map(|c| spreadsheet_safe(c).into_owned()))?;
    }
    writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Streams the export. Errors before the first byte are problem+json; a failure mid-stream
/// can only cut the body short, and is logged.
pub async fn export_leads(req: &Request, out: ResponseOutparam) {
    let ctx = match authenticate(req, Scope::Dashboard) {
        Ok(ctx) => ctx,
        Err(e) => return send(out, e.into_response()).await,
    };
    let dashboard = match ctx.dashboard() {
        Ok(d) => d,
        Err(e) => return send(out, e.into_response()).await,
    };
    let mut query = LeadQuery {
        stage: None,
        q: None,
        limit: MAX_PAGE,
        cursor: None,
    };
    // The first page is read before the status is sent, so a failing database is still a 500.
    let first = match dashboard.leads(&query) {
        Ok(page) => page,
        Err(e) => return send(out, platform::ApiError::from(e).into_response()).await,
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
    let mut header = Some(HEADER);
    loop {
        let chunk = match csv_chunk(page.leads.iter().map(record), header.take()) {
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

/// Writes a buffered response into the out-param.
pub async fn send(out: ResponseOutparam, resp: Response) {
    let headers: Vec<(String, Vec<u8>)> = resp
        .headers()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    let Ok(fields) = Fields::from_list(&headers) else {
        eprintln!("building response headers failed");
        return;
    };
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(*resp.status());
    if let Err(e) = out.set_with_body(response, resp.into_body()).await {
        eprintln!("sending the response: {e:?}");
    }
}
