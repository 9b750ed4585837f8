//! `POST /v1/systeme/events`: verify the signature on the raw body, then apply the event once.
//! Anything Systeme.io sends that we do not handle is acknowledged (`200`), never `5xx`, so it
//! is not redelivered forever.

use platform::ApiError;
use platform::events::{Outcome, receive, verify};
use serde::Serialize;
use spin_sdk::http::{Request, Response};

#[derive(Serialize)]
struct Ack {
    status: Outcome,
}

pub fn receive_event(req: &Request) -> Result<Response, ApiError> {
    let verified = verify(req)?;
    let status = receive(&verified)?;
    platform::response::json(200, &Ack { status })
}
