//! Query-string helpers shared by the dashboard's handlers.

use platform::ApiError;
use spin_sdk::http::Request;

/// The request's query pairs, decoded.
pub fn pairs(req: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A bad query parameter: `400 invalid_query`.
pub fn invalid(e: &domain::dashboard::QueryError) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_query",
        detail: e.to_string(),
    }
}

/// The `404` for a lead that is not this tenant's: missing and foreign ids answer alike.
pub fn lead_not_found() -> ApiError {
    ApiError::NotFound {
        code: "lead_not_found",
        detail: "no such lead".into(),
    }
}
