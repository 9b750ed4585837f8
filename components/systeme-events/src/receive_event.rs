//! `POST /v1/systeme/events`: verify the signature on the raw body, parse, then apply the event
//! once. Anything Systeme.io sends that we do not handle is acknowledged (`200`), never `5xx`,
//! so it is not redelivered forever.

use domain::events::SystemeEvent;
use platform::ApiError;
use platform::auth::verify_systeme_callback;
use serde::Serialize;
use spin_sdk::http::{Request, Response};

use crate::store::{Outcome, receive};

#[derive(Serialize)]
struct Ack {
    status: Outcome,
}

pub fn receive_event(req: &Request) -> Result<Response, ApiError> {
    let callback = verify_systeme_callback(req)?;
    let event =
        SystemeEvent::parse(callback.event, callback.body).map_err(|e| ApiError::BadRequest {
            code: "invalid_event",
            detail: e.to_string(),
        })?;
    let status = receive(&callback, &event)?;
    platform::response::json(200, &Ack { status })
}
