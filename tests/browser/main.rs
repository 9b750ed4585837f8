//! End-to-end tests in a real headless Chromium: the dashboard page at `/app/` against the app
//! on the local host (or real Spin), the form script at `/embed/v1.js` on a landing page served
//! from another origin, and the dashboard link `./scripts/run` prints.
//!
//! Each test starts its own app, its own chromedriver (on a free port, killed after) and its own
//! servers. Screenshots land in `target/screenshots/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod alerts;
mod dashboard;
mod demo;
mod driver;
mod embed;
mod servers;

use api_tests::{TestApp, TestTenant, json_body};
use serde_json::{Value, json};

/// GETs a dashboard route with the tenant's token and returns its JSON.
pub async fn api_json(app: &TestApp, path: &str, tenant: &TestTenant) -> Value {
    let resp = app
        .client
        .get(app.url(path))
        .bearer_auth(tenant.dashboard_token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    json_body(resp).await
}

/// Posts a signed Systeme.io event and asserts it applied.
pub async fn event(app: &TestApp, id: &str, name: &str, body: Value) {
    let resp = app.post_systeme_event(name, id, &body.to_string()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_body(resp).await["status"], "applied", "{id}");
}

/// Applies a "tag added" event: `suffix` under the tenant's prefix.
pub async fn tag(app: &TestApp, id: &str, tenant: &TestTenant, email: &str, suffix: &str) {
    let name = format!("{}{suffix}", tenant.tag_prefix);
    let body = json!({"contact": {"email": email, "tags": [{"id": 1, "name": name}]}, "tag": {"id": 1, "name": name}});
    event(app, id, "CONTACT_TAG_ADDED", body).await;
}

/// Replaces the tenant's settings through the API.
pub async fn put_settings(app: &TestApp, tenant: &TestTenant, settings: Value) {
    let resp = app
        .client
        .put(app.url("/v1/dashboard/settings"))
        .bearer_auth(tenant.dashboard_token())
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "settings {settings}");
}

/// The dashboard page signed in with `token` (through the URL fragment, as the SaaS links it).
pub fn app_link(app: &TestApp, token: &str) -> String {
    app.url(&format!("/app/#token={token}"))
}
