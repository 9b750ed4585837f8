//! The Systeme.io public API client (`X-API-Key`), over [`platform::outbound`] (wasi:http with
//! explicit timeouts). Configured from the `systeme_api_key` and `systeme_api_base` variables.
//!
//! Calls used: `GET /api/contacts?email=` (find), `POST /api/contacts` (create),
//! `GET /api/contacts/{id}` (read a contact's tags), `GET /api/tags?query=` (paged) and
//! `POST /api/tags` (make sure a tag exists), `POST /api/contacts/{id}/tags` (assign by id).
//! Every failure is classified so the sync can decide: rate limited (honour `Retry-After` /
//! `X-RateLimit-Refill`, see [`domain::lead::upstream_wait_secs`]), unavailable (5xx), invalid
//! (`422`, Symfony validation violations), rejected (other 4xx), transport (timeouts, refused
//! connections) or a bad response body.
//!
//! What the public API does, as far as its documentation and well-tested integrations show:
//! `GET /api/tags?query=` is a substring search, paginated (`limit` 10–100, `startingAfter` the
//! last id seen, `order`, answer `{items, hasMore}`); a `422` carries `violations` whose
//! `message` is translated into the account's language, so only `propertyPath` is ever matched.

#![forbid(unsafe_code)]

use std::time::Duration;

use anyhow::Context;
use domain::secret::SystemeApiKey;
use serde::Deserialize;
use serde_json::json;

use domain::lead::upstream_wait_secs;
use platform::ApiError;
use platform::clock::now_unix;
use platform::config::variable;
use platform::outbound::{HttpResponse, Timeouts, TransportError, send};

/// One Symfony validation violation of a `422`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    /// The field at fault (`email`, `tagId`, `fields[2].slug`): stable, safe to match on.
    #[serde(default)]
    pub property_path: String,
    /// Human text in the account's language: for people and logs only, never matched on.
    #[serde(default)]
    pub message: String,
}

/// A `422`'s violations, as one readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    /// Whether a violation is about `path` (e.g. `tagId`).
    pub fn concerns(&self, path: &str) -> bool {
        self.0.iter().any(|v| v.property_path == path)
    }
}

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no violations given");
        }
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if v.property_path.is_empty() {
                f.write_str(&v.message)?;
            } else {
                write!(f, "{}: {}", v.property_path, v.message)?;
            }
        }
        Ok(())
    }
}

/// Why a Systeme.io call failed.
#[derive(Debug, thiserror::Error)]
pub enum SystemeError {
    #[error("rate limited (retry after {retry_after:?} s)")]
    RateLimited { retry_after: Option<i64> },
    #[error("unavailable: HTTP {status}")]
    Unavailable { status: u16 },
    #[error("invalid (HTTP 422): {0}")]
    Invalid(Violations),
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
    /// API calls made through this client (each counts against the caller's budget).
    calls: std::cell::Cell<u32>,
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

/// Most tags asked for per page (the API accepts 10–100).
const TAG_PAGE: &str = "100";
/// Most pages of look-alike tags read before giving up on a lookup.
const MAX_TAG_PAGES: usize = 50;

#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
    #[serde(default, rename = "hasMore")]
    has_more: bool,
}

#[derive(Deserialize)]
struct Contact {
    id: i64,
    email: Option<String>,
}

/// A tag as Systeme.io lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct TagItem {
    pub id: i64,
    pub name: String,
}

#[derive(Deserialize)]
struct ContactTags {
    #[serde(default)]
    tags: Vec<TagItem>,
}

/// A `422` body: Symfony's `violations`, or at least its `detail` (`path: message` lines).
#[derive(Deserialize)]
struct Unprocessable {
    #[serde(default)]
    violations: Vec<Violation>,
    #[serde(default)]
    detail: Option<String>,
}

fn violations(body: &[u8]) -> Violations {
    let Ok(parsed) = serde_json::from_slice::<Unprocessable>(body) else {
        return Violations(vec![Violation {
            property_path: String::new(),
            message: String::from_utf8_lossy(body).chars().take(300).collect(),
        }]);
    };
    if !parsed.violations.is_empty() {
        return Violations(parsed.violations);
    }
    Violations(
        parsed
            .detail
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| match line.split_once(": ") {
                Some((path, message)) if !path.contains(' ') => Violation {
                    property_path: path.trim().to_string(),
                    message: message.trim().to_string(),
                },
                _ => Violation {
                    property_path: String::new(),
                    message: line.trim().to_string(),
                },
            })
            .collect(),
    )
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
        Ok(Some(Self {
            base,
            key,
            calls: std::cell::Cell::new(0),
        }))
    }

    /// How many API calls this client has made.
    pub fn calls_made(&self) -> u32 {
        self.calls.get()
    }

    fn call(
        &self,
        method: &http::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<HttpResponse, SystemeError> {
        self.calls.set(self.calls.get().saturating_add(1));
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
                retry_after: upstream_wait_secs(
                    response.header("retry-after"),
                    response.header("x-ratelimit-refill"),
                    now_unix(),
                ),
            }),
            422 => Err(SystemeError::Invalid(violations(&response.body))),
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

    /// Creates a contact; returns its id. A duplicate email, an invalid one or a field
    /// Systeme.io does not accept is [`SystemeError::Invalid`].
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

    /// The tags a contact has now.
    pub fn contact_tags(&self, contact_id: i64) -> Result<Vec<TagItem>, SystemeError> {
        let path = format!("/api/contacts/{contact_id}");
        let response = self.call(&http::Method::GET, &path, &[], None)?;
        let contact: ContactTags = Self::parse(&response)?;
        Ok(contact.tags)
    }

    /// The id of the tag called exactly `name`, if it exists: the oldest one, should there be
    /// several. The search matches substrings, so look-alikes (`…-demo-request-v2`) are paged
    /// through (oldest first, 100 a page) until the exact name turns up or `hasMore` is false.
    pub fn find_tag(&self, name: &str) -> Result<Option<i64>, SystemeError> {
        let mut after: Option<i64> = None;
        for _ in 0..MAX_TAG_PAGES {
            let cursor = after.map(|id| id.to_string());
            let mut query = vec![("query", name), ("limit", TAG_PAGE), ("order", "asc")];
            if let Some(cursor) = cursor.as_deref() {
                query.push(("startingAfter", cursor));
            }
            let response = self.call(&http::Method::GET, "/api/tags", &query, None)?;
            let page: Items<TagItem> = Self::parse(&response)?;
            if let Some(id) = page
                .items
                .iter()
                .filter(|t| t.name == name)
                .map(|t| t.id)
                .min()
            {
                return Ok(Some(id));
            }
            if !page.has_more {
                return Ok(None);
            }
            let last = page.items.iter().map(|t| t.id).max().ok_or_else(|| {
                SystemeError::BadResponse("tag page with hasMore but no items".into())
            })?;
            if after.is_some_and(|seen| last <= seen) {
                return Err(SystemeError::BadResponse(
                    "tag pages do not advance past startingAfter".into(),
                ));
            }
            after = Some(last);
        }
        Err(SystemeError::BadResponse(format!(
            "over {MAX_TAG_PAGES} pages of tags look like {name}"
        )))
    }

    /// Creates a tag; returns its id.
    pub fn create_tag(&self, name: &str) -> Result<i64, SystemeError> {
        let body = json!({ "name": name });
        let response = self.call(&http::Method::POST, "/api/tags", &[], Some(&body))?;
        let created: TagItem = Self::parse(&response)?;
        Ok(created.id)
    }

    /// Assigns a tag to a contact (`204`). A `422` is returned as is: a violation on `tagId`
    /// means the tag does not exist (deleted in Systeme.io); any other may mean the contact
    /// has it already, which only reading the contact's tags can tell.
    pub fn assign_tag(&self, contact_id: i64, tag_id: i64) -> Result<(), SystemeError> {
        let body = json!({ "tagId": tag_id });
        let path = format!("/api/contacts/{contact_id}/tags");
        self.call(&http::Method::POST, &path, &[], Some(&body))
            .map(drop)
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
