//! The cross-tenant helper: tenant A's tokens never read, change or count anything of tenant B.
//! Every route of every component belongs in [`assert_isolated`]; later issues extend it.

use api_tests::{TestApp, TestTenant, json_body};
use serde_json::json;

/// Tries everything A's tokens can send at B's ids and asserts that nothing of B moved.
pub async fn assert_isolated(app: &TestApp, a: &TestTenant, b: &TestTenant) {
    let before = app.admin_view(&b.id).await.expect("B exists");
    for token in [a.capture_token.clone(), a.dashboard_token()] {
        // Admin routes: a tenant token is the wrong scope, whatever the id.
        let list = app
            .client
            .get(app.url("/v1/admin/tenants"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(list.status(), 403, "tenant token on the admin list");
        let patch = app
            .client
            .patch(app.url(&format!("/v1/admin/tenants/{}", b.id)))
            .bearer_auth(&token)
            .json(&json!({ "status": "suspended" }))
            .send()
            .await
            .unwrap();
        assert_eq!(patch.status(), 403, "tenant token patching B");
        // Signup is signed by the SaaS back end, never by a tenant token.
        let signup = app
            .client
            .post(app.url("/v1/tenants"))
            .bearer_auth(&token)
            .body(json!({ "name": "x", "email": "x@y.zz" }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(signup.status(), 401, "tenant token on signup");
        // Health carries no tenant data at all.
        let health = json_body(
            app.client
                .get(app.url("/v1/health"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(health.as_object().unwrap().len(), 2, "{health}");
    }
    // A rotates its own capture key: only A's generation moves.
    let rotate = app
        .client
        .post(app.url("/v1/dashboard/capture-key"))
        .bearer_auth(a.dashboard_token())
        .send()
        .await
        .unwrap();
    assert_eq!(rotate.status(), 200);
    assert_eq!(
        app.admin_view(&b.id).await.expect("B exists"),
        before,
        "B changed"
    );
}
