//! Storage faults, injected by the local host (`CFE_FAULT_SQLITE`, `CFE_FAULT_KV`): transient
//! failures are retried within the budget and never lose or double an acknowledged write;
//! what cannot be done is `503 storage_unavailable` with `Retry-After`, and nothing is
//! half-written. Fault injection exists only in the local host, so these tests are skipped
//! under real Spin.

use std::time::{Duration, Instant};

use api_tests::{SpawnedApp, TestApp, TestTenant, assert_problem, json_body, spawn_app_with};
use futures::future::join_all;
use serde_json::json;

/// Restarts the app on the same state with these fault rules (`None` turns faults off).
async fn with_faults(app: TestApp, sqlite: Option<&str>, kv: Option<&str>) -> TestApp {
    let (sqlite, kv) = (sqlite.map(String::from), kv.map(String::from));
    tokio::task::spawn_blocking(move || {
        app.restart_with(|spec| {
            let spec = match sqlite {
                Some(rule) => spec.with_env("CFE_FAULT_SQLITE", &rule),
                None => spec.without_env("CFE_FAULT_SQLITE"),
            };
            match kv {
                Some(rule) => spec.with_env("CFE_FAULT_KV", &rule),
                None => spec.without_env("CFE_FAULT_KV"),
            }
        })
    })
    .await
    .unwrap()
}

/// The app with `tenants` tenants created while storage was healthy, or `None` under real
/// Spin (which has no fault injection).
async fn app_with_tenants(names: &[&str]) -> Option<(TestApp, Vec<TestTenant>)> {
    // Syncing off (no outbound calls to wait on); no rate limit in the way of a burst.
    let SpawnedApp { app, .. } = spawn_app_with(|spec| {
        spec.with_env("SPIN_VARIABLE_SYSTEME_API_KEY", "")
            .with_env("SPIN_VARIABLE_CAPTURE_RATE_LIMIT", "100000")
    })
    .await;
    if app.host.is_real_spin() {
        return None;
    }
    let mut tenants = Vec::new();
    for name in names {
        tenants.push(app.create_tenant(name).await);
    }
    Some((app, tenants))
}

async fn capture(app: &TestApp, token: &str, email: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/leads"))
        .bearer_auth(token)
        .json(&json!({"email": email, "ib_type": "forex-ib", "utm_source": "faults"}))
        .send()
        .await
        .unwrap()
}

async fn tag_event(app: &TestApp, message_id: &str, email: &str, tag: &str) -> reqwest::Response {
    let body = json!({
        "contact": {"email": email, "tags": [{"id": 1, "name": tag}]},
        "tag": {"id": 1, "name": tag}
    })
    .to_string();
    app.post_systeme_event("CONTACT_TAG_ADDED", message_id, &body)
        .await
}

fn count(app: &TestApp, sql: &str, param: &str) -> i64 {
    app.db().query_row(sql, [param], |r| r.get(0)).unwrap()
}

/// No connection was left holding the write lock: a writer gets it at once.
fn assert_no_open_transaction(app: &TestApp) {
    let conn = app.db_rw();
    conn.busy_timeout(Duration::ZERO).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
        .expect("a transaction was left open after the burst");
}

#[tokio::test]
async fn a_capture_burst_under_ten_percent_faults_is_all_2xx_and_stored_exactly_once() {
    let Some((app, tenants)) = app_with_tenants(&["Faulty Ib"]).await else {
        return;
    };
    let tenant = &tenants[0];
    let app = with_faults(app, Some("busy:0.1"), Some("io:0.1")).await;
    let emails: Vec<String> = (0..64).map(|i| format!("burst{i}@example.com")).collect();
    for round in emails.chunks(16) {
        let answers = join_all(
            round
                .iter()
                .map(|e| capture(&app, &tenant.capture_token, e)),
        )
        .await;
        for resp in answers {
            assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
        }
    }
    assert!(
        app.stderr().contains("retrying"),
        "no fault was injected and retried; the test proves nothing"
    );
    let app = with_faults(app, None, None).await;
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM leads WHERE tenant_id = ?",
            &tenant.id
        ),
        64
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(DISTINCT email) FROM leads WHERE tenant_id = ?",
            &tenant.id
        ),
        64
    );
    assert_eq!(
        count(
            &app,
            "SELECT lead_count FROM tenants WHERE id = ?",
            &tenant.id
        ),
        64
    );
    assert_eq!(
        count(
            &app,
            "SELECT SUM(leads) FROM daily_rollups WHERE tenant_id = ?",
            &tenant.id
        ),
        64
    );
    let stats = json_body(
        app.client
            .get(app.url("/v1/dashboard/stats"))
            .bearer_auth(tenant.dashboard_token())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stats["leads"]["total"], 64);
    assert_eq!(stats["stages"]["new"], 64);
    assert_no_open_transaction(&app);
}

#[tokio::test]
async fn callbacks_and_signups_under_ten_percent_faults_apply_exactly_once() {
    let Some((app, tenants)) = app_with_tenants(&["Callback Ib"]).await else {
        return;
    };
    let tenant = &tenants[0];
    let emails: Vec<String> = (0..8).map(|i| format!("opener{i}@example.com")).collect();
    for email in &emails {
        assert_eq!(
            capture(&app, &tenant.capture_token, email).await.status(),
            201
        );
    }
    let app = with_faults(app, Some("busy:0.1"), Some("io:0.1")).await;
    // Two opens per lead (two tags the default rules count as opens, so two different
    // bodies), 16 at once, each message sent twice (a redelivery).
    let opens = [
        format!("{}email-opened", tenant.tag_prefix),
        format!("{}engaged", tenant.tag_prefix),
    ];
    let opens = &opens;
    let sends = emails.iter().flat_map(|email| {
        (0..2).flat_map(move |n| {
            let id = format!("open-{email}-{n}");
            [(id.clone(), email.clone(), n), (id, email.clone(), n)]
        })
    });
    let sends: Vec<(String, String, usize)> = sends.collect();
    for round in sends.chunks(16) {
        let answers = join_all(
            round
                .iter()
                .map(|(id, email, n)| tag_event(&app, id, email, &opens[*n])),
        )
        .await;
        for resp in answers {
            assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        }
    }
    let signups = (0..8).map(|i| {
        let body = json!({"name": format!("Late {i}"), "email": format!("late{i}@ib.example.com")})
            .to_string();
        let app = &app;
        async move { app.post_signup(&format!("msg_late_{i}"), &body).await }
    });
    for resp in join_all(signups).await {
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    }
    let app = with_faults(app, None, None).await;
    for email in &emails {
        let opened: i64 = app
            .db()
            .query_row(
                "SELECT emails_opened FROM leads WHERE tenant_id = ? AND email = ?",
                [&tenant.id, email],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(opened, 2, "{email}: each message counts once");
    }
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM applied_events WHERE tenant_id = ?",
            &tenant.id
        ),
        16
    );
    assert_eq!(
        count(
            &app,
            "SELECT SUM(emails_opened) FROM daily_rollups WHERE tenant_id = ?",
            &tenant.id
        ),
        16
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM tenants WHERE email LIKE ?",
            "late%"
        ),
        8
    );
    assert_no_open_transaction(&app);
}

#[tokio::test]
async fn when_storage_stays_down_every_answer_is_503_in_time_and_nothing_is_half_written() {
    let Some((app, tenants)) = app_with_tenants(&["Down Ib"]).await else {
        return;
    };
    let tenant = &tenants[0];
    assert_eq!(
        capture(&app, &tenant.capture_token, "before@example.com")
            .await
            .status(),
        201
    );
    let app = with_faults(app, Some("busy:1"), Some("io:1")).await;
    let opened = format!("{}email-opened", tenant.tag_prefix);
    let started = Instant::now();
    let app_ref = &app;
    let opened = &opened;
    let token = &tenant.capture_token;
    let answers = join_all((0..4).map(|i| async move {
        let body =
            json!({"name": format!("Outage {i}"), "email": format!("outage{i}@ib.example.com")})
                .to_string();
        let (email, message, webhook) = (
            format!("down{i}@example.com"),
            format!("down-{i}"),
            format!("msg_down_{i}"),
        );
        let (a, b, c) = futures::join!(
            capture(app_ref, token, &email),
            tag_event(app_ref, &message, "before@example.com", opened),
            app_ref.post_signup(&webhook, &body),
        );
        [a, b, c]
    }))
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(4_000),
        "the 503s took {elapsed:?}; the retry budget is 2 s"
    );
    let answers: Vec<reqwest::Response> = answers.into_iter().flatten().collect();
    assert_eq!(answers.len(), 12);
    for resp in answers {
        assert_eq!(resp.headers()["retry-after"], "2");
        assert_problem(resp, 503, "storage_unavailable").await;
    }
    let app = with_faults(app, None, None).await;
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM leads WHERE tenant_id = ?",
            &tenant.id
        ),
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM applied_events WHERE tenant_id = ?",
            &tenant.id
        ),
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM tenants WHERE email LIKE ?",
            "outage%"
        ),
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT emails_opened FROM leads WHERE tenant_id = ?",
            &tenant.id
        ),
        0
    );
    assert_no_open_transaction(&app);
    // And it recovers without a restart of anything but the fault switch.
    assert_eq!(
        capture(&app, &tenant.capture_token, "after@example.com")
            .await
            .status(),
        201
    );
}
