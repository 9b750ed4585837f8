//! `Origin: null` (a sandboxed iframe, a `data:` or `file:` page) against a tenant's
//! allowed-origins list.

use api_tests::{assert_problem, spawn_app, url_encode_pairs};
use serde_json::json;

/// A plain form post from a page whose origin is `origin`: a "simple" cross-origin request,
/// which a browser sends without a preflight.
async fn form_post_from(
    app: &api_tests::TestApp,
    token: &str,
    origin: &str,
    email: &str,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/leads?key={token}")))
        .header("origin", origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(url_encode_pairs(&[("email", email)]))
        .send()
        .await
        .unwrap()
}

async fn preflight_from(app: &api_tests::TestApp, query: &str, origin: &str) -> reqwest::Response {
    app.client
        .request(
            reqwest::Method::OPTIONS,
            app.url(&format!("/v1/leads{query}")),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_null_origin_cannot_post_to_a_tenant_that_lists_origins() {
    let app = spawn_app().await;
    let t = app.create_tenant("Null Origin").await;
    let resp = app
        .client
        .put(app.url("/v1/dashboard/settings"))
        .bearer_auth(t.dashboard_token())
        .json(&json!({ "allowed_origins": ["https://lp.example.com"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let resp = form_post_from(&app, &t.capture_token, "null", "sandboxed@example.com").await;
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    assert_problem(resp, 403, "origin_not_allowed").await;
    let resp = app
        .client
        .post(app.url("/v1/leads"))
        .bearer_auth(&t.capture_token)
        .header("origin", "null")
        .json(&json!({ "email": "sandboxed@example.com" }))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 403, "origin_not_allowed").await;
    assert!(app.lead_row(&t.id, "sandboxed@example.com").is_none());

    let query = format!("?key={}", t.capture_token);
    assert_problem(
        preflight_from(&app, &query, "null").await,
        403,
        "origin_not_allowed",
    )
    .await;

    // The listed origin still posts.
    let resp = form_post_from(
        &app,
        &t.capture_token,
        "https://lp.example.com",
        "listed@example.com",
    )
    .await;
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn without_a_list_a_null_origin_posts_as_before_and_is_never_granted_cors() {
    let app = spawn_app().await;
    let t = app.create_tenant("Open Origins").await;
    let resp = form_post_from(&app, &t.capture_token, "null", "open@example.com").await;
    assert_eq!(resp.status(), 201);
    assert!(
        resp.headers().get("access-control-allow-origin").is_none(),
        "`null` is never echoed back"
    );
    assert!(app.lead_row(&t.id, "open@example.com").is_some());

    for query in [String::new(), format!("?key={}", t.capture_token)] {
        let resp = preflight_from(&app, &query, "null").await;
        assert_eq!(resp.status(), 204, "{query}");
        assert!(resp.headers().get("access-control-allow-origin").is_none());
    }
}
