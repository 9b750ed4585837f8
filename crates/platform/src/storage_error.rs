//! Which storage failures are worth another try.
//!
//! Spin reports every SQLite failure as `Error::Io(text)`, so the kind is read from SQLite's
//! (or libSQL's) own message. A transient failure is wrapped in [`Transient`] where it happens; the retry loop
//! ([`crate::retry`]) runs the unit of work again, and what still fails becomes `503
//! storage_unavailable` ([`crate::ApiError`]) instead of a bare `500`.

/// Why a storage call failed for a reason that may pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransientKind {
    /// `SQLITE_BUSY` / `SQLITE_LOCKED`: another writer holds the lock.
    Busy,
    /// `SQLITE_INTERRUPT`: the statement was interrupted (libSQL does this under load).
    Interrupted,
    /// The database could not be reached, or its stream broke (libSQL's Hrana streams), or a
    /// disk I/O error.
    Unreachable,
}

/// A transient storage failure, kept in the error chain so the top of the request can tell it
/// from a bug.
#[derive(Debug, thiserror::Error)]
#[error("storage temporarily unavailable ({kind:?}): {message}")]
pub struct Transient {
    pub kind: TransientKind,
    pub message: String,
}

/// The transient kind of an SQLite (or libSQL) error message, if it is one.
pub fn classify_sqlite(message: &str) -> Option<TransientKind> {
    let m = message.to_ascii_lowercase();
    if m.contains("database is locked")
        || m.contains("database table is locked")
        || m.contains("sqlite_busy")
        || m.contains("sqlite_locked")
        || m.contains("database is busy")
    {
        Some(TransientKind::Busy)
    } else if m.contains("interrupt") {
        Some(TransientKind::Interrupted)
    } else if m.contains("disk i/o error")
        || m.contains("stream")
        || m.contains("connection")
        || m.contains("timed out")
        || m.contains("unable to open database")
    {
        Some(TransientKind::Unreachable)
    } else {
        None
    }
}

/// Whether an SQLite (or libSQL) error message reports a unique constraint of `table` refusing
/// a row (`UNIQUE constraint failed: <table>.<column>…`).
pub fn violates_unique(message: &str, table: &str) -> bool {
    message.contains(&format!("UNIQUE constraint failed: {table}."))
}

/// Wraps an SQLite error: transient ones become [`Transient`] so they can be retried.
pub(crate) fn sqlite_error(error: &spin_sdk::sqlite::Error) -> anyhow::Error {
    let message = format!("{error:?}");
    match error {
        spin_sdk::sqlite::Error::Io(text) => match classify_sqlite(text) {
            Some(kind) => Transient { kind, message }.into(),
            None => anyhow::anyhow!(message),
        },
        _ => anyhow::anyhow!(message),
    }
}

/// Whether `error`'s chain holds a transient storage failure.
pub fn is_transient(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.is::<Transient>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_and_locked_databases_are_transient() {
        for message in [
            "database is locked",
            "Hrana: `api error: `status=500, body={\"message\":\"SQLITE_BUSY: database is locked\"}``",
            "database table is locked: leads",
        ] {
            assert_eq!(
                classify_sqlite(message),
                Some(TransientKind::Busy),
                "{message}"
            );
        }
    }

    #[test]
    fn interrupts_and_broken_streams_are_transient() {
        assert_eq!(
            classify_sqlite("SQLITE_INTERRUPT: interrupted"),
            Some(TransientKind::Interrupted)
        );
        for message in [
            "Timed out while opening database connection",
            "stream not found",
            "disk I/O error",
        ] {
            assert_eq!(
                classify_sqlite(message),
                Some(TransientKind::Unreachable),
                "{message}"
            );
        }
    }

    #[test]
    fn bugs_and_constraint_failures_are_not_transient() {
        for message in [
            "near \"SELEC\": syntax error in SELEC nonsense at offset 0",
            "UNIQUE constraint failed: u.k",
            "no such table: leads",
        ] {
            assert_eq!(classify_sqlite(message), None, "{message}");
        }
    }

    #[test]
    fn the_transient_marker_survives_context() {
        let e = sqlite_error(&spin_sdk::sqlite::Error::Io("database is locked".into()))
            .context("capturing a lead");
        assert!(is_transient(&e));
        let bug = sqlite_error(&spin_sdk::sqlite::Error::Io("no such column: x".into()));
        assert!(!is_transient(&bug));
    }
}
