//! What the SQL costs, as far as a test can tell without a clock: SQLite compiles a statement a
//! second time on each call when a bound value shaped its plan (a parameter in `LIMIT`, a
//! `LIKE` pattern, a comparison with a partial index's constant). Spin runs the same SQLite
//! build, and each request there is a new connection, so that is paid on every request. The
//! local host logs each such statement once (`crates/local-host/src/storage.rs`); this test
//! drives every route with the data shapes that matter and asserts the log is clean.

use api_tests::{SpawnedApp, admin_token, json_body, spawn_app_with};
use serde_json::json;

#[tokio::test]
async fn no_statement_is_compiled_twice_on_any_route() {
    let app = spawn_app_with(|spec| spec.with_env("SPIN_VARIABLE_SYSTEME_API_KEY", "")).await;
    if app.host.is_real_spin() {
        return; // Spin does not report re-prepares; the statements are the same.
    }
    let t = app.create_tenant("Statements").await;
    let lead = json!({"email": "s1@example.com", "ib_type": "forex-ib", "utm_source": "google"});
    // New lead, repeat, and an Idempotency-Key claim, answer and replay.
    assert_eq!(app.post_lead(&t.capture_token, &lead).await.status(), 201);
    assert_eq!(app.post_lead(&t.capture_token, &lead).await.status(), 200);
    for expected in [201, 201] {
        let resp = app
            .client
            .post(app.url("/v1/leads"))
            .bearer_auth(&t.capture_token)
            .header("idempotency-key", "statements-1")
            .json(&json!({"email": "s2@example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expected);
    }
    // A callback on a known lead, and one creating a lead from a Systeme.io contact.
    for (id, contact, email) in [
        ("st-1", 77, "s1@example.com"),
        ("st-2", 78, "new@example.com"),
    ] {
        let tag = format!("{}email-opened", t.tag_prefix);
        let body =
            json!({"contact": {"id": contact, "email": email, "tags": [{"id": 1, "name": tag}]},
                          "tag": {"id": 1, "name": tag}})
            .to_string();
        let resp = app.post_systeme_event("CONTACT_TAG_ADDED", id, &body).await;
        assert_eq!(json_body(resp).await["status"], "applied", "{id}");
    }
    // Every dashboard route, the lead list with each of its filters and a cursor.
    let list = app
        .client
        .get(app.url("/v1/dashboard/leads?limit=1"))
        .bearer_auth(t.dashboard_token())
        .send()
        .await
        .unwrap();
    let list = json_body(list).await;
    let lead_id = list["leads"][0]["id"].as_str().unwrap().to_string();
    let cursor = list["next_cursor"].as_str().unwrap_or_default().to_string();
    let mut paths: Vec<(reqwest::Method, String)> = crate::dashboard::dashboard_routes(&lead_id)
        .into_iter()
        .filter(|(m, _)| *m == reqwest::Method::GET)
        .collect();
    for query in [
        "stage=nurturing".to_string(),
        "q=s1".to_string(),
        format!("cursor={cursor}&limit=1"),
        "stage=new&q=example&limit=5".to_string(),
    ] {
        paths.push((reqwest::Method::GET, format!("/v1/dashboard/leads?{query}")));
    }
    for (method, path) in paths {
        let resp = app
            .client
            .request(method.clone(), app.url(&path))
            .bearer_auth(t.dashboard_token())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{method} {path}");
        resp.bytes().await.unwrap();
    }
    let settings = app
        .client
        .put(app.url("/v1/dashboard/settings"))
        .bearer_auth(t.dashboard_token())
        .json(&json!({"allowed_origins": ["https://ib.example.com"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(settings.status(), 200);
    let funnels = app
        .client
        .patch(app.url(&format!("/v1/admin/tenants/{}", t.id)))
        .bearer_auth(admin_token())
        .json(&json!({"funnel_ids": [5]}))
        .send()
        .await
        .unwrap();
    assert_eq!(funnels.status(), 200);
    // The operator's routes.
    for (method, path) in [
        (reqwest::Method::GET, "/v1/admin/tenants?limit=1"),
        (reqwest::Method::GET, "/v1/admin/sales"),
        (reqwest::Method::POST, "/v1/admin/sync"),
    ] {
        let resp = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(admin_token())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{method} {path}");
    }
    let erase = app
        .client
        .delete(app.url(&format!("/v1/dashboard/leads/{lead_id}")))
        .bearer_auth(t.dashboard_token())
        .send()
        .await
        .unwrap();
    assert_eq!(erase.status(), 204);

    assert_no_statement_compiled_twice(&app);
}

/// Fails if the host logged a statement as compiled again on every call (the local host says
/// so once per statement; Spin does not report it).
pub(crate) fn assert_no_statement_compiled_twice(app: &SpawnedApp) {
    let log = app.stderr();
    let twice: Vec<&str> = log.lines().filter(|l| l.contains("re-prepared")).collect();
    assert!(
        twice.is_empty(),
        "statements compiled twice per call:\n{}",
        twice.join("\n")
    );
}
