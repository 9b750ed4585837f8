//! `GET /app/...` and `GET /embed/v1.js`: one compiled-in file with the headers its audience
//! needs. The page gets a strict `Content-Security-Policy` (its scripts and styles are files of
//! its own, never inline); the form script may be loaded from any landing page.

use spin_sdk::http::{Request, Response};

use crate::assets::{Asset, Audience};

/// Everything the page loads comes from this origin; nothing may frame it.
const PAGE_CSP: &str = "default-src 'self'; base-uri 'none'; object-src 'none'; \
                        form-action 'self'; frame-ancestors 'none'";

pub fn serve_asset(req: &Request, asset: &Asset, head: bool) -> Response {
    let fresh = req
        .header("if-none-match")
        .and_then(|v| v.as_str())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
    let (status, body) = match (fresh, head) {
        (true, _) => (304, Vec::new()),
        (false, true) => (200, Vec::new()),
        (false, false) => (200, asset.body.to_vec()),
    };
    let mut resp = Response::builder()
        .status(status)
        .header("content-type", asset.content_type)
        .header("etag", asset.etag)
        .header("x-content-type-options", "nosniff")
        .body(body)
        .build();
    match asset.audience {
        Audience::Dashboard => {
            resp.set_header("content-security-policy", PAGE_CSP);
            resp.set_header("cache-control", "no-cache");
            resp.set_header("referrer-policy", "no-referrer");
            resp.set_header("x-frame-options", "DENY");
            resp.set_header("cross-origin-opener-policy", "same-origin");
        }
        Audience::Embed => {
            resp.set_header("cache-control", "public, max-age=300");
            resp.set_header("access-control-allow-origin", "*");
            resp.set_header("cross-origin-resource-policy", "cross-origin");
        }
    }
    resp
}

/// A permanent redirect to `location` (`/app` → `/app/`).
pub fn redirect(location: &str) -> Response {
    Response::builder()
        .status(308)
        .header("location", location)
        .body(Vec::new())
        .build()
}
