//! `POST /v1/systeme/events`: verify the signature on the raw body, parse, then apply the event
//! once. Anything Systeme.io sends that we do not handle is acknowledged (`200`), never `5xx`,
//! so it is not redelivered forever.

use domain::events::{EventError, SystemeEvent};
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
    let event = match SystemeEvent::parse(callback.event, callback.body) {
        Ok(event) => event,
        // Signed, so it came from Systeme.io: acknowledged, so it is not redelivered, and
        // applied nowhere, since only the body is signed and the name may have been changed.
        Err(e @ EventError::Mismatch(_)) => {
            eprintln!(
                "systeme event {:?} (message {}) ignored: {e}",
                callback.event, callback.message_id
            );
            return platform::response::json(
                200,
                &Ack {
                    status: Outcome::Ignored,
                },
            );
        }
        Err(e) => {
            return Err(ApiError::BadRequest {
                code: "invalid_event",
                detail: e.to_string(),
            });
        }
    };
    let status = receive(&callback, &event)?;
    platform::response::json(200, &Ack { status })
}
