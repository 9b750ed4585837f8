//! `GET /v1/admin/sales?limit=` (admin token): the Systeme.io sales no single tenant could claim
//! (docs/contract.md §9 "Threat model"), newest first. They count for no tenant; the operator decides.

use anyhow::Result;
use platform::ApiError;
use platform::auth::authenticate_admin;
use platform::db::{FromRow, Row};
use platform::request::Limit;
use serde::{Deserialize, Serialize};
use spin_sdk::http::{Request, Response};
use spin_sdk::sqlite::Value;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 500;

#[derive(Deserialize)]
struct SalesQuery {
    limit: Option<Limit<MAX_LIMIT>>,
}

/// One unattributed sale, read by column name.
#[derive(Serialize)]
struct UnattributedSale {
    message_id: String,
    event: String,
    contact_id: Option<i64>,
    order_id: Option<i64>,
    funnel_id: Option<i64>,
    amount_cents: Option<i64>,
    currency: Option<String>,
    /// How many tenants hold the buyer.
    candidates: i64,
    reason: String,
    received_at: String,
}

impl FromRow for UnattributedSale {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            message_id: row.text("message_id")?.to_string(),
            event: row.text("event")?.to_string(),
            contact_id: row.opt_int("contact_id"),
            order_id: row.opt_int("order_id"),
            funnel_id: row.opt_int("funnel_id"),
            amount_cents: row.opt_int("amount_cents"),
            currency: row.opt_text("currency"),
            candidates: row.int("candidates")?,
            reason: row.text("reason")?.to_string(),
            received_at: row.text("received_at")?.to_string(),
        })
    }
}

#[derive(Serialize)]
struct Page {
    sales: Vec<UnattributedSale>,
}

pub fn list_unattributed_sales(req: &Request) -> Result<Response, ApiError> {
    let admin = authenticate_admin(req)?;
    let query: SalesQuery = platform::request::query(req)?;
    let limit = query.limit.map_or(DEFAULT_LIMIT, Limit::get);
    let sales = admin.db()?.query::<UnattributedSale>(
        "SELECT message_id, event, contact_id, order_id, funnel_id, amount_cents, currency,
            candidates, reason, received_at
         FROM unattributed_sales ORDER BY received_at DESC, message_id LIMIT CAST(? AS INTEGER)",
        &[Value::Integer(i64::from(limit))],
    )?;
    platform::response::json(200, &Page { sales })
}
