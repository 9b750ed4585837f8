//! Who holds a funnel, whose dashboard a token opens, and how much clock skew a token survives:
//! funnels are assigned by the operator only and no tenant's answer names another tenant's;
//! `GET /v1/dashboard/me` names the signed-in tenant; token times allow 60 s of skew.

use api_tests::{
    TOKEN_SECRET, TestApp, TestTenant, admin_token, assert_problem, json_body, now, spawn_app,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// `PATCH /v1/admin/tenants/:id` with the operator's token.
async fn patch_tenant(app: &TestApp, t: &TestTenant, body: Value) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/v1/admin/tenants/{}", t.id)))
        .bearer_auth(admin_token())
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `PUT /v1/dashboard/settings` with the tenant's own dashboard token.
async fn put_settings(app: &TestApp, t: &TestTenant, body: Value) -> reqwest::Response {
    app.client
        .put(app.url("/v1/dashboard/settings"))
        .bearer_auth(t.dashboard_token())
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn settings(app: &TestApp, t: &TestTenant) -> Value {
    let resp = app
        .client
        .get(app.url("/v1/dashboard/settings"))
        .bearer_auth(t.dashboard_token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    json_body(resp).await
}

/// The funnels `tenant_funnels` (the sale attribution lookup) gives a tenant.
fn funnel_rows(app: &TestApp, tenant: &str) -> Vec<i64> {
    let db = app.db();
    let mut stmt = db
        .prepare("SELECT funnel_id FROM tenant_funnels WHERE tenant_id = ?1 ORDER BY funnel_id")
        .unwrap();
    stmt.query_map([tenant], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn a_tenant_cannot_claim_a_funnel_from_its_settings() {
    let app = spawn_app().await;
    let t = app.create_tenant("Squatter").await;
    let problem = assert_problem(
        put_settings(&app, &t, json!({"funnel_ids": [801]})).await,
        422,
        "funnel_ids_read_only",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("funnel_ids"),
        "{problem}"
    );
    assert_eq!(settings(&app, &t).await["funnel_ids"], json!([]));
    assert!(funnel_rows(&app, &t.id).is_empty(), "nothing registered");
    // The rest of a settings body is still the tenant's to change.
    let resp = put_settings(
        &app,
        &t,
        json!({"allowed_origins": ["https://lp.example.com"], "funnel_ids": []}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let saved = json_body(resp).await;
    assert_eq!(saved["allowed_origins"], json!(["https://lp.example.com"]));
    assert_eq!(saved["funnel_ids"], json!([]));
}

#[tokio::test]
async fn funnel_ids_are_assigned_by_the_operator() {
    let app = spawn_app().await;
    let a = app.create_tenant("Funnel Owner").await;
    let b = app.create_tenant("Funnel Other").await;

    let resp = patch_tenant(&app, &a, json!({"funnel_ids": [801, 12, 801]})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_body(resp).await["funnel_ids"], json!([12, 801]));
    assert_eq!(settings(&app, &a).await["funnel_ids"], json!([12, 801]));
    assert_eq!(funnel_rows(&app, &a.id), [12, 801]);
    assert_eq!(
        app.admin_view(&a.id).await.unwrap()["funnel_ids"],
        json!([12, 801])
    );

    // The tenant's own PUT keeps them: omitted, or sent back as they are (in any order).
    for body in [
        json!({"thank_you_url": "https://lp.example.com/thanks"}),
        json!({"thank_you_url": "https://lp.example.com/thanks", "funnel_ids": [801, 12]}),
    ] {
        let resp = put_settings(&app, &a, body.clone()).await;
        assert_eq!(resp.status(), 200, "{body}");
        assert_eq!(json_body(resp).await["funnel_ids"], json!([12, 801]));
    }
    // A PUT that would change them changes nothing at all.
    for changed in [json!([]), json!([12]), json!([12, 801, 5])] {
        assert_problem(
            put_settings(
                &app,
                &a,
                json!({"thank_you_url": null, "funnel_ids": changed}),
            )
            .await,
            422,
            "funnel_ids_read_only",
        )
        .await;
    }
    let kept = settings(&app, &a).await;
    assert_eq!(kept["funnel_ids"], json!([12, 801]));
    assert_eq!(kept["thank_you_url"], "https://lp.example.com/thanks");
    assert_eq!(funnel_rows(&app, &a.id), [12, 801]);

    // A funnel belongs to one tenant at most; the operator is told which.
    assert_problem(
        patch_tenant(&app, &b, json!({"funnel_ids": [801]})).await,
        409,
        "funnel_taken",
    )
    .await;
    assert!(funnel_rows(&app, &b.id).is_empty());
    assert_problem(
        patch_tenant(&app, &b, json!({"funnel_ids": [0]})).await,
        422,
        "invalid_field",
    )
    .await;
    // Released by one tenant, it can be given to another; a plan change leaves funnels alone.
    let resp = patch_tenant(&app, &a, json!({"funnel_ids": [12]})).await;
    assert_eq!(json_body(resp).await["funnel_ids"], json!([12]));
    let resp = patch_tenant(&app, &b, json!({"funnel_ids": [801]})).await;
    assert_eq!(resp.status(), 200);
    let resp = patch_tenant(&app, &b, json!({"plan": "pro"})).await;
    assert_eq!(json_body(resp).await["funnel_ids"], json!([801]));
    assert_eq!(settings(&app, &b).await["funnel_ids"], json!([801]));
    assert_eq!(funnel_rows(&app, &b.id), [801]);
    assert_eq!(funnel_rows(&app, &a.id), [12]);
}

#[tokio::test]
async fn no_tenant_answer_reveals_another_tenants_funnels() {
    let app = spawn_app().await;
    let owner = app.create_tenant("Holder").await;
    let prober = app.create_tenant("Prober").await;
    assert_eq!(
        patch_tenant(&app, &owner, json!({"funnel_ids": [801]}))
            .await
            .status(),
        200
    );
    // A funnel another tenant holds and one nobody holds get the same answer, word for word.
    let mut answers = Vec::new();
    for funnel in [801, 802] {
        let resp = put_settings(&app, &prober, json!({"funnel_ids": [funnel]})).await;
        let status = resp.status().as_u16();
        let body = json_body(resp).await;
        assert_ne!(body["code"], "funnel_taken", "{body}");
        assert!(!body.to_string().contains(&funnel.to_string()), "{body}");
        answers.push((status, body));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, 422);
    assert_eq!(answers[0].1["code"], "funnel_ids_read_only");
    // What the prober can read names only its own (none).
    assert_eq!(settings(&app, &prober).await["funnel_ids"], json!([]));
    let me = app
        .client
        .get(app.url("/v1/dashboard/me"))
        .bearer_auth(prober.dashboard_token())
        .send()
        .await
        .unwrap();
    assert!(!json_body(me).await.to_string().contains("801"));
    assert_eq!(funnel_rows(&app, &owner.id), [801]);
    assert!(funnel_rows(&app, &prober.id).is_empty());
}

#[tokio::test]
async fn the_dashboard_names_the_signed_in_tenant() {
    let app = spawn_app().await;
    let a = app.create_tenant("Named Ib").await;
    let b = app.create_tenant("Other Ib").await;
    for t in [&a, &b] {
        let resp = app
            .client
            .get(app.url("/v1/dashboard/me"))
            .bearer_auth(t.dashboard_token())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            json_body(resp).await,
            json!({
                "tenant_id": t.id,
                "name": t.body["name"],
                "tag_prefix": t.tag_prefix,
                "plan": "starter",
            })
        );
    }
    let resp = app
        .client
        .get(app.url("/v1/dashboard/me"))
        .bearer_auth(&a.capture_token)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 403, "token_scope").await;
    let resp = app
        .client
        .post(app.url("/v1/dashboard/me"))
        .bearer_auth(a.dashboard_token())
        .send()
        .await
        .unwrap();
    assert_problem(resp, 405, "method_not_allowed").await;
}

/// A dashboard token over any claims, signed with the test `token_secret`.
fn sign(claims: &Value) -> String {
    use hmac::{Hmac, Mac};
    let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(TOKEN_SECRET.as_bytes()).unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    format!(
        "{h}.{p}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[tokio::test]
async fn tokens_allow_sixty_seconds_of_clock_skew() {
    let app = spawn_app().await;
    let t = app.create_tenant("Skewed Clock").await;
    let stats = |claims: Value| {
        app.client
            .get(app.url("/v1/dashboard/stats"))
            .bearer_auth(sign(&claims))
            .send()
    };
    let claims = |extra: Value| {
        let mut c = json!({"sub": t.id, "scope": "dashboard", "exp": now() + 600});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    // Accepted within the leeway...
    for extra in [
        json!({"exp": now() - 30}),
        json!({"nbf": now() + 30}),
        json!({"iat": now() + 30}),
    ] {
        let resp = stats(claims(extra.clone())).await.unwrap();
        assert_eq!(resp.status(), 200, "{extra}");
    }
    // ...and refused beyond it.
    for (extra, code) in [
        (json!({"exp": now() - 90}), "token_expired"),
        (json!({"nbf": now() + 90}), "token_not_yet_valid"),
        (json!({"iat": now() + 90}), "token_not_yet_valid"),
    ] {
        let resp = stats(claims(extra.clone())).await.unwrap();
        assert_problem(resp, 401, code).await;
    }
    // A clock a little ahead mints a full day's token: still within the maximum lifetime.
    let resp = stats(claims(json!({
        "exp": now() + domain::token::MAX_DASHBOARD_LIFETIME_SECS + 30,
        "iat": now() + 30,
    })))
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    // Capture tokens get the same leeway.
    let capture = sign(&json!({"sub": t.id, "scope": "capture", "gen": 1, "nbf": now() + 30}));
    let resp = app
        .post_lead(&capture, &json!({"email": "skew@example.com"}))
        .await;
    assert_eq!(resp.status(), 201);
}
