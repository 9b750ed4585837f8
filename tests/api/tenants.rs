//! Signup (`POST /v1/tenants`), tenant tokens, the admin routes and the tenant gate.

use api_tests::{
    ADMIN_TOKEN_SECRET, SIGNUP_SECRET, TOKEN_SECRET, admin_token, assert_problem, dashboard_token,
    json_body, mint, now, signup_headers, spawn_app,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::secret::TokenSecret;
use domain::token::{Claims, Scope};
use serde_json::json;

use crate::isolation::assert_isolated;

fn signup_body(name: &str, email: &str) -> String {
    json!({ "name": name, "email": email }).to_string()
}

// ---- signup ----

#[tokio::test]
async fn signup_creates_a_tenant_with_its_prefix_plan_limits_and_capture_token() {
    let app = spawn_app().await;
    let resp = app
        .post_signup("msg_1", &signup_body("Acme IB", "Boss@Acme.example"))
        .await;
    assert_eq!(resp.status(), 201);
    let body = json_body(resp).await;
    assert_eq!(body["name"], "Acme IB");
    assert_eq!(body["email"], "boss@acme.example");
    assert_eq!(body["plan"], "starter");
    assert_eq!(
        body["limits"],
        json!({ "leads": 1000, "held_leads": 1000, "tags": 100, "sync_calls_per_minute": 60 })
    );
    assert_eq!(body["status"], "active");
    let prefix = body["tag_prefix"].as_str().unwrap();
    assert!(domain::tenant::TagPrefix::parse(prefix).is_ok(), "{prefix}");
    let token = body["capture_token"].as_str().unwrap();
    let verified = domain::token::verify(
        &TokenSecret::parse(TOKEN_SECRET).unwrap(),
        token,
        Scope::Capture,
        now(),
    )
    .unwrap();
    assert_eq!(
        verified.tenant.unwrap().to_string(),
        body["id"].as_str().unwrap()
    );
    assert_eq!(verified.generation, Some(1));
}

#[tokio::test]
async fn signup_takes_the_plan_from_the_body() {
    let app = spawn_app().await;
    let body = json!({ "name": "Pro IB", "email": "pro@ib.example", "plan": "pro" }).to_string();
    let body = json_body(app.post_signup("msg_pro", &body).await).await;
    assert_eq!(
        (body["plan"].clone(), body["limits"]["leads"].clone()),
        (json!("pro"), json!(10000))
    );
}

#[tokio::test]
async fn a_replayed_webhook_id_returns_the_same_tenant() {
    let app = spawn_app().await;
    let body = signup_body("Acme IB", "boss@acme.example");
    let first = json_body(app.post_signup("msg_same", &body).await).await;
    let again = app.post_signup("msg_same", &body).await;
    assert_eq!(again.status(), 201);
    assert_eq!(json_body(again).await, first);
    let list = json_body(
        app.client
            .get(app.url("/v1/admin/tenants"))
            .bearer_auth(admin_token())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["tenants"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_duplicate_email_is_a_conflict() {
    let app = spawn_app().await;
    app.post_signup("msg_a", &signup_body("A", "same@ib.example"))
        .await;
    let resp = app
        .post_signup("msg_b", &signup_body("B", "SAME@ib.example"))
        .await;
    assert_problem(resp, 409, "email_taken").await;
}

#[tokio::test]
async fn tenants_created_in_parallel_get_distinct_prefixes() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let client = app.client.clone();
        let url = app.url("/v1/tenants");
        tasks.push(tokio::spawn(async move {
            let body = signup_body(&format!("IB {i}"), &format!("ib{i}@ib.example"));
            let mut req = client.post(url).body(body.clone());
            for (k, v) in signup_headers(&format!("msg_{i}"), now(), &body) {
                req = req.header(k, v);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 201);
            json_body(resp).await["tag_prefix"]
                .as_str()
                .unwrap()
                .to_string()
        }));
    }
    let mut prefixes = Vec::new();
    for t in tasks {
        prefixes.push(t.await.unwrap());
    }
    prefixes.sort();
    prefixes.dedup();
    assert_eq!(prefixes.len(), 12);
}

// ---- signup signatures and bodies ----

async fn signup_with(
    app: &api_tests::TestApp,
    headers: &[(&str, String)],
    body: &str,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/v1/tenants"))
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_signup_without_signature_headers_is_refused() {
    let app = spawn_app().await;
    let body = signup_body("A", "a@ib.example");
    assert_problem(
        signup_with(&app, &[], &body).await,
        401,
        "signature_missing",
    )
    .await;
    let mut partial = signup_headers("msg_1", now(), &body);
    partial.pop();
    assert_problem(
        signup_with(&app, &partial, &body).await,
        401,
        "signature_missing",
    )
    .await;
}

#[tokio::test]
async fn a_signup_with_a_bad_signature_is_refused() {
    let app = spawn_app().await;
    let body = signup_body("A", "a@ib.example");
    let signed_other = signup_headers("msg_1", now(), &signup_body("B", "b@ib.example"));
    assert_problem(
        signup_with(&app, &signed_other, &body).await,
        401,
        "signature_invalid",
    )
    .await;
    let other_secret =
        domain::secret::WebhookSecret::parse("whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA==").unwrap();
    let ts = now();
    let forged = vec![
        ("webhook-id", "msg_1".to_string()),
        ("webhook-timestamp", ts.to_string()),
        (
            "webhook-signature",
            domain::signature::sign_standard(&other_secret, "msg_1", ts, body.as_bytes()),
        ),
    ];
    assert_problem(
        signup_with(&app, &forged, &body).await,
        401,
        "signature_invalid",
    )
    .await;
    assert!(SIGNUP_SECRET.starts_with("whsec_"));
}

#[tokio::test]
async fn a_stale_signup_is_refused() {
    let app = spawn_app().await;
    let body = signup_body("A", "a@ib.example");
    let stale = signup_headers("msg_1", now() - 301, &body);
    assert_problem(
        signup_with(&app, &stale, &body).await,
        401,
        "signature_stale",
    )
    .await;
    let future = signup_headers("msg_1", now() + 301, &body);
    assert_problem(
        signup_with(&app, &future, &body).await,
        401,
        "signature_stale",
    )
    .await;
}

#[tokio::test]
async fn a_signed_but_invalid_body_names_the_problem() {
    let app = spawn_app().await;
    let not_json = "{name:";
    assert_problem(
        signup_with(&app, &signup_headers("m1", now(), not_json), not_json).await,
        400,
        "invalid_json",
    )
    .await;
    let no_email = json!({ "name": "A" }).to_string();
    let problem = assert_problem(
        signup_with(&app, &signup_headers("m2", now(), &no_email), &no_email).await,
        422,
        "invalid_field",
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().starts_with("email"),
        "{problem}"
    );
    let bad_plan = json!({ "name": "A", "email": "a@ib.example", "plan": "gold" }).to_string();
    assert_problem(
        signup_with(&app, &signup_headers("m3", now(), &bad_plan), &bad_plan).await,
        422,
        "invalid_field",
    )
    .await;
}

#[tokio::test]
async fn a_signup_body_over_32_kib_is_refused() {
    let app = spawn_app().await;
    let body = json!({ "name": "A".repeat(33 * 1024), "email": "a@ib.example" }).to_string();
    assert_problem(
        signup_with(&app, &signup_headers("m1", now(), &body), &body).await,
        413,
        "body_too_large",
    )
    .await;
}

// ---- tokens, against the admin list ----

async fn admin_list_with(app: &api_tests::TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/v1/admin/tenants"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn forge(header: &str, claims: &serde_json::Value, key: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let h = URL_SAFE_NO_PAD.encode(header);
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    format!(
        "{h}.{p}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[tokio::test]
async fn admin_routes_refuse_every_kind_of_bad_token() {
    let app = spawn_app().await;
    let admin_claims = json!({ "scope": "admin", "exp": now() + 600 });
    let key = ADMIN_TOKEN_SECRET.as_bytes();
    let resp = app
        .client
        .get(app.url("/v1/admin/tenants"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401, "token_missing").await;
    let none = format!(
        "{}.",
        forge(r#"{"alg":"none"}"#, &admin_claims, key)
            .rsplit_once('.')
            .unwrap()
            .0
    );
    assert_problem(admin_list_with(&app, &none).await, 401, "token_algorithm").await;
    let hs512 = forge(r#"{"alg":"HS512"}"#, &admin_claims, key);
    assert_problem(admin_list_with(&app, &hs512).await, 401, "token_algorithm").await;
    let wrong_key = forge(
        r#"{"alg":"HS256"}"#,
        &admin_claims,
        b"another-key-another-key-another-key-!!",
    );
    assert_problem(
        admin_list_with(&app, &wrong_key).await,
        401,
        "token_signature",
    )
    .await;
    let expired = forge(
        r#"{"alg":"HS256"}"#,
        &json!({ "scope": "admin", "exp": now() - 120 }),
        key,
    );
    assert_problem(admin_list_with(&app, &expired).await, 401, "token_expired").await;
    let no_exp = forge(r#"{"alg":"HS256"}"#, &json!({ "scope": "admin" }), key);
    assert_problem(admin_list_with(&app, &no_exp).await, 401, "token_claims").await;
    assert_problem(
        admin_list_with(&app, "not.a-token").await,
        401,
        "token_malformed",
    )
    .await;
    assert_problem(
        admin_list_with(&app, &"a".repeat(9 * 1024)).await,
        401,
        "token_too_large",
    )
    .await;
    let dashboard = dashboard_token("0f8fad5b-d9cb-469f-a165-70867728950e");
    assert_problem(admin_list_with(&app, &dashboard).await, 403, "token_scope").await;
}

#[tokio::test]
async fn admin_tokens_are_not_accepted_from_the_query_string() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url(&format!("/v1/admin/tenants?key={}", admin_token())))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401, "token_missing").await;
}

// ---- admin list and patch ----

#[tokio::test]
async fn the_admin_list_shows_usage_and_pages_by_cursor() {
    let app = spawn_app().await;
    for name in ["One", "Two", "Three"] {
        app.create_tenant(name).await;
    }
    let mut seen = Vec::new();
    let mut url = app.url("/v1/admin/tenants?limit=2");
    loop {
        let page = json_body(
            app.client
                .get(&url)
                .bearer_auth(admin_token())
                .send()
                .await
                .unwrap(),
        )
        .await;
        for t in page["tenants"].as_array().unwrap() {
            assert_eq!(t["usage"], json!({ "leads": 0, "lead_limit": 1000 }));
            seen.push(t["name"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => url = app.url(&format!("/v1/admin/tenants?limit=2&cursor={cursor}")),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["One", "Three", "Two"]);
    let bad = app
        .client
        .get(app.url("/v1/admin/tenants?limit=0"))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap();
    assert_problem(bad, 400, "invalid_query").await;
}

#[tokio::test]
async fn the_admin_can_change_plan_and_status() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("Acme").await;
    let patch = |body: serde_json::Value| {
        app.client
            .patch(app.url(&format!("/v1/admin/tenants/{}", tenant.id)))
            .bearer_auth(admin_token())
            .json(&body)
            .send()
    };
    let resp = patch(json!({ "plan": "enterprise" })).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = json_body(resp).await;
    assert_eq!(
        (body["plan"].clone(), body["usage"]["lead_limit"].clone()),
        (json!("enterprise"), json!(1_000_000))
    );
    assert_problem(
        patch(json!({ "plan": "gold" })).await.unwrap(),
        422,
        "invalid_field",
    )
    .await;
    assert_problem(patch(json!({})).await.unwrap(), 422, "invalid_field").await;
    assert_problem(
        patch(json!({ "owner": "me" })).await.unwrap(),
        400,
        "invalid_json",
    )
    .await;
    let missing = app
        .client
        .patch(app.url("/v1/admin/tenants/6ba7b810-9dad-41d1-80b4-00c04fd430c8"))
        .bearer_auth(admin_token())
        .json(&json!({ "status": "suspended" }))
        .send()
        .await
        .unwrap();
    assert_problem(missing, 404, "tenant_not_found").await;
    let garbage = app
        .client
        .patch(app.url("/v1/admin/tenants/not-an-id"))
        .bearer_auth(admin_token())
        .json(&json!({ "status": "suspended" }))
        .send()
        .await
        .unwrap();
    assert_problem(garbage, 404, "tenant_not_found").await;
}

// ---- the gate, through the tenant routes that exist so far ----

#[tokio::test]
async fn a_suspended_tenant_is_refused_until_reactivated() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("Acme").await;
    let rotate = || {
        app.client
            .post(app.url("/v1/dashboard/capture-key"))
            .bearer_auth(tenant.dashboard_token())
            .send()
    };
    assert_eq!(rotate().await.unwrap().status(), 200);
    let set_status = |status: &'static str| {
        app.client
            .patch(app.url(&format!("/v1/admin/tenants/{}", tenant.id)))
            .bearer_auth(admin_token())
            .json(&json!({ "status": status }))
            .send()
    };
    assert_eq!(set_status("suspended").await.unwrap().status(), 200);
    assert_problem(rotate().await.unwrap(), 403, "tenant_suspended").await;
    assert_eq!(set_status("active").await.unwrap().status(), 200);
    assert_eq!(rotate().await.unwrap().status(), 200);
}

#[tokio::test]
async fn rotating_the_capture_key_issues_the_next_generation() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("Acme").await;
    let resp = app
        .client
        .post(app.url("/v1/dashboard/capture-key"))
        .bearer_auth(tenant.dashboard_token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let token = json_body(resp).await["capture_token"]
        .as_str()
        .unwrap()
        .to_string();
    let verified = domain::token::verify(
        &TokenSecret::parse(TOKEN_SECRET).unwrap(),
        &token,
        Scope::Capture,
        now(),
    )
    .unwrap();
    assert_eq!(verified.generation, Some(2));
    assert_ne!(token, tenant.capture_token);
}

#[tokio::test]
async fn dashboard_routes_refuse_capture_tokens_unknown_tenants_and_query_keys() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("Acme").await;
    let url = app.url("/v1/dashboard/capture-key");
    let capture = app
        .client
        .post(&url)
        .bearer_auth(&tenant.capture_token)
        .send()
        .await
        .unwrap();
    assert_problem(capture, 403, "token_scope").await;
    let ghost = dashboard_token("6ba7b810-9dad-41d1-80b4-00c04fd430c8");
    assert_problem(
        app.client
            .post(&url)
            .bearer_auth(ghost)
            .send()
            .await
            .unwrap(),
        401,
        "tenant_unknown",
    )
    .await;
    let in_query = app
        .client
        .post(format!("{url}?key={}", tenant.dashboard_token()))
        .send()
        .await
        .unwrap();
    assert_problem(in_query, 401, "token_missing").await;
    let no_exp = mint(&Claims {
        sub: Some(tenant.id.clone()),
        scope: Scope::Dashboard,
        exp: None,
        generation: None,
    });
    assert_problem(
        app.client
            .post(&url)
            .bearer_auth(no_exp)
            .send()
            .await
            .unwrap(),
        401,
        "token_claims",
    )
    .await;
}

#[tokio::test]
async fn tenant_a_cannot_reach_anything_of_tenant_b() {
    let app = spawn_app().await;
    let mut a = app.create_tenant("Alpha").await;
    let mut b = app.create_tenant("Bravo").await;
    assert_isolated(&app, &mut a, &b).await;
    assert_isolated(&app, &mut b, &a).await;
}
