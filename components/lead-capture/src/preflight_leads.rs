//! `OPTIONS /v1/leads`: the CORS preflight. Browsers send no credentials on a preflight, so the
//! tenant is known only when the page put its capture key in the URL (`?key=`); then its
//! allowed origins decide. Otherwise the preflight is granted and `POST` itself enforces them.

use domain::token::Scope;
use platform::ApiError;
use platform::auth::{authenticate, query_key};
use platform::request::{origin, preflight, sent_origin};
use spin_sdk::http::{Request, Response};

pub fn preflight_leads(req: &Request) -> Result<Response, ApiError> {
    // `Origin: null` is checked like any other origin (and fails a list), but is never granted.
    if let Some(sent) = sent_origin(req)
        && query_key(req).is_some_and(|k| !k.is_empty())
    {
        let ctx = authenticate(req, Scope::Capture)?;
        if !ctx.tenant().settings.allows_origin(sent) {
            return Err(crate::capture_lead::origin_not_allowed());
        }
    }
    let Some(origin) = origin(req) else {
        let mut resp = Response::builder().status(204).body(Vec::new()).build();
        resp.set_header("allow", "POST, OPTIONS");
        return Ok(resp);
    };
    Ok(preflight(origin))
}
