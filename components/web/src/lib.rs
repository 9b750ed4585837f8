//! `web` component: the IB's dashboard page under `/app/...` and the embeddable form script at
//! `/embed/v1.js`. Every byte it serves is compiled in ([`assets`]); it reads no storage and no
//! variables, and the page talks to `/v1/dashboard/*` with the token the browser holds.

// `#[http_component]` expands to the component's exported ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

mod assets;
mod serve_asset;

use platform::ApiError;
use spin_sdk::http::{IncomingRequest, Method, Response};
use spin_sdk::http_component;

#[http_component]
async fn handle_web(incoming: IncomingRequest) -> Response {
    // The page's routes take no body; the limit still holds, as on every route.
    let req = match platform::request::read_limited(incoming, 0).await {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
    let path = req.path().to_string();
    let head = *req.method() == Method::Head;
    if *req.method() != Method::Get && !head {
        return ApiError::MethodNotAllowed {
            allowed: &["GET", "HEAD"],
        }
        .into_response();
    }
    // `/app` has no trailing slash: relative asset URLs need one.
    if path == "/app" {
        return serve_asset::redirect("/app/");
    }
    match assets::find(&path) {
        Some(asset) => serve_asset::serve_asset(&req, asset, head),
        None => ApiError::route_not_found(&path).into_response(),
    }
}
