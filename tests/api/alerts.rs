//! Alerts (docs/alerts.md): rules fire on captures, stages and sales; deliveries are Standard
//! Webhooks a receiver verifies with the reference library, retried with the same id, kept
//! across a `SIGKILL`; the destination guard; isolation; digests once a day.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_tests::{SpawnedApp, TestTenant, admin_token, assert_problem, json_body, spawn_app_with};
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct ReceiverState {
    /// Statuses to answer, in order; `200` once they run out.
    script: VecDeque<u16>,
    /// How long to wait before answering.
    delay: Duration,
    got: Vec<Received>,
}

/// An endpoint an IB would run: records every request and answers as scripted.
struct Receiver {
    server: MockServer,
    state: Arc<Mutex<ReceiverState>>,
}

struct Script(Arc<Mutex<ReceiverState>>);

impl Respond for Script {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        let mut headers = http::HeaderMap::new();
        for (k, v) in &request.headers {
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.as_str().as_bytes()),
                http::HeaderValue::from_bytes(v.as_bytes()),
            ) {
                headers.append(k, v);
            }
        }
        state.got.push(Received {
            path: request.url.path().to_string(),
            headers,
            body: request.body.clone(),
        });
        let status = state.script.pop_front().unwrap_or(200);
        ResponseTemplate::new(status).set_delay(state.delay)
    }
}

impl Receiver {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        Mock::given(any())
            .respond_with(Script(state.clone()))
            .mount(&server)
            .await;
        Self { server, state }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.uri())
    }

    fn script(&self, statuses: &[u16]) {
        self.state.lock().unwrap().script = statuses.iter().copied().collect();
    }

    fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    fn got(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    /// Waits up to 15 s for at least `n` requests.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.got();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The app with the receiver's origin exempt from the destination guard.
async fn spawn_with(receiver: &Receiver) -> SpawnedApp {
    let origin = receiver.server.uri();
    spawn_app_with(|spec| spec.with_env("SPIN_VARIABLE_ALERTS_DEV_ORIGIN", &origin)).await
}

async fn send(
    app: &SpawnedApp,
    method: reqwest::Method,
    path: &str,
    t: &TestTenant,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(t.dashboard_token());
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

/// Creates a rule and answers the `201` body.
async fn create_rule(app: &SpawnedApp, t: &TestTenant, rule: Value) -> Value {
    let resp = send(
        app,
        reqwest::Method::POST,
        "/v1/dashboard/alerts",
        t,
        Some(rule),
    )
    .await;
    assert_eq!(resp.status(), 201);
    json_body(resp).await
}

/// Holds `alert_runner` so that no chained run starts and only the batch sends; a writable
/// connection to the app's database.
fn without_chained_runs(app: &SpawnedApp) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(app.database_path()).unwrap();
    db.execute(
        "UPDATE alert_runner SET until = 9999999999 WHERE id = 1",
        [],
    )
    .unwrap();
    db
}

/// The rule as `GET /v1/dashboard/alerts/{id}` shows it.
async fn rule_as_shown(app: &SpawnedApp, t: &TestTenant, id: &str) -> Value {
    json_body(
        send(
            app,
            reqwest::Method::GET,
            &format!("/v1/dashboard/alerts/{id}"),
            t,
            None,
        )
        .await,
    )
    .await
}

fn vip_rule(receiver: &Receiver) -> Value {
    json!({"name": "VIP lead", "when": {"event": "lead.captured", "volume": "high"},
           "destination": {"url": receiver.url("/hook"), "format": "json"}})
}

async fn log(app: &SpawnedApp, t: &TestTenant) -> Vec<Value> {
    let resp = send(
        app,
        reqwest::Method::GET,
        "/v1/dashboard/alerts/deliveries",
        t,
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    json_body(resp).await["deliveries"]
        .as_array()
        .unwrap()
        .clone()
}

/// The newest log entry once it has had `attempts` attempts (a receiver sees a request before
/// the app records its answer).
async fn logged_after(app: &SpawnedApp, t: &TestTenant, attempts: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entries = log(app, t).await;
        if let Some(first) = entries.first()
            && (first["attempts"].as_i64() >= Some(attempts) || Instant::now() > deadline)
        {
            return first.clone();
        }
        assert!(Instant::now() < deadline, "no log entry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run_batch(app: &SpawnedApp, query: &str) -> Value {
    let resp = app
        .client
        .post(app.url(&format!("/v1/admin/alerts/run{query}")))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    json_body(resp).await
}

/// Verifies a delivery as a receiver would, with the Standard Webhooks reference library.
fn verify(secret: &str, got: &Received) -> Value {
    let webhook = standardwebhooks::Webhook::new(secret).unwrap();
    webhook
        .verify(&got.body, &got.headers)
        .unwrap_or_else(|e| panic!("signature did not verify: {e:?}"));
    got.json()
}

#[tokio::test]
async fn a_matching_capture_is_delivered_within_seconds_signed_as_standard_webhooks() {
    let receiver = Receiver::start().await;
    let app = spawn_with(&receiver).await;
    let a = app.create_tenant("Alert A").await;
    let created = create_rule(&app, &a, vip_rule(&receiver)).await;
    let secret = created["signing_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["status"], "active");

    // A low-volume lead does not match; a 500+ one does, and goes out at once.
    let resp = app
        .post_lead(
            &a.capture_token,
            &json!({"email": "small@example.com", "monthly_leads": "10-100"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let resp = app
        .post_lead(
            &a.capture_token,
            &json!({"email": "whale@example.com", "monthly_leads": "500+", "ib_type": "ib"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let got = receiver.wait_for(1).await;
    assert_eq!(got.len(), 1, "one delivery, for the matching lead only");
    assert_eq!(got[0].path, "/hook");
    let body = verify(&secret, &got[0]);
    assert_eq!(body["type"], "lead.captured");
    assert_eq!(body["data"]["lead"]["email"], "whale@example.com");
    assert_eq!(body["data"]["rule"]["name"], "VIP lead");
    assert!(got[0].header("webhook-id").starts_with("msg_"));

    logged_after(&app, &a, 1).await;
    let entries = log(&app, &a).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["status"], "delivered");
    assert_eq!(entries[0]["last_status_code"], 200);
    assert_eq!(entries[0]["attempts"], 1);
    assert_eq!(entries[0]["rule_name"], "VIP lead");
    assert_eq!(entries[0]["id"], got[0].header("webhook-id"));

    // The secret is never answered again; a rotation answers a new one that signs from then on.
    let list = send(&app, reqwest::Method::GET, "/v1/dashboard/alerts", &a, None).await;
    let text = list.text().await.unwrap();
    assert!(!text.contains(&secret[6..]), "{text}");
    assert!(text.contains("\"signing_secret_set\":true"), "{text}");
    let rotated = send(
        &app,
        reqwest::Method::POST,
        "/v1/dashboard/alerts/secret",
        &a,
        None,
    )
    .await;
    assert_eq!(rotated.status(), 201);
    let new_secret = json_body(rotated).await["signing_secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_secret, secret);
    let rule_id = created["id"].as_str().unwrap();
    let test = send(
        &app,
        reqwest::Method::POST,
        &format!("/v1/dashboard/alerts/{rule_id}/test"),
        &a,
        None,
    )
    .await;
    assert_eq!(test.status(), 200);
    assert_eq!(json_body(test).await["status"], "delivered");
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    assert_eq!(verify(&new_secret, &got[1])["type"], "test");
    assert!(
        standardwebhooks::Webhook::new(&secret)
            .unwrap()
            .verify(&got[1].body, &got[1].headers)
            .is_err()
    );
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_same_webhook_id_three_times() {
    let receiver = Receiver::start().await;
    receiver.script(&[500, 503]);
    let app = spawn_with(&receiver).await;
    let a = app.create_tenant("Retry A").await;
    let secret = create_rule(&app, &a, vip_rule(&receiver)).await["signing_secret"]
        .as_str()
        .unwrap()
        .to_string();
    app.post_lead(
        &a.capture_token,
        &json!({"email": "r@example.com", "monthly_leads": "500+"}),
    )
    .await;
    assert_eq!(receiver.wait_for(1).await.len(), 1);
    let entry = &logged_after(&app, &a, 1).await;
    assert_eq!(entry["status"], "pending");
    assert_eq!(entry["last_status_code"], 500);
    assert!(
        entry["next_attempt_at"].is_string(),
        "a retry is scheduled: {entry}"
    );

    // The retry waits out its backoff; the operator's "retry now" sends it at once.
    let report = run_batch(&app, "").await;
    assert_eq!(report["delivered"], 0, "{report}");
    run_batch(&app, "?ignore_backoff=true").await;
    let report = run_batch(&app, "?ignore_backoff=true").await;
    assert_eq!(report["delivered"], 1, "{report}");
    let got = receiver.got();
    assert_eq!(got.len(), 3);
    let ids: Vec<&str> = got.iter().map(|g| g.header("webhook-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    for g in &got {
        verify(&secret, g);
        assert_eq!(g.body, got[0].body, "every attempt sends the same body");
    }
    let entry = &log(&app, &a).await[0];
    assert_eq!(entry["status"], "delivered");
    assert_eq!(entry["attempts"], 3);
    assert_eq!(entry["next_attempt_at"], Value::Null);
}

#[tokio::test]
async fn an_alert_of_a_capture_survives_a_kill_between_the_capture_and_its_delivery() {
    let receiver = Receiver::start().await;
    // The first attempt hangs, so the host dies while it is in flight.
    receiver.set_delay(Duration::from_secs(30));
    let app = spawn_with(&receiver).await;
    let a = app.create_tenant("Kill A").await;
    create_rule(&app, &a, vip_rule(&receiver)).await;
    let resp = app
        .post_lead(
            &a.capture_token,
            &json!({"email": "k@example.com", "monthly_leads": "500+"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let first = receiver.wait_for(1).await;
    assert_eq!(first.len(), 1, "the attempt started");

    let SpawnedApp { app, systeme } = app;
    let app = tokio::task::spawn_blocking(move || app.kill_and_restart())
        .await
        .unwrap();
    let app = SpawnedApp { app, systeme };
    receiver.set_delay(Duration::ZERO);
    let report = run_batch(&app, "?ignore_backoff=true").await;
    assert_eq!(report["delivered"], 1, "{report}");
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].header("webhook-id"), first[0].header("webhook-id"));
    assert_eq!(log(&app, &a).await[0]["status"], "delivered");
}

#[tokio::test]
async fn destinations_that_could_reach_inside_are_refused_with_the_reason() {
    let receiver = Receiver::start().await;
    let app = spawn_with(&receiver).await;
    let a = app.create_tenant("Guard A").await;
    let port = receiver.server.address().port();
    for url in [
        "http://hooks.example.com/x".to_string(),
        "https://hooks.example.com:8443/x".to_string(),
        "https://127.0.0.1/x".to_string(),
        "https://10.1.2.3/x".to_string(),
        "https://169.254.169.254/latest/meta-data".to_string(),
        "https://[::1]/x".to_string(),
        "https://localhost/x".to_string(),
        "https://metadata.google.internal/x".to_string(),
        "https://printer.local/x".to_string(),
        "https://intranet/x".to_string(),
        format!("http://127.0.0.1:{}/x", port + 1),
        format!("http://localhost:{port}/x"),
    ] {
        let rule = json!({"name": "x", "when": {"event": "digest"},
                          "destination": {"url": url, "format": "json"}});
        let resp = send(
            &app,
            reqwest::Method::POST,
            "/v1/dashboard/alerts",
            &a,
            Some(rule),
        )
        .await;
        let problem = assert_problem(resp, 422, "destination_refused").await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("destination.url: "),
            "{url}: {problem}"
        );
    }
    // Other fields name themselves; the plan's rule count is a limit.
    let bad = json!({"name": "x", "when": {"event": "lead.opened", "opens": 0},
                     "destination": {"url": "https://hooks.example.com/x", "format": "json"}});
    let resp = send(
        &app,
        reqwest::Method::POST,
        "/v1/dashboard/alerts",
        &a,
        Some(bad),
    )
    .await;
    let problem = assert_problem(resp, 422, "invalid_field").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("when.opens")
    );
    let ok = json!({"name": "x", "when": {"event": "digest", "timezone": "Europe/Berlin"},
                    "destination": {"url": "https://hooks.example.com/x", "format": "slack"}});
    for _ in 0..3 {
        create_rule(&app, &a, ok.clone()).await;
    }
    let resp = send(
        &app,
        reqwest::Method::POST,
        "/v1/dashboard/alerts",
        &a,
        Some(ok),
    )
    .await;
    assert_problem(resp, 422, "alert_rule_limit").await;
    // The chained route is not public.
    let resp = app
        .client
        .post(app.url("/v1/internal/alerts/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_tenants_rules_fire_on_its_own_leads_and_only_it_sees_them() {
    let receiver = Receiver::start().await;
    let app = spawn_with(&receiver).await;
    let a = app.create_tenant("Iso A").await;
    let b = app.create_tenant("Iso B").await;
    let rule = create_rule(&app, &a, vip_rule(&receiver)).await;
    let rule_id = rule["id"].as_str().unwrap();

    // B's matching lead fires nothing of A's.
    app.post_lead(
        &b.capture_token,
        &json!({"email": "b@example.com", "monthly_leads": "500+"}),
    )
    .await;
    app.post_lead(
        &a.capture_token,
        &json!({"email": "a@example.com", "monthly_leads": "500+"}),
    )
    .await;
    let got = receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.got().len(), 1);
    assert_eq!(got[0].json()["data"]["lead"]["email"], "a@example.com");

    // B sees none of A's rules or deliveries, and cannot touch them.
    let list =
        json_body(send(&app, reqwest::Method::GET, "/v1/dashboard/alerts", &b, None).await).await;
    assert_eq!(list["rules"], json!([]));
    assert_eq!(list["signing_secret_set"], false);
    assert!(log(&app, &b).await.is_empty());
    let path = format!("/v1/dashboard/alerts/{rule_id}");
    for (method, path) in [
        (reqwest::Method::GET, path.clone()),
        (reqwest::Method::DELETE, path.clone()),
        (reqwest::Method::POST, format!("{path}/test")),
    ] {
        let resp = send(&app, method, &path, &b, None).await;
        assert_problem(resp, 404, "alert_rule_not_found").await;
    }
    let resp = send(
        &app,
        reqwest::Method::PUT,
        &path,
        &b,
        Some(vip_rule(&receiver)),
    )
    .await;
    assert_problem(resp, 404, "alert_rule_not_found").await;
    let delivery = got[0].header("webhook-id").to_string();
    let resp = send(
        &app,
        reqwest::Method::POST,
        &format!("/v1/dashboard/alerts/deliveries/{delivery}/redeliver"),
        &b,
        None,
    )
    .await;
    assert_problem(resp, 404, "alert_delivery_not_found").await;
    assert_eq!(receiver.got().len(), 1);
    // A still has its rule; without a token nothing is answered.
    assert_eq!(
        send(&app, reqwest::Method::GET, &path, &a, None)
            .await
            .status(),
        200
    );
    let resp = app
        .client
        .get(app.url("/v1/dashboard/alerts"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // A's redeliver sends the same id again.
    let resp = send(
        &app,
        reqwest::Method::POST,
        &format!("/v1/dashboard/alerts/deliveries/{delivery}/redeliver"),
        &a,
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(receiver.got()[1].header("webhook-id"), delivery);
}

fn sale(email: &str, order: i64, cents: i64, currency: &str) -> String {
    json!({"customer": {"email": email}, "order": {"id": order, "totalPrice": cents},
           "pricePlan": {"amount": cents, "currency": currency}})
    .to_string()
}

#[tokio::test]
async fn stage_and_sale_rules_fire_from_systeme_callbacks_in_slack_and_discord_form() {
    let receiver = Receiver::start().await;
    let app = spawn_with(&receiver).await;
    let a = app.create_tenant("Sale A").await;
    create_rule(
        &app,
        &a,
        json!({"name": "Big sale", "when": {"event": "sale", "min_amount_cents": 50_000, "currency": "USD"},
               "destination": {"url": receiver.url("/slack"), "format": "slack"}}),
    )
    .await;
    create_rule(
        &app,
        &a,
        json!({"name": "Converted", "when": {"event": "lead.stage", "stage": "converted"},
               "destination": {"url": receiver.url("/discord"), "format": "discord"}}),
    )
    .await;
    app.post_lead(&a.capture_token, &json!({"email": "buyer@example.com"}))
        .await;
    let resp = app
        .post_systeme_event(
            "SALE_NEW",
            "s1",
            &sale("buyer@example.com", 1, 9_900, "usd"),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // The first sale converts the lead (one alert); it is below the amount (none).
    let got = receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.got().len(), 1, "{got:?}");
    assert_eq!(got[0].path, "/discord");
    assert_eq!(
        got[0].json()["content"],
        "Converted: buyer@example.com reached the converted stage"
    );
    let resp = app
        .post_systeme_event(
            "SALE_NEW",
            "s2",
            &sale("buyer@example.com", 2, 60_000, "usd"),
        )
        .await;
    assert_eq!(resp.status(), 200);
    app.post_systeme_event(
        "SALE_NEW",
        "s3",
        &sale("buyer@example.com", 3, 90_000, "eur"),
    )
    .await;
    let got = receiver.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.got().len(), 2, "the EUR sale matches no USD rule");
    assert_eq!(got[1].path, "/slack");
    assert_eq!(
        got[1].json()["text"],
        "Big sale: Sale of 600.00 USD by buyer@example.com"
    );
}

#[tokio::test]
async fn a_digest_is_queued_once_per_tenant_local_day() {
    let receiver = Receiver::start().await;
    let app = spawn_with(&receiver).await;
    let a = app.create_tenant("Digest A").await;
    create_rule(
        &app,
        &a,
        json!({"name": "Daily", "when": {"event": "digest", "timezone": "Asia/Tokyo"},
               "destination": {"url": receiver.url("/digest"), "format": "json"}}),
    )
    .await;
    // Made today, the rule has no full day behind it yet.
    assert_eq!(run_batch(&app, "").await["digests_queued"], 0);
    // As if it had been made a week ago (the test moves the rule, not the clock).
    app.db_rw()
        .execute(
            "UPDATE alert_rules SET created_at = '2000-01-01T00:00:00.000Z' WHERE tenant_id = ?",
            [&a.id],
        )
        .unwrap();
    let first = run_batch(&app, "").await;
    assert_eq!(first["digests_queued"], 1, "{first}");
    assert_eq!(first["delivered"], 1, "{first}");
    for _ in 0..2 {
        assert_eq!(run_batch(&app, "").await["digests_queued"], 0);
    }
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    let body = got[0].json();
    assert_eq!(body["type"], "digest");
    let digest = &body["data"]["digest"];
    assert!(digest["day"].is_string(), "{body}");
    assert_eq!(digest["leads"], 0);
    assert_eq!(digest["revenue"], json!({}));
}

#[tokio::test]
async fn a_rule_failing_for_three_days_is_switched_off_and_saving_it_switches_it_back_on() {
    let receiver = Receiver::start().await;
    receiver.script(&[500, 500, 500]);
    let app = spawn_with(&receiver).await;
    let a = app.create_tenant("Failing A").await;
    let rule = create_rule(&app, &a, vip_rule(&receiver)).await;
    let id = rule["id"].as_str().unwrap();
    app.post_lead(
        &a.capture_token,
        &json!({"email": "f@example.com", "monthly_leads": "500+"}),
    )
    .await;
    receiver.wait_for(1).await;
    logged_after(&app, &a, 1).await;
    // The run records the attempt, then the rule's streak: wait for the second write too.
    let deadline = Instant::now() + Duration::from_secs(10);
    let shown = loop {
        let shown = rule_as_shown(&app, &a, id).await;
        if shown["failing_since"].is_string() || Instant::now() > deadline {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(shown["status"], "active");
    assert!(shown["failing_since"].is_string(), "{shown}");
    // Three days of failures (the test moves the streak's start, not the clock).
    app.db_rw()
        .execute(
            "UPDATE alert_rules SET failing_since = failing_since - 3 * 86400 WHERE tenant_id = ?",
            [&a.id],
        )
        .unwrap();
    run_batch(&app, "?ignore_backoff=true").await;
    let shown = rule_as_shown(&app, &a, id).await;
    assert_eq!(shown["status"], "disabled_failing");
    assert_eq!(log(&app, &a).await[0]["status"], "failed");
    // Switched off, it fires no more; saving it switches it on again.
    app.post_lead(
        &a.capture_token,
        &json!({"email": "g@example.com", "monthly_leads": "500+"}),
    )
    .await;
    assert_eq!(log(&app, &a).await.len(), 1);
    let resp = send(
        &app,
        reqwest::Method::PUT,
        &format!("/v1/dashboard/alerts/{id}"),
        &a,
        Some(vip_rule(&receiver)),
    )
    .await;
    assert_eq!(json_body(resp).await["status"], "active");
    app.post_lead(
        &a.capture_token,
        &json!({"email": "h@example.com", "monthly_leads": "500+"}),
    )
    .await;
    assert_eq!(log(&app, &a).await.len(), 2);
}

#[tokio::test]
async fn past_the_plans_deliveries_for_the_day_alerts_are_dropped_with_the_reason() {
    let receiver = Receiver::start().await;
    let origin = receiver.server.uri();
    let app = spawn_app_with(|spec| {
        spec.with_env("SPIN_VARIABLE_ALERTS_DEV_ORIGIN", &origin)
            .with_env("SPIN_VARIABLE_CAPTURE_RATE_LIMIT", "100000")
    })
    .await;
    let a = app.create_tenant("Limit A").await;
    let every = json!({"name": "Every lead", "when": {"event": "lead.captured"},
                       "destination": {"url": receiver.url("/hook"), "format": "json"}});
    create_rule(&app, &a, every).await;
    let limits = json_body(
        send(&app, reqwest::Method::GET, "/v1/dashboard/alerts", &a, None).await,
    )
    .await["limits"]
        .clone();
    assert_eq!(
        limits,
        json!({"rules": 3, "deliveries_per_day": 200}),
        "the starter plan"
    );
    let posts: Vec<(String, Value)> = (0..201)
        .map(|n| {
            (
                a.capture_token.clone(),
                json!({"email": format!("l{n}@example.com")}),
            )
        })
        .collect();
    app.post_leads(&posts).await;
    // The chained run may still be sending: the batch beside it keeps to the limit too.
    for _ in 0..20 {
        let report = run_batch(&app, "?limit=1000").await;
        if report["remaining_due"] == 0 {
            break;
        }
    }
    let db = app.db();
    let count = |status: &str| -> i64 {
        db.query_row(
            "SELECT count(*) FROM alert_deliveries WHERE tenant_id = ? AND status = ?",
            [&a.id, status],
            |r| r.get(0),
        )
        .unwrap()
    };
    // Deliveries still in a run's hands are neither; wait for them.
    let deadline = Instant::now() + Duration::from_secs(15);
    while count("delivered") + count("dropped") < 201 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count("delivered"), 200);
    assert_eq!(count("dropped"), 1);
    let dropped: String = db
        .query_row(
            "SELECT last_error FROM alert_deliveries WHERE tenant_id = ? AND status = 'dropped'",
            [&a.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dropped, "daily_limit");
    assert_eq!(receiver.got().len(), 200);
    let list =
        json_body(send(&app, reqwest::Method::GET, "/v1/dashboard/alerts", &a, None).await).await;
    assert_eq!(list["deliveries_today"], 200);
}

#[tokio::test]
async fn an_opened_emails_rule_fires_once_when_the_count_is_reached() {
    let receiver = Receiver::start().await;
    let app = spawn_with(&receiver).await;
    let a = app.create_tenant("Opens A").await;
    create_rule(
        &app,
        &a,
        json!({"name": "Warm", "when": {"event": "lead.opened", "opens": 2},
               "destination": {"url": receiver.url("/opens"), "format": "json"}}),
    )
    .await;
    // Systeme.io adds a tag once: each open is the tag added again after its removal.
    let tag = format!("{}email-opened", a.tag_prefix);
    let with = json!([{"id": 1, "name": tag}]);
    let steps = [
        ("CONTACT_TAG_ADDED", with.clone()),
        ("CONTACT_TAG_REMOVED", json!([])),
        ("CONTACT_TAG_ADDED", with.clone()),
        ("CONTACT_TAG_REMOVED", json!([])),
        ("CONTACT_TAG_ADDED", with),
    ];
    for (n, (name, tags)) in steps.into_iter().enumerate() {
        let body = json!({
            "contact": {"id": 4242, "email": "reader@example.com", "tags": tags},
            "tag": {"id": 1, "name": tag},
            "seq": n
        });
        let resp = app
            .post_systeme_event(name, &format!("open-{n}"), &body.to_string())
            .await;
        assert_eq!(resp.status(), 200);
        if n == 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(receiver.got().is_empty(), "one open is not two");
        }
    }
    let got = receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.got().len(),
        1,
        "fired once, when the count reached 2"
    );
    let body = got[0].json();
    assert_eq!(body["type"], "lead.opened");
    assert_eq!(body["data"]["lead"]["email"], "reader@example.com");
}

#[tokio::test]
async fn erasing_a_lead_drops_its_unsent_alerts_and_their_stored_bodies() {
    let receiver = Receiver::start().await;
    receiver.script(&[500]);
    let app = spawn_with(&receiver).await;
    let a = app.create_tenant("Erase A").await;
    create_rule(&app, &a, vip_rule(&receiver)).await;
    let resp = app
        .post_lead(
            &a.capture_token,
            &json!({"email": "gone@example.com", "monthly_leads": "500+", "phone": "+15550100"}),
        )
        .await;
    let lead_id = json_body(resp).await["id"].as_str().unwrap().to_string();
    receiver.wait_for(1).await;
    assert_eq!(logged_after(&app, &a, 1).await["status"], "pending");
    let stored: Option<String> = app
        .db()
        .query_row(
            "SELECT body FROM alert_deliveries WHERE tenant_id = ?",
            [&a.id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(stored.unwrap().contains("+15550100"));

    let resp = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/dashboard/leads/{lead_id}"),
        &a,
        None,
    )
    .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let entry = &log(&app, &a).await[0];
    assert_eq!(entry["status"], "dropped");
    assert_eq!(entry["last_error"], "lead_erased");
    let (body, status): (Option<String>, String) = app
        .db()
        .query_row(
            "SELECT body, status FROM alert_deliveries WHERE tenant_id = ?",
            [&a.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((body, status.as_str()), (None, "dropped"));
    run_batch(&app, "?ignore_backoff=true").await;
    assert_eq!(
        receiver.got().len(),
        1,
        "an erased lead's alert is not sent again"
    );
}

#[tokio::test]
async fn a_delivery_that_cannot_be_built_fails_its_attempt_and_the_rest_of_its_batch_goes_out() {
    let receiver = Receiver::start().await;
    let app = spawn_with(&receiver).await;
    let a = app.create_tenant("Broken A").await;
    let rule = create_rule(&app, &a, vip_rule(&receiver)).await;
    // No chained run: the batch below sends both.
    let db = without_chained_runs(&app);
    db.execute(
        "INSERT INTO alert_deliveries (tenant_id, id, rule_id, event, created_at)
             VALUES (?1, 'msg_0123456789abcdef01234567', ?2, 'no.such.event',
                strftime('%Y-%m-%dT%H:%M:%fZ'))",
        [&a.id, rule["id"].as_str().unwrap()],
    )
    .unwrap();
    app.post_lead(
        &a.capture_token,
        &json!({"email": "v@example.com", "monthly_leads": "500+"}),
    )
    .await;
    let report = run_batch(&app, "").await;
    assert_eq!(
        (&report["delivered"], &report["failed_attempts"]),
        (&json!(1), &json!(1)),
        "{report}"
    );
    assert_eq!(receiver.got().len(), 1);
    let (status, attempts, error, later): (String, i64, String, bool) = app
        .db()
        .query_row(
            "SELECT status, attempts, last_error, next_attempt_at > unixepoch()
             FROM alert_deliveries WHERE id = 'msg_0123456789abcdef01234567'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), attempts, later), ("pending", 1, true));
    assert!(error.starts_with("could not be prepared"), "{error}");
    let counted: i64 = app
        .db()
        .query_row(
            "SELECT n FROM alert_attempts WHERE tenant_id = ?1",
            [&a.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(counted, 2, "both attempts count against the day's limit");
}

#[tokio::test]
async fn a_group_that_crosses_the_daily_limit_sends_up_to_it_and_gives_the_rest_back() {
    let receiver = Receiver::start().await;
    let app = spawn_with(&receiver).await;
    let a = app.create_tenant("Edge A").await;
    let every = json!({"name": "Every lead", "when": {"event": "lead.captured"},
                       "destination": {"url": receiver.url("/hook"), "format": "json"}});
    create_rule(&app, &a, every).await;
    // 198 of the starter plan's 200 attempts are used; no chained run, so one batch takes all
    // three alerts below in one group.
    let db = without_chained_runs(&app);
    db.execute(
        "INSERT INTO alert_attempts (tenant_id, day, n) VALUES (?1, date('now'), 198)",
        [&a.id],
    )
    .unwrap();
    for n in 0..3 {
        app.post_lead(
            &a.capture_token,
            &json!({"email": format!("e{n}@example.com")}),
        )
        .await;
    }
    let report = run_batch(&app, "").await;
    assert_eq!(
        (&report["delivered"], &report["dropped"]),
        (&json!(2), &json!(1)),
        "{report}"
    );
    assert_eq!(receiver.got().len(), 2);
    let list =
        json_body(send(&app, reqwest::Method::GET, "/v1/dashboard/alerts", &a, None).await).await;
    assert_eq!(
        list["deliveries_today"], 200,
        "the dropped one's place is given back"
    );
    let dropped: String = app
        .db()
        .query_row(
            "SELECT last_error FROM alert_deliveries WHERE tenant_id = ? AND status = 'dropped'",
            [&a.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dropped, "daily_limit");
}

#[tokio::test]
async fn one_tenants_backlog_does_not_hold_up_another_tenants_alert() {
    let receiver = Receiver::start().await;
    let app = spawn_with(&receiver).await;
    let (a, b) = (
        app.create_tenant("Backlog A").await,
        app.create_tenant("Backlog B").await,
    );
    let rule_to = |path: &str| {
        json!({"name": "Every lead", "when": {"event": "lead.captured"},
               "destination": {"url": receiver.url(path), "format": "json"}})
    };
    let a_rule = create_rule(&app, &a, rule_to("/a")).await;
    create_rule(&app, &b, rule_to("/b")).await;
    // A has 60 test deliveries due, all older than B's one alert.
    let db = without_chained_runs(&app);
    for n in 0..60 {
        db.execute(
            "INSERT INTO alert_deliveries (tenant_id, id, rule_id, event, created_at)
                 VALUES (?1, printf('msg_%024x', ?3), ?2, 'test',
                    strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour', printf('+%d seconds', ?3)))",
            rusqlite::params![&a.id, a_rule["id"].as_str().unwrap(), n],
        )
        .unwrap();
    }
    app.post_lead(&b.capture_token, &json!({"email": "b@example.com"}))
        .await;
    // Room for 55: a strict oldest-first batch would send A's 55 and leave B waiting.
    let report = run_batch(&app, "?limit=55").await;
    assert_eq!(report["delivered"], 55, "{report}");
    let to_b = receiver.got().iter().filter(|r| r.path == "/b").count();
    assert_eq!(
        to_b, 1,
        "B's alert goes out in the first read, beside A's first 50"
    );
    let a_sent: i64 = db
        .query_row(
            "SELECT count(*) FROM alert_deliveries WHERE tenant_id = ?1 AND status = 'delivered'",
            [&a.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(a_sent, 54);
    let a_oldest_waiting: bool = db
        .query_row(
            "SELECT min(created_at) > (SELECT max(created_at) FROM alert_deliveries
                WHERE tenant_id = ?1 AND status = 'delivered')
             FROM alert_deliveries WHERE tenant_id = ?1 AND status = 'pending'",
            [&a.id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(a_oldest_waiting, "each tenant's oldest go first");
    crate::statements::assert_no_statement_compiled_twice(&app);
}

#[tokio::test]
async fn a_run_that_lost_the_runner_leaves_the_new_holder_alone() {
    let receiver = Receiver::start().await;
    let app = spawn_with(&receiver).await;
    let a = app.create_tenant("Runner A").await;
    create_rule(&app, &a, vip_rule(&receiver)).await;
    app.post_lead(
        &a.capture_token,
        &json!({"email": "v@example.com", "monthly_leads": "500+"}),
    )
    .await;
    assert_eq!(receiver.wait_for(1).await.len(), 1);
    // The chained run that sent it lingers for about a second; meanwhile another run holds the
    // runner, as one does after a stalled run's hold ran out.
    let held_by_the_run: i64 = app
        .db()
        .query_row("SELECT until FROM alert_runner WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        held_by_the_run > 0,
        "the run that sent the alert still holds the runner"
    );
    let db = without_chained_runs(&app);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let until: i64 = db
        .query_row("SELECT until FROM alert_runner WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(until, 9_999_999_999, "a run let go of a hold not its own");
}
