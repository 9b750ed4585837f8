//! Successful responses, and the single place a handler result becomes an HTTP response.

use serde::Serialize;
use spin_sdk::http::{Fields, OutgoingResponse, Params, Request, Response, ResponseOutparam};

use crate::ApiError;

/// A JSON response with the given status.
pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| ApiError::Unexpected(anyhow::Error::new(e).context("serialising response")))?;
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(bytes)
        .build())
}

/// Turns a handler's result into the response: errors become problem+json.
pub fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(ApiError::into_response)
}

/// Runs a handler's whole unit of work, again on transient storage failures (see
/// [`crate::retry`]), and turns its result into the response. Every route goes through this.
pub fn handle(work: impl FnMut() -> Result<Response, ApiError>) -> Response {
    respond(crate::retry::with_retries(work))
}

/// Sends a buffered response through the streaming entry point's outparam (the form a handler
/// takes when it streams, or keeps working after it has answered).
pub async fn send(out: ResponseOutparam, resp: Response) {
    let headers: Vec<(String, Vec<u8>)> = resp
        .headers()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    let Ok(fields) = Fields::from_list(&headers) else {
        eprintln!("building response headers failed");
        return;
    };
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(*resp.status());
    if let Err(e) = out.set_with_body(response, resp.into_body()).await {
        eprintln!("sending the response: {e:?}");
    }
}

/// A route handler that answers `405` naming the methods the path allows.
pub fn not_allowed(allowed: &'static [&'static str]) -> impl Fn(Request, Params) -> ApiError {
    move |_, _| ApiError::MethodNotAllowed { allowed }
}
