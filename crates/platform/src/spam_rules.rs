//! A tenant's spam rules as stored (`tenant_spam_rules`): the dashboard writes them, capture
//! reads them before a lead is stored. One read and one row mapping for both.

use anyhow::{Result, anyhow};
use domain::spam::SpamRules;

use crate::db::{FromRow, Row};
use crate::scope::TenantDb;
use crate::tenant_sql;

/// A `tenant_spam_rules` row, parsed again.
struct SpamRulesRow(SpamRules);

impl FromRow for SpamRulesRow {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        SpamRules::from_stored(
            row.opt_text("captcha_provider").as_deref(),
            row.opt_text("captcha_site_key").as_deref(),
            row.opt_text("captcha_secret").as_deref(),
            row.int("min_fill_seconds")?,
        )
        .map(Self)
        .map_err(|e| anyhow!("tenant_spam_rules: {e}"))
    }
}

/// The tenant's spam rules; no row: the defaults (no captcha, no minimum fill time).
pub fn read(db: &TenantDb) -> Result<SpamRules> {
    Ok(db
        .query_one::<SpamRulesRow>(
            tenant_sql!(
                "SELECT captcha_provider, captcha_site_key, captcha_secret, min_fill_seconds
                 FROM tenant_spam_rules WHERE tenant_id = ?1"
            ),
            &[],
        )?
        .map(|r| r.0)
        .unwrap_or_default())
}
