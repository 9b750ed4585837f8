//! Ids: the canonical UUID form every stored id takes, and the typed [`LeadId`].

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// An id that is not a canonical UUID.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[error("{what} must be a lowercase hyphenated UUID")]
pub struct IdError {
    pub what: &'static str,
}

/// Whether `value` is a canonical UUID: 36 characters, lowercase hex, hyphens at 8, 13, 18
/// and 23.
pub(crate) fn is_canonical_uuid(value: &str) -> bool {
    value.len() == 36
        && value.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// A lead id. Invariant: a canonical UUID (version 7 when minted here, so ids sort by
/// creation time, which keyset pagination relies on).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LeadId(String);

impl LeadId {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if is_canonical_uuid(value) {
            Ok(Self(value.to_string()))
        } else {
            Err(IdError { what: "lead id" })
        }
    }
}

impl TryFrom<String> for LeadId {
    type Error = IdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<LeadId> for String {
    fn from(id: LeadId) -> Self {
        id.0
    }
}

impl std::fmt::Display for LeadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for LeadId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lead_id_must_be_a_canonical_uuid() {
        assert!(LeadId::parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").is_ok());
        for bad in [
            "",
            "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B",
            "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b",
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b ",
            "../../etc/passwd",
        ] {
            assert!(LeadId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_lead_id_deserialises_only_when_valid() {
        let ok: Result<LeadId, _> =
            serde_json::from_str("\"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\"");
        assert!(ok.is_ok());
        let bad: Result<LeadId, _> = serde_json::from_str("\"nope\"");
        assert!(bad.is_err());
    }
}
