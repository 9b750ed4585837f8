//! The one mapping from errors to HTTP: every status is a variant, every body problem+json
//! (RFC 9457) with a stable `code`. 5xx bodies say nothing of the internals; the cause chain goes
//! to stderr, where Spin keeps component logs.

use serde::Serialize;
use spin_sdk::http::Response;

/// Why a request failed, as the client is told.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read at all (malformed JSON, bad query).
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    /// 401: missing or invalid credentials or signature.
    #[error("{detail}")]
    Unauthorized { code: &'static str, detail: String },
    /// 403: valid credentials without the needed scope.
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// 404: no such resource, or one that belongs to another tenant.
    #[error("{detail}")]
    NotFound { code: &'static str, detail: String },
    /// 405: the route exists but not with this method.
    #[error("method not allowed; allowed: {}", allowed.join(", "))]
    MethodNotAllowed { allowed: &'static [&'static str] },
    /// 409: conflicts with existing state.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// 413: body over the limit.
    #[error("{detail}")]
    PayloadTooLarge { code: &'static str, detail: String },
    /// 415: unsupported content type.
    #[error("{detail}")]
    UnsupportedMediaType { code: &'static str, detail: String },
    /// 422: well-formed but invalid fields.
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String },
    /// 429: slow down; retry after the given number of seconds.
    #[error("{detail}")]
    RateLimited {
        code: &'static str,
        detail: String,
        retry_after_secs: u64,
    },
    /// 503: storage stayed unavailable (busy, locked, unreachable) through every retry of
    /// the request's work. Nothing was half-written; the client should retry after the given
    /// number of seconds.
    #[error("storage is temporarily unavailable; retry in {retry_after_secs} s")]
    StorageUnavailable {
        retry_after_secs: u64,
        cause: anyhow::Error,
    },
    /// 503: a service the request depends on (outside the app and its storage) gave no usable
    /// answer. Nothing was stored; the client should retry after the given number of seconds.
    #[error("{detail}")]
    UpstreamUnavailable {
        code: &'static str,
        detail: String,
        retry_after_secs: u64,
    },
    /// 503: the app is configured in a way it refuses to serve with (a weak or published
    /// secret); nothing a retry fixes.
    #[error("{detail}")]
    Unavailable { code: &'static str, detail: String },
    /// 500: anything unexpected. Only the generic text reaches the client.
    #[error("internal error")]
    Unexpected(anyhow::Error),
}

/// Seconds a client is asked to wait after a `503 storage_unavailable`.
pub const STORAGE_RETRY_AFTER_SECS: u64 = 2;

/// A failure from storage or anywhere else: transient storage failures become
/// [`ApiError::StorageUnavailable`], everything else [`ApiError::Unexpected`].
impl From<anyhow::Error> for ApiError {
    fn from(cause: anyhow::Error) -> Self {
        if crate::storage_error::is_transient(&cause) {
            Self::StorageUnavailable {
                retry_after_secs: STORAGE_RETRY_AFTER_SECS,
                cause,
            }
        } else {
            Self::Unexpected(cause)
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest { .. } => 400,
            Self::Unauthorized { .. } => 401,
            Self::Forbidden { .. } => 403,
            Self::NotFound { .. } => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Conflict { .. } => 409,
            Self::PayloadTooLarge { .. } => 413,
            Self::UnsupportedMediaType { .. } => 415,
            Self::Unprocessable { .. } => 422,
            Self::RateLimited { .. } => 429,
            Self::StorageUnavailable { .. }
            | Self::UpstreamUnavailable { .. }
            | Self::Unavailable { .. } => 503,
            Self::Unexpected(_) => 500,
        }
    }

    /// The stable machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::PayloadTooLarge { code, .. }
            | Self::UnsupportedMediaType { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::RateLimited { code, .. }
            | Self::UpstreamUnavailable { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::StorageUnavailable { .. } => "storage_unavailable",
            Self::Unexpected(_) => "internal_error",
        }
    }

    fn title(&self) -> &'static str {
        match self.status() {
            400 => "Bad request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not found",
            405 => "Method not allowed",
            409 => "Conflict",
            413 => "Payload too large",
            415 => "Unsupported media type",
            422 => "Unprocessable content",
            429 => "Too many requests",
            503 => "Service unavailable",
            _ => "Internal server error",
        }
    }

    /// A 404 for a path no route of this component serves.
    pub fn route_not_found(path: &str) -> Self {
        Self::NotFound {
            code: "route_not_found",
            detail: format!("no route for {path}"),
        }
    }

    /// The problem+json response. A 5xx logs its cause chain to stderr first.
    pub fn into_response(self) -> Response {
        match &self {
            Self::Unexpected(cause) => eprintln!("error: {cause:#}"),
            Self::StorageUnavailable { cause, .. } => {
                eprintln!("storage unavailable after retries: {cause:#}");
            }
            _ => {}
        }
        let detail = match &self {
            Self::Unexpected(_) => "An unexpected error occurred. It has been logged.".to_string(),
            other => other.to_string(),
        };
        let code = self.code();
        let problem = Problem {
            kind: format!("urn:clientflow:problem:{code}"),
            title: self.title(),
            status: self.status(),
            detail: &detail,
            code,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut builder = Response::builder();
        builder
            .status(self.status())
            .header("content-type", "application/problem+json")
            .header("cache-control", "no-store");
        match &self {
            Self::RateLimited {
                retry_after_secs, ..
            }
            | Self::StorageUnavailable {
                retry_after_secs, ..
            }
            | Self::UpstreamUnavailable {
                retry_after_secs, ..
            } => {
                builder.header("retry-after", retry_after_secs.to_string());
            }
            Self::MethodNotAllowed { allowed } => {
                builder.header("allow", allowed.join(", "));
            }
            _ => {}
        }
        builder.body(body).build()
    }
}

/// Lets a handler registered on spin-sdk's `Router` return `Result<Response, ApiError>`.
impl spin_sdk::http::IntoResponse for ApiError {
    fn into_response(self) -> Response {
        ApiError::into_response(self)
    }
}
