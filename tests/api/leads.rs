//! `POST /v1/leads`: parsing, errors, honeypot, upsert, idempotency, tags, quota, rate limit,
//! CORS and the thank-you redirect. Systeme.io sync is in `sync.rs`.

use std::collections::BTreeSet;

use api_tests::{
    Mode, TestApp, assert_problem, dashboard_token, json_body, spawn_app, spawn_app_with,
    within_one_rate_window,
};
use serde_json::json;

async fn put_settings(
    app: &TestApp,
    tenant_id: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    app.client
        .put(app.url("/v1/dashboard/settings"))
        .bearer_auth(dashboard_token(tenant_id))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn post_from(app: &TestApp, token: &str, origin: &str, email: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/leads"))
        .bearer_auth(token)
        .header("origin", origin)
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_json_lead_is_stored_with_its_attribution_and_answers_201() {
    let app = spawn_app().await;
    let t = app.create_tenant("Json Ib").await;
    let resp = app
        .post_lead(
            &t.capture_token,
            &json!({
                "email": "Ana@Example.com", "name": "Ana Silva", "phone": "+351 912 345 678",
                "ib_type": "Forex IB", "monthly_leads": "500+", "utm_source": "facebook",
                "utm_medium": "cpc", "utm_campaign": "nov", "page_url": "https://lp.example.com/forex",
                "consent": true
            }),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body = json_body(resp).await;
    assert_eq!(body["status"], "created");
    let row = app.lead_row(&t.id, "ana@example.com").expect("stored");
    assert_eq!(body["id"], row.id.as_str());
    assert_eq!(row.utm_source.as_deref(), Some("facebook"));
    assert_eq!(
        row.page_url.as_deref(),
        Some("https://lp.example.com/forex")
    );
    assert_eq!(row.name.as_deref(), Some("Ana Silva"));
    assert_eq!(row.form, "demo-request");
}

#[tokio::test]
async fn a_plain_form_post_with_the_key_in_the_query_is_stored() {
    let app = spawn_app().await;
    let t = app.create_tenant("Form Ib").await;
    let resp = app
        .post_form(
            &t.capture_token,
            &[
                ("email", "bob@example.com"),
                ("form", "Webinar"),
                ("utm_source", "google"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 201);
    let row = app.lead_row(&t.id, "bob@example.com").expect("stored");
    assert_eq!(row.form, "webinar");
    assert_eq!(row.utm_source.as_deref(), Some("google"));
}

#[tokio::test]
async fn a_repeat_email_answers_200_updates_the_lead_and_is_not_counted_twice() {
    let app = spawn_app().await;
    let t = app.create_tenant("Repeat Ib").await;
    let first = app
        .post_lead(
            &t.capture_token,
            &json!({"email": "carla@example.com", "form": "demo"}),
        )
        .await;
    assert_eq!(first.status(), 201);
    let first = json_body(first).await;
    let again = app
        .post_lead(
            &t.capture_token,
            &json!({"email": "CARLA@example.com", "name": "Carla", "form": "webinar"}),
        )
        .await;
    assert_eq!(again.status(), 200);
    let again = json_body(again).await;
    assert_eq!(again["status"], "updated");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(app.lead_count(&t.id), 1);
    let row = app.lead_row(&t.id, "carla@example.com").unwrap();
    assert_eq!(row.name.as_deref(), Some("Carla"));
    let p = &t.tag_prefix;
    assert_eq!(
        row.tags,
        vec![format!("{p}demo"), format!("{p}webinar")],
        "tags are merged"
    );
    let usage = app.admin_view(&t.id).await.unwrap()["usage"]["leads"].clone();
    assert_eq!(usage, 1);
}

#[tokio::test]
async fn simultaneous_posts_of_one_email_make_one_lead() {
    let app = spawn_app().await;
    let t = app.create_tenant("Race Ib").await;
    let body = json!({"email": "race@example.com"});
    let posts = (0..12).map(|_| app.post_lead(&t.capture_token, &body));
    let statuses: Vec<u16> = futures::future::join_all(posts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        11,
        "{statuses:?}"
    );
    assert_eq!(app.lead_count(&t.id), 1);
    assert_eq!(app.admin_view(&t.id).await.unwrap()["usage"]["leads"], 1);
}

#[tokio::test]
async fn the_honeypot_answers_like_a_lead_stores_nothing_and_counts_spam() {
    let app = spawn_app().await;
    let t = app.create_tenant("Spam Ib").await;
    let resp = app
        .post_form(
            &t.capture_token,
            &[("email", "bot@example.com"), ("_gotcha", "http://spam")],
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body = json_body(resp).await;
    assert_eq!(body["status"], "created");
    assert!(body["id"].is_string());
    assert_eq!(app.lead_count(&t.id), 0);
    let spam: i64 = app
        .db()
        .query_row(
            "SELECT SUM(spam) FROM daily_rollups WHERE tenant_id = ?",
            [&t.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(spam, 1);
    assert!(
        app.systeme.calls().is_empty(),
        "spam never reaches Systeme.io"
    );
}

#[tokio::test]
async fn every_refusal_is_problem_json_with_a_stable_code() {
    let app = spawn_app().await;
    let t = app.create_tenant("Errors Ib").await;
    let url = app.url("/v1/leads");
    let c = &app.client;
    let token = &t.capture_token;

    assert_problem(
        c.post(&url)
            .json(&json!({"email": "a@b.co"}))
            .send()
            .await
            .unwrap(),
        401,
        "token_missing",
    )
    .await;
    assert_problem(
        c.post(&url)
            .bearer_auth("nope")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        401,
        "token_malformed",
    )
    .await;
    assert_problem(
        c.post(&url)
            .bearer_auth(t.dashboard_token())
            .json(&json!({"email": "a@b.co"}))
            .send()
            .await
            .unwrap(),
        403,
        "token_scope",
    )
    .await;
    assert_problem(
        c.post(&url)
            .bearer_auth(token)
            .header("content-type", "text/plain")
            .body("email=a@b.co")
            .send()
            .await
            .unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    assert_problem(
        c.post(&url)
            .bearer_auth(token)
            .header("content-type", "multipart/form-data; boundary=x")
            .body("--x--")
            .send()
            .await
            .unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    assert_problem(
        c.post(&url)
            .bearer_auth(token)
            .body("{}")
            .send()
            .await
            .unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    let big = format!(
        "{{\"email\":\"a@b.co\",\"name\":\"{}\"}}",
        "x".repeat(33 * 1024)
    );
    assert_problem(
        c.post(&url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap(),
        413,
        "body_too_large",
    )
    .await;
    assert_problem(
        c.post(&url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body("{\"email\":")
            .send()
            .await
            .unwrap(),
        400,
        "invalid_json",
    )
    .await;
    assert_problem(
        c.post(&url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body("[\"a@b.co\"]")
            .send()
            .await
            .unwrap(),
        400,
        "invalid_json",
    )
    .await;
    for (body, field) in [
        (json!({"name": "No Email"}), "email"),
        (json!({"email": "not-an-email"}), "email"),
        (json!({"email": {"nested": true}}), "email"),
        (
            json!({"email": "a@b.co", "phone": "call me maybe"}),
            "phone",
        ),
        (
            json!({"email": "a@b.co", "page_url": "javascript:alert(1)"}),
            "page_url",
        ),
        (json!({"email": "a@b.co", "consent": "perhaps"}), "consent"),
    ] {
        let problem = assert_problem(app.post_lead(token, &body).await, 422, "invalid_field").await;
        assert!(
            problem["detail"].as_str().unwrap().starts_with(field),
            "{problem}"
        );
    }
    assert_problem(
        c.post(&url)
            .bearer_auth(token)
            .header("idempotency-key", "")
            .json(&json!({"email": "a@b.co"}))
            .send()
            .await
            .unwrap(),
        400,
        "invalid_idempotency_key",
    )
    .await;
    let put = c.put(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(put.headers()["allow"], "POST, OPTIONS");
    assert_problem(put, 405, "method_not_allowed").await;
    assert_eq!(
        app.lead_count(&t.id),
        0,
        "no refused request stored anything"
    );
}

#[tokio::test]
async fn a_rotated_capture_key_is_refused_at_once() {
    let app = spawn_app().await;
    let t = app.create_tenant("Rotate Ib").await;
    let rotated = app
        .client
        .post(app.url("/v1/dashboard/capture-key"))
        .bearer_auth(t.dashboard_token())
        .send()
        .await
        .unwrap();
    let new_token = json_body(rotated).await["capture_token"]
        .as_str()
        .unwrap()
        .to_string();
    let old = app
        .post_lead(&t.capture_token, &json!({"email": "old@example.com"}))
        .await;
    assert_problem(old, 401, "token_revoked").await;
    let old_form = app
        .post_form(&t.capture_token, &[("email", "old@example.com")])
        .await;
    assert_problem(old_form, 401, "token_revoked").await;
    assert_eq!(
        app.post_lead(&new_token, &json!({"email": "new@example.com"}))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer() {
    let app = spawn_app().await;
    let t = app.create_tenant("Idem Ib").await;
    let send = |email: &str| {
        app.client
            .post(app.url("/v1/leads"))
            .bearer_auth(&t.capture_token)
            .header("idempotency-key", "order-42")
            .json(&json!({"email": email}))
            .send()
    };
    let first = send("dora@example.com").await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = json_body(first).await;
    let calls = app.systeme.calls().len();

    let replay = send("dora@example.com").await.unwrap();
    assert_eq!(replay.status(), 201, "the first answer, not a 200 repeat");
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(json_body(replay).await, first);
    assert_eq!(app.systeme.calls().len(), calls, "a replay does no work");
    assert_eq!(app.lead_count(&t.id), 1);

    let reused = send("someone-else@example.com").await.unwrap();
    assert_problem(reused, 422, "idempotency_key_reused").await;
    assert_eq!(app.lead_count(&t.id), 1);
}

#[tokio::test]
async fn tags_carry_the_tenant_prefix_and_a_foreign_prefix_is_never_written() {
    let app = spawn_app().await;
    let a = app.create_tenant("Tags A").await;
    let b = app.create_tenant("Tags B").await;
    let foreign = format!("{}converted", b.tag_prefix);
    let resp = app
        .post_lead(
            &a.capture_token,
            &json!({
                "email": "eve@example.com", "form": "Demo Request", "ib_type": "Crypto Affiliate",
                "monthly_leads": "100-500",
                "tags": ["VIP list", foreign, format!("{}hot", a.tag_prefix)]
            }),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let p = &a.tag_prefix;
    let expected: BTreeSet<String> = [
        "crypto-affiliate",
        "demo-request",
        "hot",
        "medium-volume",
        "vip-list",
    ]
    .iter()
    .map(|s| format!("{p}{s}"))
    .collect();
    let row = app.lead_row(&a.id, "eve@example.com").unwrap();
    assert_eq!(row.tags.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(row.sync_status, "synced");
    assert_eq!(app.systeme.contact_tags("eve@example.com"), Some(expected));
    for name in app.systeme.tag_names() {
        assert!(name.starts_with(p), "{name} was written for A");
    }
    for volume in [("0-100", "low-volume"), ("500+", "high-volume")] {
        let email = format!("{}@example.com", volume.1);
        app.post_lead(
            &a.capture_token,
            &json!({"email": email, "monthly_leads": volume.0}),
        )
        .await;
        let row = app.lead_row(&a.id, &email).unwrap();
        assert!(row.tags.contains(&format!("{p}{}", volume.1)), "{row:?}");
    }
}

#[tokio::test]
async fn over_the_plan_limit_a_lead_is_stored_but_held() {
    let app = spawn_app().await;
    let t = app.create_tenant("Quota Ib").await;
    // A starter tenant at 999 of its 1000 leads (seeded: posting 999 leads proves nothing more).
    app.db_rw()
        .execute("UPDATE tenants SET lead_count = 999 WHERE id = ?", [&t.id])
        .unwrap();
    let last = app
        .post_lead(&t.capture_token, &json!({"email": "last@example.com"}))
        .await;
    assert_eq!(last.status(), 201);
    assert_eq!(
        app.lead_row(&t.id, "last@example.com").unwrap().sync_status,
        "synced"
    );
    let over = app
        .post_lead(&t.capture_token, &json!({"email": "over@example.com"}))
        .await;
    assert_eq!(over.status(), 201, "the visitor still gets success");
    assert_eq!(json_body(over).await["status"], "created");
    let row = app.lead_row(&t.id, "over@example.com").unwrap();
    assert_eq!(row.sync_status, "held");
    assert_eq!(
        app.systeme.contact_tags("over@example.com"),
        None,
        "never synced"
    );
    let report = app.run_sync("?ignore_backoff=true").await;
    assert_eq!(report["attempted"], 0, "{report}");
    assert_eq!(app.systeme.contact_tags("over@example.com"), None);
}

#[tokio::test]
async fn each_client_is_rate_limited_per_tenant_and_cannot_spoof_its_address() {
    let app = spawn_app_with(|spec| spec.with_env("SPIN_VARIABLE_CAPTURE_RATE_LIMIT", "3")).await;
    app.systeme.set_mode(Mode::Fail(503));
    let a = app.create_tenant("Rate A").await;
    let b = app.create_tenant("Rate B").await;
    within_one_rate_window(20).await;
    for i in 0..3 {
        let resp = app
            .post_lead(
                &a.capture_token,
                &json!({"email": format!("r{i}@example.com")}),
            )
            .await;
        assert_eq!(resp.status(), 201);
    }
    let limited = app
        .client
        .post(app.url("/v1/leads"))
        .bearer_auth(&a.capture_token)
        .header("spin-client-addr", "6.6.6.6:1234")
        .header("x-forwarded-for", "7.7.7.7")
        .json(&json!({"email": "r3@example.com"}))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_problem(limited, 429, "rate_limited").await;
    assert!(app.lead_row(&a.id, "r3@example.com").is_none());
    // Another tenant's budget is its own.
    assert_eq!(
        app.post_lead(&b.capture_token, &json!({"email": "r0@example.com"}))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn cors_preflight_and_per_tenant_origins() {
    let app = spawn_app().await;
    let t = app.create_tenant("Cors Ib").await;
    let preflight = |query: String, origin: &'static str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                app.url(&format!("/v1/leads{query}")),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
    };
    // Default: any origin.
    let resp = preflight(String::new(), "https://lp.example.com")
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://lp.example.com"
    );
    assert!(
        resp.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        resp.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let post = post_from(
        &app,
        &t.capture_token,
        "https://anywhere.example",
        "o1@example.com",
    )
    .await;
    assert_eq!(post.status(), 201);
    assert_eq!(
        post.headers()["access-control-allow-origin"],
        "https://anywhere.example"
    );

    // Restricted to one origin.
    let put = put_settings(
        &app,
        &t.id,
        json!({"allowed_origins": ["https://lp.example.com"]}),
    )
    .await;
    assert_eq!(put.status(), 200);
    let allowed = post_from(
        &app,
        &t.capture_token,
        "https://lp.example.com",
        "o2@example.com",
    )
    .await;
    assert_eq!(allowed.status(), 201);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://lp.example.com"
    );
    let refused = post_from(
        &app,
        &t.capture_token,
        "https://evil.example",
        "o3@example.com",
    )
    .await;
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_problem(refused, 403, "origin_not_allowed").await;
    assert!(app.lead_row(&t.id, "o3@example.com").is_none());
    // A preflight that names the tenant (key in the URL) is judged by its origins.
    let key = format!("?key={}", t.capture_token);
    assert_eq!(
        preflight(key.clone(), "https://lp.example.com")
            .await
            .unwrap()
            .status(),
        204
    );
    assert_problem(
        preflight(key, "https://evil.example").await.unwrap(),
        403,
        "origin_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn a_plain_html_form_is_redirected_to_the_thank_you_page() {
    let app = spawn_app().await;
    let t = app.create_tenant("Thanks Ib").await;
    let html_post = |email: &'static str| {
        app.client
            .post(app.url(&format!("/v1/leads?key={}", t.capture_token)))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .body(format!("email={email}"))
            .send()
    };
    // No thank-you URL yet: JSON.
    assert_eq!(html_post("h1%40example.com").await.unwrap().status(), 201);
    let bad = put_settings(
        &app,
        &t.id,
        json!({"thank_you_url": "http://lp.example.com/thanks"}),
    )
    .await;
    assert_problem(bad, 422, "invalid_field").await;
    let put = put_settings(
        &app,
        &t.id,
        json!({"thank_you_url": "https://lp.example.com/thanks"}),
    )
    .await;
    assert_eq!(put.status(), 200);
    let resp = html_post("h2%40example.com").await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "https://lp.example.com/thanks");
    assert!(app.lead_row(&t.id, "h2@example.com").is_some());
    // Scripts asking for JSON still get JSON.
    let json_post = app
        .post_lead(&t.capture_token, &json!({"email": "h3@example.com"}))
        .await;
    assert_eq!(json_post.status(), 201);
}
