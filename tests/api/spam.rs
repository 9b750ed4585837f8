//! Spam rules beyond the honeypot: a tenant's captcha (Turnstile or hCaptcha), verified by
//! capture against a fake verify service on 127.0.0.1, and its minimum fill time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use api_tests::{SpawnedApp, TestTenant, assert_problem, free_port, json_body, spawn_app_with};
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// One verify call the fake received: its path and form fields.
#[derive(Debug, Clone)]
struct VerifyCall {
    path: String,
    form: BTreeMap<String, String>,
}

#[derive(Default)]
struct VerifyState {
    /// (secret, token) pairs the fake accepts.
    valid: Vec<(String, String)>,
    /// Answer every call with a 500.
    broken: bool,
    calls: Vec<VerifyCall>,
}

/// A fake of both providers' verify endpoints (`POST /turnstile/v0/siteverify`,
/// `POST /siteverify`): `{"success": true}` for a known (secret, token) pair, otherwise
/// `{"success": false, "error-codes": ["invalid-input-response"]}`, as the real ones answer.
struct FakeVerify {
    server: MockServer,
    state: Arc<Mutex<VerifyState>>,
}

struct Responder(Arc<Mutex<VerifyState>>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let form: BTreeMap<String, String> =
            serde_urlencoded::from_bytes(&request.body).unwrap_or_default();
        let mut state = self.0.lock().unwrap();
        state.calls.push(VerifyCall {
            path: request.url.path().to_string(),
            form: form.clone(),
        });
        if state.broken {
            return ResponseTemplate::new(500).set_body_string("upstream trouble");
        }
        let known_path = matches!(
            request.url.path(),
            "/turnstile/v0/siteverify" | "/siteverify"
        );
        let pair = (
            form.get("secret").cloned().unwrap_or_default(),
            form.get("response").cloned().unwrap_or_default(),
        );
        let body = if known_path && request.method.as_str() == "POST" && state.valid.contains(&pair)
        {
            json!({"success": true, "hostname": "lp.example.com"})
        } else {
            json!({"success": false, "error-codes": ["invalid-input-response"]})
        };
        ResponseTemplate::new(200).set_body_json(body)
    }
}

impl FakeVerify {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(VerifyState::default()));
        Mock::given(any())
            .respond_with(Responder(state.clone()))
            .mount(&server)
            .await;
        Self { server, state }
    }

    fn accept(&self, secret: &str, token: &str) {
        self.state
            .lock()
            .unwrap()
            .valid
            .push((secret.into(), token.into()));
    }

    fn set_broken(&self, broken: bool) {
        self.state.lock().unwrap().broken = broken;
    }

    fn calls(&self) -> Vec<VerifyCall> {
        self.state.lock().unwrap().calls.clone()
    }
}

/// The app with both verify bases pointed at `turnstile` and `hcaptcha`.
async fn spawn_with_verify(turnstile: &str, hcaptcha: &str) -> SpawnedApp {
    spawn_app_with(|spec| {
        spec.with_env("SPIN_VARIABLE_TURNSTILE_VERIFY_BASE", turnstile)
            .with_env("SPIN_VARIABLE_HCAPTCHA_VERIFY_BASE", hcaptcha)
    })
    .await
}

async fn put_settings(app: &SpawnedApp, t: &TestTenant, body: &Value) -> reqwest::Response {
    app.client
        .put(app.url("/v1/dashboard/settings"))
        .bearer_auth(t.dashboard_token())
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn get_settings_text(app: &SpawnedApp, t: &TestTenant) -> String {
    let resp = app
        .client
        .get(app.url("/v1/dashboard/settings"))
        .bearer_auth(t.dashboard_token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

fn spam_count(app: &SpawnedApp, tenant: &str) -> i64 {
    app.db()
        .query_row(
            "SELECT COALESCE(SUM(spam), 0) FROM daily_rollups WHERE tenant_id = ?",
            [tenant],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn a_tenants_captcha_is_verified_with_its_secret_before_the_lead_is_stored() {
    let verify = FakeVerify::start().await;
    let app = spawn_with_verify(&verify.server.uri(), &verify.server.uri()).await;
    let a = app.create_tenant("Captcha A").await;
    let b = app.create_tenant("Captcha B").await;
    verify.accept("0xA-SECRET", "good-a");
    verify.accept("0xB-SECRET", "good-b");

    // A turns Turnstile on; the answer shows the site key and that a secret is set, never it.
    let resp = put_settings(
        &app,
        &a,
        &json!({"captcha": {"provider": "turnstile", "site_key": "0xA-SITE", "secret": "0xA-SECRET"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let saved = resp.text().await.unwrap();
    assert!(!saved.contains("0xA-SECRET"), "{saved}");
    let shown: Value = serde_json::from_str(&get_settings_text(&app, &a).await).unwrap();
    assert_eq!(
        shown["captcha"],
        json!({"provider": "turnstile", "site_key": "0xA-SITE", "secret_set": true})
    );
    assert_eq!(shown["min_fill_seconds"], 0);
    assert!(!get_settings_text(&app, &a).await.contains("0xA-SECRET"));

    // B sees none of A's captcha, and B's posts are never checked against it.
    let b_text = get_settings_text(&app, &b).await;
    assert!(!b_text.contains("0xA-"), "{b_text}");
    assert_eq!(
        serde_json::from_str::<Value>(&b_text).unwrap()["captcha"],
        Value::Null
    );
    let resp = app
        .post_lead(&b.capture_token, &json!({"email": "b1@example.com"}))
        .await;
    assert_eq!(resp.status(), 201);
    assert!(
        verify.calls().is_empty(),
        "no verify call for a tenant without a captcha"
    );

    // A good token: one verify call, with A's secret and the token, then the lead is stored.
    let resp = app
        .post_form(
            &a.capture_token,
            &[
                ("email", "a1@example.com"),
                ("cf-turnstile-response", "good-a"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 201);
    assert!(app.lead_row(&a.id, "a1@example.com").is_some());
    let calls = verify.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].path, "/turnstile/v0/siteverify");
    assert_eq!(calls[0].form["secret"], "0xA-SECRET");
    assert_eq!(calls[0].form["response"], "good-a");

    // A bad token, B's good token, or none: 422 captcha_failed and nothing stored.
    for (email, token) in [
        ("a2@example.com", Some("forged")),
        ("a3@example.com", Some("good-b")),
        ("a4@example.com", None),
    ] {
        let mut form = vec![("email", email)];
        if let Some(token) = token {
            form.push(("cf-turnstile-response", token));
        }
        let resp = app.post_form(&a.capture_token, &form).await;
        assert_problem(resp, 422, "captcha_failed").await;
        assert!(app.lead_row(&a.id, email).is_none(), "{email} was stored");
    }
    assert_eq!(app.lead_count(&a.id), 1);
    assert_eq!(
        verify.calls().len(),
        3,
        "a post without a token makes no call"
    );

    // A PUT that leaves the captcha out keeps it, secret included.
    let resp = put_settings(&app, &a, &json!({"allowed_origins": []})).await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .post_lead(
            &a.capture_token,
            &json!({"email": "a5@example.com", "cf-turnstile-response": "good-a"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(verify.calls().last().unwrap().form["secret"], "0xA-SECRET");

    // B turns hCaptcha on with its own secret: its calls carry B's secret, never A's.
    let resp = put_settings(
        &app,
        &b,
        &json!({"captcha": {"provider": "hcaptcha", "site_key": "b-site", "secret": "0xB-SECRET"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .post_lead(
            &b.capture_token,
            &json!({"email": "b2@example.com", "h-captcha-response": "good-a"}),
        )
        .await;
    assert_problem(resp, 422, "captcha_failed").await;
    let resp = app
        .post_lead(
            &b.capture_token,
            &json!({"email": "b3@example.com", "h-captcha-response": "good-b"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let calls = verify.calls();
    let last = calls.last().unwrap();
    assert_eq!(last.path, "/siteverify");
    assert_eq!(last.form["secret"], "0xB-SECRET");
    assert_eq!(last.form["sitekey"], "b-site");
    assert!(app.lead_row(&b.id, "b2@example.com").is_none());
    assert!(app.lead_row(&b.id, "b3@example.com").is_some());

    // A turns it off: no more calls for A.
    let before = verify.calls().len();
    let resp = put_settings(&app, &a, &json!({"captcha": null})).await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .post_lead(&a.capture_token, &json!({"email": "a6@example.com"}))
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(verify.calls().len(), before);
}

#[tokio::test]
async fn a_verify_service_that_gives_no_answer_is_a_retryable_503_and_stores_nothing() {
    let verify = FakeVerify::start().await;
    // hCaptcha's base is a port nothing listens on.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let app = spawn_with_verify(&verify.server.uri(), &dead).await;
    let t = app.create_tenant("Captcha Down").await;
    let h = app.create_tenant("Captcha Dead").await;
    verify.accept("0xT-SECRET", "good");
    for (tenant, provider, secret) in [(&t, "turnstile", "0xT-SECRET"), (&h, "hcaptcha", "0xH")] {
        let resp = put_settings(
            &app,
            tenant,
            &json!({"captcha": {"provider": provider, "site_key": "site", "secret": secret}}),
        )
        .await;
        assert_eq!(resp.status(), 200);
    }

    // Unreachable.
    let resp = app
        .post_lead(
            &h.capture_token,
            &json!({"email": "h1@example.com", "h-captcha-response": "tok"}),
        )
        .await;
    assert!(resp.headers().get("retry-after").is_some());
    assert_problem(resp, 503, "captcha_unavailable").await;
    assert_eq!(app.lead_count(&h.id), 0);

    // A 5xx.
    verify.set_broken(true);
    let post = || {
        app.client
            .post(app.url("/v1/leads"))
            .bearer_auth(&t.capture_token)
            .header("idempotency-key", "captcha-retry-1")
            .json(&json!({"email": "t1@example.com", "cf-turnstile-response": "good"}))
            .send()
    };
    let resp = post().await.unwrap();
    assert!(resp.headers().get("retry-after").is_some());
    assert_problem(resp, 503, "captcha_unavailable").await;
    assert_eq!(app.lead_count(&t.id), 0);

    // The visitor's retry, with the same Idempotency-Key, stores the lead once it answers.
    verify.set_broken(false);
    let resp = post().await.unwrap();
    assert_eq!(resp.status(), 201);
    assert!(app.lead_row(&t.id, "t1@example.com").is_some());
}

#[tokio::test]
async fn a_post_sooner_than_the_minimum_fill_time_answers_like_a_lead_and_stores_nothing() {
    let verify = FakeVerify::start().await;
    let app = spawn_with_verify(&verify.server.uri(), &verify.server.uri()).await;
    let t = app.create_tenant("Fill Time").await;
    let other = app.create_tenant("Fill Other").await;

    // Off by default: a post without a fill time is stored.
    let resp = app
        .post_form(&t.capture_token, &[("email", "early@example.com")])
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(app.lead_count(&t.id), 1);

    for bad in [json!(61), json!(-1), json!("3"), json!(1.5)] {
        let resp = put_settings(&app, &t, &json!({"min_fill_seconds": bad})).await;
        let body = assert_problem(resp, 422, "invalid_field").await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with("min_fill_seconds")
        );
    }
    let resp = put_settings(&app, &t, &json!({"min_fill_seconds": 3})).await;
    assert_eq!(json_body(resp).await["min_fill_seconds"], 3);

    // Too fast, or no fill time at all: a 201 like any new lead, nothing stored, counted as spam.
    for form in [
        vec![("email", "fast@example.com"), ("_fill_ms", "2999")],
        vec![("email", "bare@example.com")],
    ] {
        let resp = app.post_form(&t.capture_token, &form).await;
        assert_eq!(resp.status(), 201);
        assert!(json_body(resp).await["id"].is_string());
    }
    assert_eq!(app.lead_count(&t.id), 1);
    assert_eq!(spam_count(&app, &t.id), 2);

    // Slow enough: stored.
    let resp = app
        .post_form(
            &t.capture_token,
            &[("email", "human@example.com"), ("_fill_ms", "3000")],
        )
        .await;
    assert_eq!(resp.status(), 201);
    assert!(app.lead_row(&t.id, "human@example.com").is_some());

    // Another tenant's minimum does not apply here.
    let resp = app
        .post_form(
            &other.capture_token,
            &[("email", "fast@example.com"), ("_fill_ms", "10")],
        )
        .await;
    assert_eq!(resp.status(), 201);
    assert!(app.lead_row(&other.id, "fast@example.com").is_some());
    assert_eq!(spam_count(&app, &other.id), 0);

    // Turning a captcha on needs its secret; the minimum stays as it is when left out.
    let resp = put_settings(
        &app,
        &t,
        &json!({"captcha": {"provider": "turnstile", "site_key": "site"}}),
    )
    .await;
    let body = assert_problem(resp, 422, "invalid_field").await;
    assert!(body["detail"].as_str().unwrap().starts_with("captcha"));
    let shown: Value = serde_json::from_str(&get_settings_text(&app, &t).await).unwrap();
    assert_eq!(shown["min_fill_seconds"], 3);
    assert_eq!(shown["captcha"], Value::Null);
    assert!(verify.calls().is_empty());
}
