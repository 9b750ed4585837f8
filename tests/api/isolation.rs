//! The cross-tenant helper: tenant A's tokens never read, change or count anything of tenant B.
//! Every route of every component belongs in [`assert_isolated`]; later issues extend it.

use api_tests::{TestApp, TestTenant, json_body};
use serde_json::json;

/// B's state as the database and B's own tokens see it.
async fn snapshot(
    app: &TestApp,
    b: &TestTenant,
) -> (serde_json::Value, i64, Vec<String>, serde_json::Value) {
    let view = app.admin_view(&b.id).await.expect("B exists");
    let conn = app.db();
    let mut stmt = conn
        .prepare("SELECT email || ' ' || tags || ' ' || sync_status FROM leads WHERE tenant_id = ? ORDER BY id")
        .unwrap();
    let leads: Vec<String> = stmt
        .query_map([&b.id], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let spam: i64 = conn
        .query_row(
            "SELECT COALESCE(SUM(spam), 0) FROM daily_rollups WHERE tenant_id = ?",
            [&b.id],
            |r| r.get(0),
        )
        .unwrap();
    let settings = app
        .client
        .get(app.url("/v1/dashboard/settings"))
        .bearer_auth(b.dashboard_token())
        .send()
        .await
        .unwrap();
    // A refused read would make two snapshots equal whatever happened to B.
    assert_eq!(settings.status(), 200, "B's own settings");
    let settings = json_body(settings).await;
    (view, spam, leads, settings)
}

/// Tries everything A's tokens can send at B's ids and asserts that nothing of B moved.
/// Rotates A's capture key at the end and stores the new token in `a`.
pub async fn assert_isolated(app: &TestApp, a: &mut TestTenant, b: &TestTenant) {
    // B has a lead, an idempotency key and settings of its own.
    let b_lead = app
        .client
        .post(app.url("/v1/leads"))
        .bearer_auth(&b.capture_token)
        .header("idempotency-key", format!("shared-key-{}", b.id))
        .json(&json!({ "email": format!("shared-{}@example.com", b.id) }))
        .send()
        .await
        .unwrap();
    assert!(b_lead.status().is_success(), "B's own lead");
    let before = snapshot(app, b).await;

    // Capture: A's token posts the same email, B's idempotency key, B's prefix as a tag and
    // the honeypot. Everything lands in A or nowhere.
    let a_lead = app
        .client
        .post(app.url("/v1/leads"))
        .bearer_auth(&a.capture_token)
        .header("idempotency-key", format!("shared-key-{}", b.id))
        .json(&json!({
            "email": format!("shared-{}@example.com", b.id),
            "tags": [format!("{}converted", b.tag_prefix)],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        a_lead.status(),
        201,
        "a new lead for A, not B's replay or B's repeat"
    );
    assert!(a_lead.headers().get("idempotent-replayed").is_none());
    let a_row = app
        .lead_row(&a.id, &format!("shared-{}@example.com", b.id))
        .expect("A's lead");
    assert!(
        a_row.tags.iter().all(|t| t.starts_with(&a.tag_prefix)),
        "{a_row:?}"
    );
    let spam = app
        .post_form(
            &a.capture_token,
            &[("email", "bot@example.com"), ("_gotcha", "x")],
        )
        .await;
    assert_eq!(spam.status(), 201);
    // A's settings change is A's alone.
    let put = app
        .client
        .put(app.url("/v1/dashboard/settings"))
        .bearer_auth(a.dashboard_token())
        .json(&json!({ "allowed_origins": ["https://a-only.example"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    // A preflight that names A (its key) is judged by A's origins only.
    let preflight = |origin: &'static str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                app.url(&format!("/v1/leads?key={}", a.capture_token)),
            )
            .header("origin", origin)
            .send()
    };
    assert_eq!(
        preflight("https://a-only.example").await.unwrap().status(),
        204
    );
    assert_eq!(
        preflight("https://elsewhere.example")
            .await
            .unwrap()
            .status(),
        403
    );
    // Tenant tokens carry no weight on the Systeme.io callback: only its signature does.
    for token in [a.capture_token.clone(), a.dashboard_token()] {
        let event = app
            .client
            .post(app.url("/v1/systeme/events"))
            .bearer_auth(&token)
            .header("x-webhook-event", "CONTACT_TAG_ADDED")
            .header("x-webhook-message-id", "forged")
            .body(json!({"contact": {"email": format!("shared-{}@example.com", b.id)}, "tag": {"name": format!("{}converted", b.tag_prefix)}}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(
            event.status(),
            401,
            "a tenant token is not a Systeme.io signature"
        );
    }
    // The dashboard: B's lead id is a 404 for A on every lead route, and none of A's reads
    // lists or counts it.
    let b_lead_id = app
        .lead_row(&b.id, &format!("shared-{}@example.com", b.id))
        .expect("B's lead")
        .id;
    for (method, path) in crate::dashboard::dashboard_routes(&b_lead_id) {
        if !path.contains(&b_lead_id) {
            continue;
        }
        let resp = app
            .client
            .request(method, app.url(&path))
            .bearer_auth(a.dashboard_token())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path} with A's token");
        assert_eq!(json_body(resp).await["code"], "lead_not_found");
    }
    // Each read succeeds and lists A's own lead with B's email (the search matches it too), so
    // the absence of B's lead is not just a refused or failed request.
    for path in [
        "/v1/dashboard/leads?limit=200".to_string(),
        format!("/v1/dashboard/leads?q=shared-{}", b.id),
    ] {
        let resp = app
            .client
            .get(app.url(&path))
            .bearer_auth(a.dashboard_token())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path} with A's token");
        let body = json_body(resp).await;
        let ids: Vec<&str> = body["leads"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: no leads array in {body}"))
            .iter()
            .map(|l| l["id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&a_row.id.as_str()),
            "{path} lacks A's lead: {body}"
        );
        assert!(
            !body.to_string().contains(&b_lead_id),
            "{path} shows B's lead to A"
        );
    }
    let csv = app
        .client
        .get(app.url("/v1/dashboard/leads.csv"))
        .bearer_auth(a.dashboard_token())
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200, "the CSV export with A's token");
    let body = csv.text().await.unwrap();
    assert!(!body.contains(&b_lead_id), "the CSV shows B's lead to A");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let id_column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "id")
        .unwrap_or_else(|| panic!("no id column in the CSV: {body}"));
    let csv_ids: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[id_column].to_string())
        .collect();
    assert!(
        csv_ids.contains(&a_row.id),
        "the CSV lacks A's lead: {body}"
    );
    let a_stats = app
        .client
        .get(app.url("/v1/dashboard/stats"))
        .bearer_auth(a.dashboard_token())
        .send()
        .await
        .unwrap();
    assert_eq!(a_stats.status(), 200, "A's stats");
    let a_stats = json_body(a_stats).await;
    let a_leads: i64 = app
        .db()
        .query_row(
            "SELECT COUNT(*) FROM leads WHERE tenant_id = ?",
            [&a.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        a_stats["leads"]["total"], a_leads,
        "A's stats count A's leads only"
    );
    // Nothing of A's makes the admin sync run.
    for token in [a.capture_token.clone(), a.dashboard_token()] {
        let sync = app
            .client
            .post(app.url("/v1/admin/sync"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(sync.status(), 403, "tenant token on the admin sync");
    }
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
        let health = app
            .client
            .get(app.url("/v1/health"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200, "health with a tenant token");
        let health = json_body(health).await;
        assert_eq!(health.as_object().unwrap().len(), 2, "{health}");
        assert_eq!(health["status"], "ok", "{health}");
    }
    // The current capture key A's dashboard shows in its snippet is A's own.
    let current = app
        .client
        .get(app.url("/v1/dashboard/capture-key"))
        .bearer_auth(a.dashboard_token())
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), 200, "A's current capture key");
    assert_eq!(
        json_body(current).await["capture_token"],
        a.capture_token.as_str(),
        "the key A's snippet shows"
    );
    // The web component's files are the same bytes for anyone and name no tenant.
    for path in crate::web::web_routes() {
        let anonymous = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(anonymous.status(), 200, "{path}");
        let anonymous = anonymous.bytes().await.unwrap();
        let with_a = app
            .client
            .get(app.url(path))
            .bearer_auth(a.dashboard_token())
            .send()
            .await
            .unwrap();
        assert_eq!(with_a.status(), 200, "{path} with A's token");
        assert_eq!(
            with_a.bytes().await.unwrap(),
            anonymous,
            "{path} differs for A"
        );
        let text = String::from_utf8_lossy(&anonymous);
        assert!(
            !text.contains(&b.id) && !text.contains(&b.tag_prefix),
            "{path} names B"
        );
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
    a.capture_token = json_body(rotate).await["capture_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(snapshot(app, b).await, before, "B changed");
    // Restore A's settings so a second pass in the other direction starts clean.
    let reset = app
        .client
        .put(app.url("/v1/dashboard/settings"))
        .bearer_auth(a.dashboard_token())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
}
