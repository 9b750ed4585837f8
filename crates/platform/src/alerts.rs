//! Waking the `alerts` component after a write that queued an alert.
//!
//! An alert is a row the write's trigger adds (docs/alerts.md), so it is stored with the change
//! whether or not this call happens; the call only makes it go out within seconds instead of at
//! the next batch. The write says whether to call ([`kick_alerts_column!`]): when the tenant has
//! an active rule of the kind and no delivery run holds `alert_runner`. A run that holds it
//! looks again before letting go, so an alert queued meanwhile is never left for the batch.

use std::time::Duration;

use crate::outbound::{Timeouts, send};

/// The chained route of the `alerts` component.
pub const RUN_URL: &str = "http://alerts.spin.internal/v1/internal/alerts/run";

/// A `RETURNING` column, `kick_alerts`, of a tenant's write: whether to call [`kick`]. The
/// statement binds `:alert_events` (a JSON array of the rule events the write may fire) and
/// `:now` (the write's time, RFC 3339). Evaluated inside the write, so it sees the runner as
/// the write leaves it.
#[macro_export]
macro_rules! kick_alerts_column {
    () => {
        "EXISTS (SELECT 1 FROM alert_rules WHERE tenant_id = ?1
            AND event IN (SELECT value FROM json_each(:alert_events))
            AND enabled AND disabled_at IS NULL)
        AND (SELECT until FROM alert_runner WHERE id = 1) <= CAST(strftime('%s', :now) AS INTEGER)
        AS kick_alerts"
    };
}

/// Asks `alerts` to send what is due. It answers at once and sends afterwards; a failure here
/// only delays the alert to the next batch, so it is logged, never returned.
pub fn kick() {
    let Ok(url) = url::Url::parse(RUN_URL) else {
        return;
    };
    let timeouts = Timeouts {
        connect: Duration::from_secs(1),
        first_byte: Duration::from_secs(2),
        between_bytes: Duration::from_secs(2),
    };
    if let Err(e) = send(&http::Method::POST, &url, &[], Some(b""), timeouts) {
        eprintln!("alerts: waking the alerts component failed ({e}); the batch sends them");
    }
}
