//! Reading requests: body size and content type, form and JSON fields, the client address as
//! the host saw it, `Idempotency-Key`, `Accept`, and CORS headers.

use domain::client::{ForwardedHeader, Forwarding, TrustedProxies, client_address, rate_key};
use domain::lead::{BodyError, JsonFieldsError, RawFields};
use sha2::{Digest, Sha256};
use spin_sdk::http::{Request, Response};

use crate::ApiError;

/// Bodies larger than this are refused with 413 before any work.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header(name).and_then(|v| v.as_str())
}

/// What a request counts against for per-client rate limits ([`domain::client`]): the peer
/// address as the host saw the connection (`spin-client-addr`), or, when the peer is one of
/// `trusted` proxies, the address named by the forwarding header they write (`written`); an
/// IPv6 client by its /64.
///
/// A client may send its own `spin-client-addr`; Spin appends its value after the client's and
/// spin-sdk keeps the last one, so this is the host's (docs/spin-behaviour.md). Forwarding
/// headers from a peer that is not a trusted proxy are ignored: any client can forge them.
pub fn client_addr(req: &Request, trusted: &TrustedProxies, written: ForwardedHeader) -> String {
    let raw = header(req, "spin-client-addr").unwrap_or("unknown");
    let peer = raw
        .parse::<std::net::SocketAddr>()
        .map(|addr| addr.ip())
        .or_else(|_| raw.parse::<std::net::IpAddr>());
    let Ok(peer) = peer else {
        return raw.chars().take(64).collect();
    };
    let lines = |name: &str| -> Vec<&str> {
        req.headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| v.as_str())
            .collect()
    };
    let (forwarded, x_forwarded_for) = match written {
        _ if trusted.is_empty() => (Vec::new(), Vec::new()),
        ForwardedHeader::Forwarded => (lines(written.name()), Vec::new()),
        ForwardedHeader::XForwardedFor => (Vec::new(), lines(written.name())),
    };
    let headers = Forwarding {
        forwarded: &forwarded,
        x_forwarded_for: &x_forwarded_for,
    };
    rate_key(client_address(peer, headers, trusted))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge {
        code: "body_too_large",
        detail: format!("the body is over {limit} bytes"),
    }
}

/// Reads an incoming request whose body may hold at most `limit` bytes; every component's
/// entry point goes through this. A declared `Content-Length` over the limit is `413` before
/// a byte of the body is read; a body without one (chunked) is read only up to `limit + 1`
/// bytes, so no client can make a component buffer more than that.
pub async fn read_limited(
    incoming: spin_sdk::http::IncomingRequest,
    limit: usize,
) -> Result<Request, ApiError> {
    use futures::TryStreamExt as _;
    let headers = incoming.headers();
    let declared = headers
        .get("content-length")
        .first()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return Err(too_large(limit));
    }
    let method = incoming.method();
    let uri = incoming.uri();
    let mut stream = incoming.into_body_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.try_next().await.map_err(|e| ApiError::BadRequest {
        code: "unreadable_body",
        detail: format!(
            "the request body could not be read: {}",
            e.to_debug_string()
        ),
    })? {
        body.extend_from_slice(&chunk);
        if body.len() > limit {
            return Err(too_large(limit));
        }
    }
    Ok(Request::builder()
        .method(method)
        .uri(uri)
        .headers(headers)
        .body(body)
        .build())
}

/// The query string decoded into `T` (unknown parameters are ignored); `400 invalid_query`
/// naming the parameter when a value does not parse.
pub fn query<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    serde_urlencoded::from_str(req.query()).map_err(|e| ApiError::BadRequest {
        code: "invalid_query",
        detail: e.to_string(),
    })
}

/// A yes/no query parameter: `true`/`1` or `false`/`0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Flag(pub bool);

/// A flag that is none of `true`, `1`, `false`, `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("flags must be true or false (or 1 or 0)")]
pub struct NotAFlag;

impl TryFrom<String> for Flag {
    type Error = NotAFlag;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "true" | "1" => Ok(Self(true)),
            "false" | "0" => Ok(Self(false)),
            _ => Err(NotAFlag),
        }
    }
}

/// A `limit` query parameter (page or batch size). Invariant: `1..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Limit<const MAX: u32>(u32);

impl<const MAX: u32> Limit<MAX> {
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A `limit` that is not a whole number in `1..=max`; serde puts the message in the
/// `400 invalid_query` detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("limit must be a whole number from 1 to {max}")]
pub struct LimitOutOfRange {
    pub max: u32,
}

impl<const MAX: u32> TryFrom<String> for Limit<MAX> {
    type Error = LimitOutOfRange;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX).contains(l))
            .map(Self)
            .ok_or(LimitOutOfRange { max: MAX })
    }
}

/// How a form body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
}

/// The body's kind from `Content-Type`; anything else is `415`.
pub fn body_kind(req: &Request) -> Result<BodyKind, ApiError> {
    let content_type = header(req, "content-type").unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
        _ => Err(ApiError::UnsupportedMediaType {
            code: "unsupported_media_type",
            detail: format!(
                "send application/json or application/x-www-form-urlencoded, not {:?}",
                if essence.is_empty() {
                    "nothing"
                } else {
                    &essence
                }
            ),
        }),
    }
}

/// The submitted fields: `400` for a body that cannot be read, `422` naming a bad field.
pub fn fields(req: &Request, kind: BodyKind) -> Result<RawFields, ApiError> {
    let bad = |e: BodyError| ApiError::BadRequest {
        code: match e {
            BodyError::Form(_) => "invalid_form",
            _ => "invalid_json",
        },
        detail: e.to_string(),
    };
    match kind {
        BodyKind::Json => RawFields::from_json(req.body()).map_err(|e| match e {
            JsonFieldsError::Body(e) => bad(e),
            JsonFieldsError::Field(e) => ApiError::Unprocessable {
                code: "invalid_field",
                detail: e.to_string(),
            },
        }),
        BodyKind::Form => RawFields::from_form(req.body()).map_err(bad),
    }
}

/// Whether the client prefers an HTML page (a plain form post from a browser).
pub fn accepts_html(req: &Request) -> bool {
    header(req, "accept").is_some_and(|a| a.to_ascii_lowercase().contains("text/html"))
}

/// The `Origin` header as the browser sent it, `null` included: the opaque origin of a
/// sandboxed iframe, a `data:` or `file:` page, or a cross-origin redirect. This is what an
/// allowed-origins list is checked against, so `null` never passes one (no listed origin can
/// be `null`).
pub fn sent_origin(req: &Request) -> Option<&str> {
    header(req, "origin").filter(|o| !o.is_empty())
}

/// The origin CORS may be granted to: [`sent_origin`] without `null`, which any sandboxed page
/// can claim, so it is never echoed back.
pub fn origin(req: &Request) -> Option<&str> {
    sent_origin(req).filter(|o| *o != "null")
}

/// The `Idempotency-Key` header: 1–255 visible ASCII characters.
pub fn idempotency_key(req: &Request) -> Result<Option<String>, ApiError> {
    let Some(key) = req.header("idempotency-key") else {
        return Ok(None);
    };
    match key.as_str() {
        Some(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(k.to_string()))
        }
        _ => Err(ApiError::BadRequest {
            code: "invalid_idempotency_key",
            detail: "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        }),
    }
}

/// A digest of what a request asked for (content type and body), to tell a replay of an
/// `Idempotency-Key` from its reuse for something else.
pub fn request_hash(req: &Request) -> String {
    let mut hasher = Sha256::new();
    hasher.update(header(req, "content-type").unwrap_or_default().as_bytes());
    hasher.update([0]);
    hasher.update(req.body());
    hex::encode(hasher.finalize())
}

/// Headers a browser may send on a capture request, and that it may read back.
const ALLOWED_HEADERS: &str = "authorization, content-type, idempotency-key";
const EXPOSED_HEADERS: &str = "idempotent-replayed, retry-after";

/// Adds the CORS headers that let a page at `origin` read this response.
pub fn allow_origin(resp: &mut Response, origin: &str) {
    resp.set_header("access-control-allow-origin", origin);
    resp.set_header("access-control-expose-headers", EXPOSED_HEADERS);
    resp.set_header("vary", "origin");
}

/// The answer to a CORS preflight from `origin` for `POST`.
pub fn preflight(origin: &str) -> Response {
    let mut resp = Response::builder().status(204).body(Vec::new()).build();
    allow_origin(&mut resp, origin);
    resp.set_header("access-control-allow-methods", "POST, OPTIONS");
    resp.set_header("access-control-allow-headers", ALLOWED_HEADERS);
    resp.set_header("access-control-max-age", "600");
    resp
}
