//! `POST /v1/systeme/events`: every fixture in `tests/fixtures/systeme/`, signed with the
//! test secret, with the stage and counter changes each one makes; redeliveries, signatures,
//! the `\/` raw-body case, unknown events and prefixes, and tenants sharing a contact;
//! `SALE_CANCELED` variants and PHP-escaped bodies built with `php_json`.

use api_tests::systeme::php_json;
use api_tests::{
    SYSTEME_WEBHOOK_SECRET, TestApp, TestTenant, assert_problem, json_body, spawn_app_with,
};
use serde_json::{Value, json};

/// The prefixes the fixtures were written with.
const FIXTURE_A: &str = "ib-a7x3k2m1-";
const FIXTURE_B: &str = "ib-b9z5n4p8-";

/// A fixture's raw bytes with the fixture prefixes swapped for the test tenants' (the `\/`
/// escapes and everything else stay byte for byte).
fn fixture(name: &str, a: &TestTenant, b: &TestTenant) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/systeme")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace(FIXTURE_A, &a.tag_prefix)
        .replace(FIXTURE_B, &b.tag_prefix)
}

fn sign(body: &str) -> String {
    let secret = domain::secret::SystemeSecret::parse(SYSTEME_WEBHOOK_SECRET).unwrap();
    domain::signature::sign_systeme(&secret, body.as_bytes())
}

async fn post_event(app: &TestApp, event: &str, message_id: &str, body: &str) -> reqwest::Response {
    send_event(app, event, message_id, body, Some(&sign(body))).await
}

async fn send_event(
    app: &TestApp,
    event: &str,
    message_id: &str,
    body: &str,
    signature: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/v1/systeme/events"))
        .header("content-type", "application/json")
        .header("user-agent", "SystemeIO-Webhook")
        .header("x-webhook-event", event)
        .header("x-webhook-message-id", message_id)
        .header("x-webhook-schema-version", "1")
        .header("x-webhook-event-timestamp", "2026-11-22T09:14:02+00:00")
        .header("x-webhook-delivery-attempt-id", format!("att-{message_id}"))
        .header(
            "x-webhook-delivery-attempt-timestamp",
            "2026-11-22T09:14:03+00:00",
        )
        .header("x-webhook-subscription-id", "4417")
        .body(body.to_string());
    if let Some(sig) = signature {
        req = req.header("x-webhook-signature", sig);
    }
    req.send().await.unwrap()
}

async fn expect_status(resp: reqwest::Response, status: &str) {
    assert_eq!(resp.status(), 200);
    assert_eq!(json_body(resp).await["status"], status);
}

/// A lead's funnel columns.
fn funnel(app: &TestApp, tenant: &str, email: &str) -> Option<Value> {
    let conn = app.db();
    conn.query_row(
        "SELECT json_object('stage', stage, 'sent', emails_sent, 'opened', emails_opened,
            'clicked', emails_clicked, 'converted', converted, 'sales', sales, 'revenue', revenue_cents,
            'opted_in', opted_in, 'source', source, 'contact', systeme_contact_id, 'tags', json(tags))
         FROM leads WHERE tenant_id = ? AND email = ?",
        [tenant, email],
        |r| r.get::<_, String>(0),
    )
    .ok()
    .map(|s| serde_json::from_str(&s).unwrap())
}

/// Sums of a tenant's daily rollups.
fn rollup(app: &TestApp, tenant: &str) -> Value {
    let s: String = app
        .db()
        .query_row(
            "SELECT json_object('leads', COALESCE(SUM(leads), 0), 'sent', COALESCE(SUM(emails_sent), 0),
                'opened', COALESCE(SUM(emails_opened), 0), 'clicked', COALESCE(SUM(emails_clicked), 0),
                'conversions', COALESCE(SUM(conversions), 0), 'revenue', COALESCE(SUM(revenue_cents), 0))
             FROM daily_rollups WHERE tenant_id = ?",
            [tenant],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&s).unwrap()
}

fn timeline(app: &TestApp, tenant: &str, email: &str) -> Vec<String> {
    let conn = app.db();
    let mut stmt = conn
        .prepare(
            // The first entry lives in the lead's row (migration 0013), the rest in lead_events.
            "SELECT kind FROM (
                SELECT 0 AS id, CASE source WHEN 'systeme' THEN 'systeme_contact' ELSE 'captured' END AS kind
                FROM leads WHERE tenant_id = ?1 AND email = ?2 AND first_event IS NOT NULL
                UNION ALL
                SELECT e.id, e.kind FROM lead_events e JOIN leads l ON l.id = e.lead_id
                WHERE l.tenant_id = ?1 AND l.email = ?2)
             ORDER BY id",
        )
        .unwrap();
    stmt.query_map([tenant, email], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// An app with syncing off, so leads carry no Systeme.io contact id until a callback links one.
/// Assigns a Systeme.io funnel to the tenant (the operator's `PATCH /v1/admin/tenants/:id`).
async fn register_funnel(app: &TestApp, t: &TestTenant, funnel: i64) {
    let resp = app
        .client
        .patch(app.url(&format!("/v1/admin/tenants/{}", t.id)))
        .bearer_auth(api_tests::admin_token())
        .json(&json!({ "funnel_ids": [funnel] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn app_and_tenants() -> (api_tests::SpawnedApp, TestTenant, TestTenant) {
    let app = spawn_app_with(|spec| spec.with_env("SPIN_VARIABLE_SYSTEME_API_KEY", "")).await;
    let a = app.create_tenant("Events A").await;
    let b = app.create_tenant("Events B").await;
    (app, a, b)
}

#[tokio::test]
async fn every_fixture_moves_stages_and_counters_for_its_own_tenants_only() {
    let (app, a, b) = app_and_tenants().await;
    let pa = &a.tag_prefix;
    let pb = &b.tag_prefix;
    let resp = app
        .post_lead(
            &a.capture_token,
            &json!({"email": "trader1@example.com", "ib_type": "forex-ib"}),
        )
        .await;
    assert_eq!(resp.status(), 201);

    // CONTACT_CREATED with tags of both tenants: A's lead is linked; B learns of a contact it
    // did not capture, which becomes B's lead with source `systeme` and only B's tag.
    let body = fixture("contact_created.json", &a, &b);
    expect_status(
        post_event(&app, "CONTACT_CREATED", "msg-created", &body).await,
        "applied",
    )
    .await;
    let fa = funnel(&app, &a.id, "trader1@example.com").unwrap();
    assert_eq!(
        (
            fa["contact"].as_i64(),
            fa["stage"].as_str(),
            fa["source"].as_str()
        ),
        (Some(480_113), Some("new"), Some("capture"))
    );
    let fb = funnel(&app, &b.id, "trader1@example.com").expect("B's lead from Systeme.io");
    assert_eq!(fb["source"], "systeme");
    assert_eq!(fb["tags"], json!([format!("{pb}demo-request")]));
    assert_eq!(fb["contact"], 480_113);

    // CONTACT_OPT_IN of trader2, tagged by B only: B's lead, opted in, nurturing; A untouched.
    let body = fixture("contact_opt_in.json", &a, &b);
    expect_status(
        post_event(&app, "CONTACT_OPT_IN", "msg-optin", &body).await,
        "applied",
    )
    .await;
    let f2 = funnel(&app, &b.id, "trader2@example.com").unwrap();
    assert_eq!(
        (f2["opted_in"].as_i64(), f2["stage"].as_str()),
        (Some(1), Some("nurturing"))
    );
    assert!(funnel(&app, &a.id, "trader2@example.com").is_none());
    let utm: String = app
        .db()
        .query_row("SELECT utm_source || '/' || utm_campaign FROM leads WHERE tenant_id = ? AND email = 'trader2@example.com'", [&b.id], |r| r.get(0))
        .unwrap();
    assert_eq!(
        utm, "google/crypto-q4",
        "attribution from the opt-in's sourceURL"
    );

    // CONTACT_TAG_ADDED `engaged` (an open) for A.
    let body = fixture("contact_tag_added.json", &a, &b);
    expect_status(
        post_event(&app, "CONTACT_TAG_ADDED", "msg-engaged", &body).await,
        "applied",
    )
    .await;
    let fa = funnel(&app, &a.id, "trader1@example.com").unwrap();
    assert_eq!(
        (fa["stage"].as_str(), fa["opened"].as_i64()),
        (Some("engaged"), Some(1))
    );

    // The double-nested form: `converted` for A.
    let body = fixture("contact_tag_added_nested.json", &a, &b);
    expect_status(
        post_event(&app, "CONTACT_TAG_ADDED", "msg-converted", &body).await,
        "applied",
    )
    .await;
    let fa = funnel(&app, &a.id, "trader1@example.com").unwrap();
    assert_eq!(
        (fa["stage"].as_str(), fa["converted"].as_i64()),
        (Some("converted"), Some(1))
    );

    // CONTACT_TAG_REMOVED `forex-ib`: the tag goes, the stage stays.
    let body = fixture("contact_tag_removed.json", &a, &b);
    expect_status(
        post_event(&app, "CONTACT_TAG_REMOVED", "msg-removed", &body).await,
        "applied",
    )
    .await;
    let fa = funnel(&app, &a.id, "trader1@example.com").unwrap();
    assert_eq!(fa["stage"], "converted");
    assert_eq!(
        fa["tags"],
        json!([
            format!("{pa}converted"),
            format!("{pa}demo-request"),
            format!("{pa}engaged")
        ])
    );

    // SALE_NEW for contact 480113, whom both tenants hold: the sale belongs to the tenant that
    // registered its funnel (801), and to no other (docs/contract.md §9 "Threat model").
    register_funnel(&app, &a, 801).await;
    let body = fixture("sale_new.json", &a, &b);
    expect_status(
        post_event(&app, "SALE_NEW", "msg-sale", &body).await,
        "applied",
    )
    .await;
    let fa = funnel(&app, &a.id, "trader1@example.com").unwrap();
    assert_eq!(
        (
            fa["sales"].as_i64(),
            fa["revenue"].as_i64(),
            fa["stage"].as_str()
        ),
        (Some(1), Some(19_900), Some("converted"))
    );
    let fb = funnel(&app, &b.id, "trader1@example.com").unwrap();
    assert_eq!(
        (fb["sales"].as_i64(), fb["revenue"].as_i64()),
        (Some(0), Some(0)),
        "B holds the buyer too, but the funnel is A's"
    );
    // A second sale means retained.
    let second = body.replace("77001", "77002");
    expect_status(
        post_event(&app, "SALE_NEW", "msg-sale-2", &second).await,
        "applied",
    )
    .await;
    assert_eq!(
        funnel(&app, &a.id, "trader1@example.com").unwrap()["stage"],
        "retained"
    );

    // SALE_CANCELED subtracts its revenue; the stage never goes back.
    let body = fixture("sale_canceled.json", &a, &b);
    expect_status(
        post_event(&app, "SALE_CANCELED", "msg-cancel", &body).await,
        "applied",
    )
    .await;
    let fa = funnel(&app, &a.id, "trader1@example.com").unwrap();
    assert_eq!(
        (fa["revenue"].as_i64(), fa["stage"].as_str()),
        (Some(19_900), Some("retained"))
    );

    // The day's rollups carry exactly these counts.
    assert_eq!(
        rollup(&app, &a.id),
        json!({"leads": 1, "sent": 0, "opened": 1, "clicked": 0, "conversions": 1, "revenue": 19_900})
    );
    assert_eq!(
        rollup(&app, &b.id),
        json!({"leads": 2, "sent": 0, "opened": 0, "clicked": 0, "conversions": 0, "revenue": 0})
    );
    assert_eq!(
        timeline(&app, &a.id, "trader1@example.com"),
        [
            "captured",
            "contact_created",
            "tag_added",
            "tag_added",
            "tag_removed",
            "sale",
            "sale",
            "sale_canceled"
        ]
    );
    assert_eq!(
        timeline(&app, &b.id, "trader1@example.com"),
        ["systeme_contact", "contact_created"]
    );
}

#[tokio::test]
async fn email_tags_count_sends_opens_and_clicks_and_tenant_rules_override() {
    let (app, a, b) = app_and_tenants().await;
    app.post_lead(&a.capture_token, &json!({"email": "trader1@example.com"}))
        .await;
    let base = fixture("contact_tag_added.json", &a, &b);
    let pa = a.tag_prefix.clone();
    let with_tag = |suffix: &str| base.replace(&format!("{pa}engaged"), &format!("{pa}{suffix}"));
    for (i, suffix) in [
        "email-sent",
        "email-welcome-2",
        "email-opened",
        "email-clicked",
        "webinar-live",
    ]
    .iter()
    .enumerate()
    {
        let resp = post_event(
            &app,
            "CONTACT_TAG_ADDED",
            &format!("msg-{i}"),
            &with_tag(suffix),
        )
        .await;
        assert_eq!(resp.status(), 200);
    }
    let f = funnel(&app, &a.id, "trader1@example.com").unwrap();
    assert_eq!(
        (
            f["sent"].as_i64(),
            f["opened"].as_i64(),
            f["clicked"].as_i64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(f["stage"], "engaged");

    // A tenant rule: webinar tags count as clicks, and plain sends are switched off.
    let put = app
        .client
        .put(app.url("/v1/dashboard/settings"))
        .bearer_auth(a.dashboard_token())
        .json(&json!({"tag_rules": {"webinar-*": "email_clicked", "email-sent": "ignore"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(
        json_body(put).await["tag_rules"]["webinar-*"],
        "email_clicked"
    );
    post_event(
        &app,
        "CONTACT_TAG_ADDED",
        "msg-webinar-2",
        &with_tag("webinar-replay"),
    )
    .await;
    post_event(
        &app,
        "CONTACT_TAG_ADDED",
        "msg-sent-2",
        &with_tag("email-sent"),
    )
    .await;
    let f = funnel(&app, &a.id, "trader1@example.com").unwrap();
    assert_eq!(
        (f["sent"].as_i64(), f["clicked"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(rollup(&app, &a.id)["clicked"], 2);
}

#[tokio::test]
async fn a_redelivered_message_changes_nothing() {
    let (app, a, b) = app_and_tenants().await;
    app.post_lead(&a.capture_token, &json!({"email": "trader1@example.com"}))
        .await;
    let body = fixture("contact_tag_added.json", &a, &b);
    expect_status(
        post_event(&app, "CONTACT_TAG_ADDED", "msg-once", &body).await,
        "applied",
    )
    .await;
    let before = (
        funnel(&app, &a.id, "trader1@example.com"),
        rollup(&app, &a.id),
    );
    for _ in 0..3 {
        expect_status(
            post_event(&app, "CONTACT_TAG_ADDED", "msg-once", &body).await,
            "duplicate",
        )
        .await;
    }
    assert_eq!(
        (
            funnel(&app, &a.id, "trader1@example.com"),
            rollup(&app, &a.id)
        ),
        before
    );
    assert_eq!(timeline(&app, &a.id, "trader1@example.com").len(), 2);
}

#[tokio::test]
async fn concurrent_redeliveries_apply_once() {
    let (app, a, b) = app_and_tenants().await;
    app.post_lead(&a.capture_token, &json!({"email": "trader1@example.com"}))
        .await;
    let body = fixture("contact_tag_added.json", &a, &b);
    let sends = (0..8).map(|_| post_event(&app, "CONTACT_TAG_ADDED", "msg-race", &body));
    for resp in futures::future::join_all(sends).await {
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(
        funnel(&app, &a.id, "trader1@example.com").unwrap()["opened"],
        1
    );
}

/// Distinct callbacks racing on one lead: each reads the lead, and its write is refused when
/// another changed the lead meanwhile (the `event_seq` check in migration 0012's trigger), then
/// applied again on the fresh state. None is lost and none counts twice.
#[tokio::test]
async fn concurrent_distinct_callbacks_on_one_lead_each_count_once() {
    let (app, a, b) = app_and_tenants().await;
    app.post_lead(&a.capture_token, &json!({"email": "trader1@example.com"}))
        .await;
    let base = fixture("contact_tag_added.json", &a, &b);
    let pa = a.tag_prefix.clone();
    let n = 12;
    // Each adds a tag of its own that counts an email sent (`email-*`): a tag the lead already
    // holds would change nothing.
    let bodies: Vec<String> = (0..n)
        .map(|i| base.replace(&format!("{pa}engaged"), &format!("{pa}email-race-{i}")))
        .collect();
    let ids: Vec<String> = (0..n).map(|i| format!("race-{i}")).collect();
    let sends = bodies
        .iter()
        .zip(&ids)
        .map(|(body, id)| post_event(&app, "CONTACT_TAG_ADDED", id, body));
    for resp in futures::future::join_all(sends).await {
        expect_status(resp, "applied").await;
    }
    let f = funnel(&app, &a.id, "trader1@example.com").unwrap();
    assert_eq!(f["sent"], n);
    assert_eq!(rollup(&app, &a.id)["sent"], n);
    assert_eq!(
        timeline(&app, &a.id, "trader1@example.com").len(),
        n + 1,
        "captured, then one entry per callback"
    );
}

#[tokio::test]
async fn signatures_are_checked_on_the_raw_body() {
    let (app, a, b) = app_and_tenants().await;
    let raw = fixture("contact_opt_in.json", &a, &b);
    assert!(
        raw.contains(r"https:\/\/"),
        "the fixture keeps PHP's escaped slashes"
    );
    let missing = send_event(&app, "CONTACT_OPT_IN", "msg-1", &raw, None).await;
    assert_problem(missing, 401, "signature_missing").await;
    let wrong = send_event(&app, "CONTACT_OPT_IN", "msg-1", &raw, Some(&"0".repeat(64))).await;
    assert_problem(wrong, 401, "signature_invalid").await;
    // The same JSON re-serialised (`/` unescaped) no longer matches the signature of the raw bytes.
    let reserialised =
        serde_json::to_string(&serde_json::from_str::<Value>(&raw).unwrap()).unwrap();
    assert_ne!(reserialised, raw);
    let resp = send_event(
        &app,
        "CONTACT_OPT_IN",
        "msg-1",
        &reserialised,
        Some(&sign(&raw)),
    )
    .await;
    assert_problem(resp, 401, "signature_invalid").await;
    assert!(
        funnel(&app, &b.id, "trader2@example.com").is_none(),
        "nothing applied"
    );
    // The raw bytes, as signed, are applied.
    expect_status(
        post_event(&app, "CONTACT_OPT_IN", "msg-1", &raw).await,
        "applied",
    )
    .await;
    assert!(funnel(&app, &b.id, "trader2@example.com").is_some());
}

#[tokio::test]
async fn bad_requests_are_refused_and_unknown_things_acknowledged() {
    let (app, a, b) = app_and_tenants().await;
    let body = fixture("contact_tag_added.json", &a, &b);
    let no_id = app
        .client
        .post(app.url("/v1/systeme/events"))
        .header("x-webhook-event", "CONTACT_TAG_ADDED")
        .header("x-webhook-signature", sign(&body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_problem(no_id, 400, "message_id_missing").await;
    assert_problem(
        post_event(&app, "CONTACT_TAG_ADDED", "m-bad", "not json").await,
        400,
        "invalid_event",
    )
    .await;
    let get = app
        .client
        .get(app.url("/v1/systeme/events"))
        .send()
        .await
        .unwrap();
    assert_problem(get, 405, "method_not_allowed").await;

    // An event we do not handle: acknowledged, ignored, logged.
    let unknown = post_event(&app, "FUNNEL_STEP_VIEWED", "m-unknown", &body).await;
    expect_status(unknown, "ignored").await;
    assert!(app.stderr().contains("FUNNEL_STEP_VIEWED"), "logged");

    // A tag whose prefix no tenant owns.
    let stranger = body.replace(&a.tag_prefix, "ib-zzzzzzzz-");
    expect_status(
        post_event(&app, "CONTACT_TAG_ADDED", "m-stranger", &stranger).await,
        "ignored",
    )
    .await;
    let leads: i64 = app
        .db()
        .query_row("SELECT COUNT(*) FROM leads", [], |r| r.get(0))
        .unwrap();
    assert_eq!(leads, 0);
}

#[tokio::test]
async fn a_tag_of_tenant_b_on_tenant_as_lead_leaves_a_untouched() {
    let (app, a, b) = app_and_tenants().await;
    app.post_lead(&a.capture_token, &json!({"email": "trader1@example.com"}))
        .await;
    // Link A's lead to the contact first.
    let created = fixture("contact_created.json", &a, &b);
    post_event(&app, "CONTACT_CREATED", "m-created", &created).await;
    let a_before = (
        funnel(&app, &a.id, "trader1@example.com"),
        rollup(&app, &a.id),
        timeline(&app, &a.id, "trader1@example.com"),
    );

    // B's automation tags the same contact `converted`.
    let nested = fixture("contact_tag_added_nested.json", &a, &b).replace(
        &format!("{}converted", a.tag_prefix),
        &format!("{}converted", b.tag_prefix),
    );
    expect_status(
        post_event(&app, "CONTACT_TAG_ADDED", "m-b-converted", &nested).await,
        "applied",
    )
    .await;
    assert_eq!(
        (
            funnel(&app, &a.id, "trader1@example.com"),
            rollup(&app, &a.id),
            timeline(&app, &a.id, "trader1@example.com")
        ),
        a_before,
        "A is untouched"
    );
    let fb = funnel(&app, &b.id, "trader1@example.com").unwrap();
    assert_eq!(
        (fb["stage"].as_str(), fb["converted"].as_i64()),
        (Some("converted"), Some(1))
    );
    assert!(
        fb["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.as_str().unwrap().starts_with(&b.tag_prefix)),
        "{fb}"
    );
}

#[tokio::test]
async fn sale_canceled_variants_reverse_the_sale_they_name_or_are_ignored() {
    let (app, a, b) = app_and_tenants().await;
    // Only A holds the buyer (matched by email), so every sale is A's.
    app.post_lead(&a.capture_token, &json!({"email": "trader1@example.com"}))
        .await;
    let sale = fixture("sale_new.json", &a, &b);
    expect_status(
        post_event(&app, "SALE_NEW", "m-sale-1", &sale).await,
        "applied",
    )
    .await;
    let second = sale.replace("77001", "77002").replace("19900", "5000");
    expect_status(
        post_event(&app, "SALE_NEW", "m-sale-2", &second).await,
        "applied",
    )
    .await;
    let money = |app: &TestApp| {
        let f = funnel(app, &a.id, "trader1@example.com").unwrap();
        (f["sales"].as_i64(), f["revenue"].as_i64())
    };
    assert_eq!(money(&app), (Some(2), Some(24_900)));

    // No amount at all: it reverses the sale recorded for its order (77002, 50.00).
    let no_amount = fixture("sale_canceled_no_amount.json", &a, &b);
    assert!(!no_amount.contains("totalPrice") && !no_amount.contains("\"amount\""));
    expect_status(
        post_event(&app, "SALE_CANCELED", "m-cancel-1", &no_amount).await,
        "applied",
    )
    .await;
    assert_eq!(money(&app), (Some(1), Some(19_900)));
    assert_eq!(rollup(&app, &a.id)["revenue"], 19_900);
    // The same cancellation again, redelivered with another timestamp: already reversed.
    let again = no_amount.replace("2026-11-22T08:00:00", "2026-11-22T09:30:00");
    assert_ne!(again, no_amount);
    expect_status(
        post_event(&app, "SALE_CANCELED", "m-cancel-1-again", &again).await,
        "duplicate",
    )
    .await;
    assert_eq!(money(&app), (Some(1), Some(19_900)));

    // Wrapped in `sale`, with fields nobody knows: reverses order 77001.
    let wrapped = fixture("sale_canceled_wrapped.json", &a, &b);
    expect_status(
        post_event(&app, "SALE_CANCELED", "m-cancel-2", &wrapped).await,
        "applied",
    )
    .await;
    assert_eq!(money(&app), (Some(0), Some(0)));
    assert_eq!(rollup(&app, &a.id)["revenue"], 0);
    assert_eq!(
        rollup(&app, &b.id)["revenue"],
        0,
        "B holds no buyer: untouched"
    );

    // No amount for an order never recorded: acknowledged; the cancellation is recorded (so
    // the order's sale, should it come later, is not counted) and no figure changes.
    let unknown = no_amount.replace("77002", "99999");
    let before = (
        funnel(&app, &a.id, "trader1@example.com"),
        rollup(&app, &a.id),
        timeline(&app, &a.id, "trader1@example.com"),
    );
    expect_status(
        post_event(&app, "SALE_CANCELED", "m-cancel-unknown", &unknown).await,
        "applied",
    )
    .await;
    assert_eq!(
        (
            funnel(&app, &a.id, "trader1@example.com"),
            rollup(&app, &a.id),
        ),
        (before.0, before.1.clone())
    );
    assert_eq!(
        timeline(&app, &a.id, "trader1@example.com"),
        [
            "captured",
            "sale",
            "sale",
            "sale_canceled",
            "sale_canceled",
            "sale_canceled"
        ]
    );
    let late_sale = fixture("sale_new.json", &a, &b).replace("77001", "99999");
    expect_status(
        post_event(&app, "SALE_NEW", "m-late-sale", &late_sale).await,
        "duplicate",
    )
    .await;
    assert_eq!(rollup(&app, &a.id), before.1);
}

#[tokio::test]
async fn php_escaped_bodies_are_verified_raw_and_read_unescaped() {
    let (app, a, _b) = app_and_tenants().await;
    let body = php_json(&json!({
        "contact": {
            "id": 480_200,
            "email": "zoe@example.com",
            "registeredAt": "2026-11-22T09:14:02+00:00",
            "sourceURL": "https://lp.example.com/fr/forex?utm_source=newsletter&utm_campaign=\u{e9}t\u{e9}",
            "fields": [
                {"fieldName": "Pr\u{e9}nom", "slug": "first_name", "value": "Zo\u{eb}"},
                {"fieldName": "Nom", "slug": "surname", "value": "\u{c5}ngstr\u{f6}m"}
            ],
            "tags": [{"id": 9301, "name": format!("{}demo-request", a.tag_prefix)}],
            "score": 0.0,
            "somethingNew": {"weights": [1.0, 2.5]}
        }
    }));
    assert!(
        body.contains(r"https:\/\/lp.example.com\/fr\/forex"),
        "{body}"
    );
    assert!(body.contains(r"Zo\u00eb") && body.contains("0.0"), "{body}");
    expect_status(
        post_event(&app, "CONTACT_OPT_IN", "m-php", &body).await,
        "applied",
    )
    .await;
    let (name, page_url, campaign): (String, String, String) = app
        .db()
        .query_row(
            "SELECT name, page_url, utm_campaign FROM leads WHERE tenant_id = ? AND email = 'zoe@example.com'",
            [&a.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(name, "Zo\u{eb} \u{c5}ngstr\u{f6}m");
    // Stored as a form post's page URL is: parsed and written back, percent-encoded.
    assert_eq!(
        page_url,
        "https://lp.example.com/fr/forex?utm_source=newsletter&utm_campaign=%C3%A9t%C3%A9"
    );
    assert_eq!(campaign, "\u{e9}t\u{e9}");
    // The unescaped form of the same body is not what was signed.
    let plain = serde_json::to_string(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
    assert_ne!(plain, body);
    let resp = send_event(
        &app,
        "CONTACT_OPT_IN",
        "m-php-2",
        &plain,
        Some(&sign(&body)),
    )
    .await;
    assert_problem(resp, 401, "signature_invalid").await;
}
