//! The Systeme.io public API client (`X-API-Key`), over [`platform::outbound`] (wasi:http with
//! explicit timeouts). Configured from the `systeme_api_key` and `systeme_api_base` variables.
//!
//! Calls used: `GET /api/contacts?email=` (find), `POST /api/contacts` (create),
//! `GET /api/tags?query=` and `POST /api/tags` (make sure a tag exists),
//! `POST /api/contacts/{id}/tags` (assign by id). Every failure is classified so the sync can
//! decide: rate limited (honour `Retry-After` / `X-RateLimit-Refill`), unavailable (5xx),
//! rejected (other 4xx), transport (timeouts, refused connections) or a bad response body.

#![forbid(unsafe_code)]

use std::time::Duration;

use anyhow::Context;
use domain::secret::SystemeApiKey;
use serde::Deserialize;
use serde_json::json;

use platform::ApiError;
use platform::config::variable;
use platform::outbound::{HttpResponse, Timeouts, TransportError, send};

/// Why a Systeme.io call failed.
#[derive(Debug, thiserror::Error)]
pub enum SystemeError {
    #[error("rate limited (retry after {retry_after:?} s)")]
    RateLimited { retry_after: Option<i64> },
    #[error("unavailable: HTTP {status}")]
    Unavailable { status: u16 },
    #[error("rejected: HTTP {status}: {detail}")]
    Rejected { status: u16, detail: String },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("unexpected response: {0}")]
    BadResponse(String),
}

impl SystemeError {
    /// Seconds Systeme.io asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<i64> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// The timeouts every Systeme.io call gets: a visitor may be waiting on an inline sync.
pub const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    first_byte: Duration::from_secs(4),
    between_bytes: Duration::from_secs(4),
};

/// A configured client. Built only when `systeme_api_key` is set.
pub struct SystemeClient {
    base: url::Url,
    key: SystemeApiKey,
}

/// A contact to create.
#[derive(Debug)]
pub struct NewContact<'a> {
    pub email: &'a str,
    pub first_name: Option<&'a str>,
    pub surname: Option<&'a str>,
    pub phone_number: Option<&'a str>,
    pub tenant_id: &'a str,
    pub tag_prefix: &'a str,
}

/// Custom contact fields (create them in Systeme.io with these slugs) that record which tenant
/// first brought a contact in.
pub const TENANT_ID_FIELD: &str = "clientflow_tenant_id";
pub const TAG_PREFIX_FIELD: &str = "clientflow_tag_prefix";

#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

#[derive(Deserialize)]
struct Contact {
    id: i64,
    email: Option<String>,
}

#[derive(Deserialize)]
struct TagItem {
    id: i64,
    name: String,
}

impl SystemeClient {
    /// From the `systeme_api_key` and `systeme_api_base` variables; `None` when the key is
    /// empty (syncing is off and leads stay pending).
    pub fn from_variables() -> Result<Option<Self>, ApiError> {
        let value = variable("systeme_api_key")?;
        let Some(key) = SystemeApiKey::parse(&value).context("variable systeme_api_key")? else {
            return Ok(None);
        };
        let base = parse_base(&variable("systeme_api_base")?)?;
        Ok(Some(Self { base, key }))
    }

    fn call(
        &self,
        method: &http::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<HttpResponse, SystemeError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| SystemeError::BadResponse(format!("bad URL {path}: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| SystemeError::BadResponse(format!("serialising the request body: {e}")))?;
        let mut headers = vec![
            ("x-api-key", self.key.expose()),
            ("accept", "application/json"),
        ];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let response = send(method, &url, &headers, body.as_deref(), TIMEOUTS)?;
        match response.status {
            200..=299 => Ok(response),
            429 => Err(SystemeError::RateLimited {
                retry_after: response
                    .header("retry-after")
                    .or_else(|| response.header("x-ratelimit-refill"))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    // Whole seconds, rounded up, never more than a day.
                    .map(|s| s.ceil().min(86_400.0) as i64),
            }),
            status @ 500..=599 => Err(SystemeError::Unavailable { status }),
            status => Err(SystemeError::Rejected {
                status,
                detail: String::from_utf8_lossy(&response.body)
                    .chars()
                    .take(300)
                    .collect(),
            }),
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(response: &HttpResponse) -> Result<T, SystemeError> {
        serde_json::from_slice(&response.body).map_err(|e| SystemeError::BadResponse(e.to_string()))
    }

    /// The id of the contact with this email, if Systeme.io has one.
    pub fn find_contact(&self, email: &str) -> Result<Option<i64>, SystemeError> {
        let response = self.call(
            &http::Method::GET,
            "/api/contacts",
            &[("email", email)],
            None,
        )?;
        let found: Items<Contact> = Self::parse(&response)?;
        Ok(found
            .items
            .into_iter()
            .find(|c| {
                c.email
                    .as_deref()
                    .is_none_or(|e| e.eq_ignore_ascii_case(email))
            })
            .map(|c| c.id))
    }

    /// Creates a contact; returns its id.
    pub fn create_contact(&self, contact: &NewContact<'_>) -> Result<i64, SystemeError> {
        let mut fields = Vec::new();
        for (slug, value) in [
            ("first_name", contact.first_name),
            ("surname", contact.surname),
            ("phone_number", contact.phone_number),
            (TENANT_ID_FIELD, Some(contact.tenant_id)),
            (TAG_PREFIX_FIELD, Some(contact.tag_prefix)),
        ] {
            if let Some(value) = value {
                fields.push(json!({ "slug": slug, "value": value }));
            }
        }
        let body = json!({ "email": contact.email, "fields": fields });
        let response = self.call(&http::Method::POST, "/api/contacts", &[], Some(&body))?;
        let created: Contact = Self::parse(&response)?;
        Ok(created.id)
    }

    /// The id of the tag called exactly `name`, if it exists.
    pub fn find_tag(&self, name: &str) -> Result<Option<i64>, SystemeError> {
        let response = self.call(&http::Method::GET, "/api/tags", &[("query", name)], None)?;
        let found: Items<TagItem> = Self::parse(&response)?;
        Ok(found
            .items
            .into_iter()
            .find(|t| t.name == name)
            .map(|t| t.id))
    }

    /// Creates a tag; returns its id.
    pub fn create_tag(&self, name: &str) -> Result<i64, SystemeError> {
        let body = json!({ "name": name });
        let response = self.call(&http::Method::POST, "/api/tags", &[], Some(&body))?;
        let created: TagItem = Self::parse(&response)?;
        Ok(created.id)
    }

    /// Assigns a tag to a contact. Systeme.io answers 422 when the contact already has it,
    /// which is success for us.
    pub fn assign_tag(&self, contact_id: i64, tag_id: i64) -> Result<(), SystemeError> {
        let body = json!({ "tagId": tag_id });
        let path = format!("/api/contacts/{contact_id}/tags");
        match self.call(&http::Method::POST, &path, &[], Some(&body)) {
            Ok(_) | Err(SystemeError::Rejected { status: 422, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// `systeme_api_base` as a URL, checked once.
fn parse_base(value: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(value.trim()).context("variable systeme_api_base is not a URL")?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "variable systeme_api_base must be http(s)"
    );
    Ok(url)
}
