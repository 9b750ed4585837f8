//! What the public capture key and Systeme.io's callbacks cannot do to the one Systeme.io
//! account every tenant shares, or to a tenant's figures (docs/contract.md §9 "Threat model"): an order is
//! one sale forever, a callback's unsigned event name must agree with its signed body, each
//! tenant spends the account within its budgets, the rate limit counts the real client, and a
//! contact Systeme.io creates follows the form's field rules.

use api_tests::systeme::Mode;
use api_tests::{
    SpawnedApp, TestTenant, admin_token, assert_problem, json_body, spawn_app, spawn_app_with,
    within_one_rate_window,
};
use serde_json::{Value, json};

async fn stats(app: &SpawnedApp, t: &TestTenant) -> Value {
    json_body(
        app.client
            .get(app.url("/v1/dashboard/stats"))
            .bearer_auth(t.dashboard_token())
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn lead_view(app: &SpawnedApp, t: &TestTenant, id: &str) -> Value {
    json_body(
        app.client
            .get(app.url(&format!("/v1/dashboard/leads/{id}")))
            .bearer_auth(t.dashboard_token())
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn status_of(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = json_body(resp).await;
    assert_eq!(status, 200, "{body}");
    body["status"].as_str().unwrap().to_string()
}

/// A `SALE_NEW` (or `SALE_CANCELED`) body for `order`, bought by `email` from `ip`.
fn sale(email: &str, order: i64, ip: &str) -> String {
    json!({
        "customer": {"email": email, "clientIp": ip},
        "order": {"id": order, "totalPrice": 19_900},
        "pricePlan": {"amount": 19_900, "currency": "eur"}
    })
    .to_string()
}

async fn capture(app: &SpawnedApp, t: &TestTenant, email: &str) -> String {
    let resp = app
        .post_lead(&t.capture_token, &json!({"email": email}))
        .await;
    assert_eq!(resp.status(), 201);
    json_body(resp).await["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_order_is_one_sale_forever_and_its_cancellation_is_final() {
    let app = spawn_app().await;
    let t = app.create_tenant("Order Ib").await;
    let buyer = "buyer@example.com";
    capture(&app, &t, buyer).await;
    let first = sale(buyer, 77_001, "203.0.113.7");
    assert_eq!(
        status_of(app.post_systeme_event("SALE_NEW", "s-1", &first).await).await,
        "applied"
    );
    // Systeme.io delivers the same order again with a body that differs.
    let other_copy = sale(buyer, 77_001, "198.51.100.20");
    assert_eq!(
        status_of(app.post_systeme_event("SALE_NEW", "s-2", &other_copy).await).await,
        "duplicate"
    );
    // The first body replayed long after: its applied record has aged past a day and the
    // sync batch's housekeeping has run.
    app.db_rw()
        .execute(
            "UPDATE applied_events SET applied_at = '2020-01-01T00:00:00Z'",
            [],
        )
        .unwrap();
    app.run_sync("").await;
    assert_eq!(
        status_of(app.post_systeme_event("SALE_NEW", "s-3", &first).await).await,
        "duplicate"
    );
    assert_eq!(stats(&app, &t).await["revenue_cents"], 19_900);
    // The applied sale body replayed as a cancellation is a copy of the sale.
    assert_eq!(
        status_of(app.post_systeme_event("SALE_CANCELED", "x-1", &first).await).await,
        "duplicate"
    );
    assert_eq!(stats(&app, &t).await["revenue_cents"], 19_900);
    // Cancelled once, for good: neither a copy of the cancellation nor of the sale counts.
    let cancel = |n| cancellation(buyer, 77_001, n);
    assert_eq!(
        status_of(
            app.post_systeme_event("SALE_CANCELED", "c-1", &cancel(1))
                .await
        )
        .await,
        "applied"
    );
    assert_eq!(
        status_of(
            app.post_systeme_event("SALE_CANCELED", "c-2", &cancel(2))
                .await
        )
        .await,
        "duplicate"
    );
    assert_eq!(
        status_of(app.post_systeme_event("SALE_NEW", "s-4", &other_copy).await).await,
        "duplicate"
    );
    assert_eq!(stats(&app, &t).await["revenue_cents"], 0);
    // A cancellation that comes before its sale keeps the sale from counting.
    let early = cancellation(buyer, 77_002, 1);
    assert_eq!(
        status_of(app.post_systeme_event("SALE_CANCELED", "c-3", &early).await).await,
        "applied"
    );
    let late = sale(buyer, 77_002, "203.0.113.7");
    assert_eq!(
        status_of(app.post_systeme_event("SALE_NEW", "s-5", &late).await).await,
        "duplicate"
    );
    assert_eq!(stats(&app, &t).await["revenue_cents"], 0);
}

/// A `SALE_CANCELED` body for `order`, the `n`-th copy (copies differ in their timestamp).
fn cancellation(email: &str, order: i64, n: u32) -> String {
    let mut body: Value = serde_json::from_str(&sale(email, order, "203.0.113.7")).unwrap();
    body["canceledAt"] = json!(format!("2026-11-22T08:0{n}:00+00:00"));
    body.to_string()
}

#[tokio::test]
async fn an_unattributed_order_is_kept_once() {
    let app = spawn_app().await;
    let a = app.create_tenant("Unattr A").await;
    let b = app.create_tenant("Unattr B").await;
    let buyer = "shared-buyer@example.com";
    capture(&app, &a, buyer).await;
    capture(&app, &b, buyer).await;
    for (n, ip) in ["203.0.113.7", "198.51.100.20", "192.0.2.1"]
        .iter()
        .enumerate()
    {
        let resp = app
            .post_systeme_event("SALE_NEW", &format!("u-{n}"), &sale(buyer, 88_001, ip))
            .await;
        assert_eq!(resp.status(), 200);
    }
    let listed = json_body(
        app.client
            .get(app.url("/v1/admin/sales"))
            .bearer_auth(admin_token())
            .send()
            .await
            .unwrap(),
    )
    .await;
    let orders: Vec<&Value> = listed["sales"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["order_id"] == 88_001)
        .collect();
    assert_eq!(orders.len(), 1, "{listed}");
}

/// A tag event's body: the contact holds `tag` when `held`.
fn tag_body(email: &str, tag: &str, held: bool) -> String {
    let tags = if held {
        json!([{"id": 5, "name": tag}])
    } else {
        json!([])
    };
    json!({"contact": {"email": email, "tags": tags}, "tag": {"id": 5, "name": tag}}).to_string()
}

fn emails_opened(app: &SpawnedApp, t: &TestTenant, email: &str) -> i64 {
    app.db()
        .query_row(
            "SELECT emails_opened FROM leads WHERE tenant_id = ? AND email = ?",
            [&t.id, &email.to_string()],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn a_tag_removed_and_added_back_counts_again_while_a_replay_changes_nothing() {
    let app = spawn_app().await;
    let t = app.create_tenant("Reopen Ib").await;
    let email = "reopener@example.com";
    capture(&app, &t, email).await;
    let tag = format!("{}email-opened", t.tag_prefix);
    let added = tag_body(email, &tag, true);
    let removed = tag_body(email, &tag, false);
    assert_eq!(
        status_of(
            app.post_systeme_event("CONTACT_TAG_ADDED", "o-1", &added)
                .await
        )
        .await,
        "applied"
    );
    assert_eq!(
        status_of(
            app.post_systeme_event("CONTACT_TAG_ADDED", "o-2", &added)
                .await
        )
        .await,
        "duplicate"
    );
    assert_eq!(emails_opened(&app, &t, email), 1);
    assert_eq!(
        status_of(
            app.post_systeme_event("CONTACT_TAG_REMOVED", "o-3", &removed)
                .await
        )
        .await,
        "applied"
    );
    assert_eq!(
        status_of(
            app.post_systeme_event("CONTACT_TAG_REMOVED", "o-4", &removed)
                .await
        )
        .await,
        "duplicate"
    );
    // The same body as the first, minutes later: the tag really was added back.
    assert_eq!(
        status_of(
            app.post_systeme_event("CONTACT_TAG_ADDED", "o-5", &added)
                .await
        )
        .await,
        "applied"
    );
    assert_eq!(emails_opened(&app, &t, email), 2);
}

#[tokio::test]
async fn an_event_name_that_contradicts_its_signed_body_applies_nothing() {
    let app = spawn_app().await;
    let t = app.create_tenant("Rename Ib").await;
    let email = "renamed@example.com";
    capture(&app, &t, email).await;
    let tag = format!("{}vip", t.tag_prefix);
    let added = tag_body(email, &tag, true);
    // A tag-added body sent as an opt-in, or as a removal: acknowledged, nothing applied.
    for (event, id) in [("CONTACT_OPT_IN", "r-1"), ("CONTACT_TAG_REMOVED", "r-2")] {
        assert_eq!(
            status_of(app.post_systeme_event(event, id, &added).await).await,
            "ignored"
        );
    }
    let row = |app: &SpawnedApp| -> (i64, String) {
        app.db()
            .query_row(
                "SELECT opted_in, tags FROM leads WHERE tenant_id = ? AND email = ?",
                [&t.id, &email.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    let (opted_in, tags) = row(&app);
    assert_eq!(opted_in, 0);
    assert!(!tags.contains(&tag), "{tags}");
    // Under its own name it applies.
    assert_eq!(
        status_of(
            app.post_systeme_event("CONTACT_TAG_ADDED", "r-3", &added)
                .await
        )
        .await,
        "applied"
    );
    // A removal body sent as an addition keeps the tag.
    let removed = tag_body(email, &tag, false);
    assert_eq!(
        status_of(
            app.post_systeme_event("CONTACT_TAG_ADDED", "r-4", &removed)
                .await
        )
        .await,
        "ignored"
    );
    assert!(row(&app).1.contains(&tag));
    assert!(app.stderr().contains("does not agree with its event name"));
}

#[tokio::test]
async fn a_tenants_tags_past_its_budget_are_stored_but_kept_back_from_systeme() {
    let app = spawn_app().await;
    let t = app.create_tenant("Tagger Ib").await;
    let view = app.set_budgets(&t.id, json!({"tags": 3})).await;
    assert_eq!(view["limits"]["tags"], 3);
    let resp = app
        .post_lead(
            &t.capture_token,
            &json!({"email": "tagged@example.com", "tags": "a1,a2,a3,a4,a5"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let id = json_body(resp).await["id"].as_str().unwrap().to_string();
    let lead = lead_view(&app, &t, &id).await;
    assert_eq!(lead["sync_status"], "synced", "{lead}");
    let kept: Vec<&str> = lead["tags_kept_back"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(kept.len(), 2, "{lead}");
    assert_eq!(
        lead["tags"].as_array().unwrap().len(),
        6,
        "stored whole: {lead}"
    );
    let made: Vec<String> = app
        .systeme
        .tag_names()
        .into_iter()
        .filter(|n| {
            n.strip_prefix(&t.tag_prefix)
                .is_some_and(|s| s.len() == 2 && s.starts_with('a'))
        })
        .collect();
    assert_eq!(made.len(), 3, "{made:?}");
    assert!(kept.iter().all(|k| !made.contains(&k.to_string())));
    // The built-in form tag never counts.
    assert!(
        app.systeme
            .tag_names()
            .contains(&format!("{}demo-request", t.tag_prefix))
    );
    // A later lead with budgeted tags only syncs them all.
    let resp = app
        .post_lead(
            &t.capture_token,
            &json!({"email": "again@example.com", "tags": "a1"}),
        )
        .await;
    let id = json_body(resp).await["id"].as_str().unwrap().to_string();
    assert_eq!(lead_view(&app, &t, &id).await["tags_kept_back"], json!([]));
}

#[tokio::test]
async fn one_tenants_burst_waits_for_its_next_minute_while_others_still_sync() {
    let app = spawn_app().await;
    let busy = app.create_tenant("Burst Ib").await;
    let calm = app.create_tenant("Calm Ib").await;
    app.set_budgets(&busy.id, json!({"sync_calls_per_minute": 5}))
        .await;
    for n in 0..4 {
        capture(&app, &busy, &format!("burst{n}@example.com")).await;
    }
    let statuses: Vec<String> = (0..4)
        .map(|n| {
            app.lead_row(&busy.id, &format!("burst{n}@example.com"))
                .unwrap()
                .sync_status
        })
        .collect();
    // The first lead spends the minute's five calls; the others wait for the next minute
    // (one more may sync if the minute turns during the test, never all).
    assert_eq!(statuses[0], "synced", "{statuses:?}");
    let waiting = statuses[1..].iter().filter(|s| *s == "pending").count();
    assert!(waiting >= 2, "{statuses:?}");
    capture(&app, &calm, "calm@example.com").await;
    assert_eq!(
        app.lead_row(&calm.id, "calm@example.com")
            .unwrap()
            .sync_status,
        "synced"
    );
    // The batch defers the spent tenant too, without counting a failed attempt.
    let report = app.run_sync("?ignore_backoff=true").await;
    assert!(report["deferred"].as_u64().unwrap() >= 1, "{report}");
    for n in 1..4 {
        let row = app
            .lead_row(&busy.id, &format!("burst{n}@example.com"))
            .unwrap();
        assert_eq!(row.sync_attempts, 0, "{n}: {}", row.sync_status);
    }
}

#[tokio::test]
async fn held_leads_past_their_budget_are_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let t = app.create_tenant("Full Ib").await;
    capture(&app, &t, "kept@example.com").await;
    app.set_budgets(&t.id, json!({"held_leads": 2})).await;
    // The plan's quota is spent (1,000 leads captured).
    app.db_rw()
        .execute("UPDATE tenants SET lead_count = 1000 WHERE id = ?", [&t.id])
        .unwrap();
    for n in 0..2 {
        capture(&app, &t, &format!("held{n}@example.com")).await;
        assert_eq!(
            app.lead_row(&t.id, &format!("held{n}@example.com"))
                .unwrap()
                .sync_status,
            "held"
        );
    }
    let refused = app
        .post_lead(
            &t.capture_token,
            &json!({"email": "one-too-many@example.com"}),
        )
        .await;
    assert_problem(refused, 403, "quota_exceeded").await;
    assert!(app.lead_row(&t.id, "one-too-many@example.com").is_none());
    // A lead already stored may still be updated.
    let repeat = app
        .post_lead(
            &t.capture_token,
            &json!({"email": "held0@example.com", "name": "Ana"}),
        )
        .await;
    assert_eq!(repeat.status(), 200);
}

#[tokio::test]
async fn reposting_a_pending_or_failed_lead_waits_out_its_backoff() {
    let app = spawn_app().await;
    let t = app.create_tenant("Repost Ib").await;
    app.systeme.set_mode(Mode::Fail(503));
    capture(&app, &t, "retry@example.com").await;
    let row = app.lead_row(&t.id, "retry@example.com").unwrap();
    assert_eq!(
        (row.sync_status.as_str(), row.sync_attempts),
        ("pending", 1)
    );
    app.systeme.set_mode(Mode::Normal);
    app.systeme.clear_calls();
    for _ in 0..3 {
        let resp = app
            .post_lead(&t.capture_token, &json!({"email": "retry@example.com"}))
            .await;
        assert_eq!(resp.status(), 200);
    }
    assert!(app.systeme.calls().is_empty(), "{:?}", app.systeme.calls());
    // A failed lead (attempts exhausted) is queued again by a repost, but after its backoff.
    app.db_rw()
        .execute(
            "UPDATE leads SET sync_status = 'failed', next_sync_at = strftime('%s','now') + 600
             WHERE tenant_id = ?",
            [&t.id],
        )
        .unwrap();
    let resp = app
        .post_lead(&t.capture_token, &json!({"email": "retry@example.com"}))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(app.systeme.calls().is_empty());
    assert_eq!(
        app.lead_row(&t.id, "retry@example.com")
            .unwrap()
            .sync_status,
        "pending"
    );
}

/// Posts a lead as a trusted proxy would forward it: `X-Forwarded-For: <forwarded>`.
async fn post_via_proxy(app: &SpawnedApp, t: &TestTenant, email: &str, forwarded: &str) -> u16 {
    app.client
        .post(app.url("/v1/leads"))
        .bearer_auth(&t.capture_token)
        .header("x-forwarded-for", forwarded)
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_visitor_has_its_own_allowance() {
    let app = spawn_app_with(|spec| {
        spec.with_env("SPIN_VARIABLE_CAPTURE_RATE_LIMIT", "3")
            .with_env("SPIN_VARIABLE_TRUSTED_PROXIES", "127.0.0.0/8, ::1")
            .with_env("SPIN_VARIABLE_SYSTEME_API_KEY", "")
    })
    .await;
    let t = app.create_tenant("Proxied Ib").await;
    within_one_rate_window(20).await;
    for n in 0..3 {
        assert_eq!(
            post_via_proxy(&app, &t, &format!("a{n}@example.com"), "198.51.100.1").await,
            201
        );
    }
    assert_eq!(
        post_via_proxy(&app, &t, "a3@example.com", "198.51.100.1").await,
        429
    );
    // A forged left-hand entry does not buy a fresh allowance: the proxy saw 198.51.100.1.
    assert_eq!(
        post_via_proxy(&app, &t, "a4@example.com", "6.6.6.6, 198.51.100.1").await,
        429
    );
    // Nor does a `Forwarded` header the visitor sends: the proxy writes X-Forwarded-For only.
    let forged = app
        .client
        .post(app.url("/v1/leads"))
        .bearer_auth(&t.capture_token)
        .header("x-forwarded-for", "198.51.100.1")
        .header("forwarded", "for=7.7.7.7")
        .json(&json!({ "email": "a5@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 429);
    // Another visitor behind the same proxy is not blocked.
    assert_eq!(
        post_via_proxy(&app, &t, "b0@example.com", "198.51.100.2").await,
        201
    );
}

#[tokio::test]
async fn ipv6_visitors_share_one_allowance_per_slash_64() {
    let app = spawn_app_with(|spec| {
        spec.with_env("SPIN_VARIABLE_CAPTURE_RATE_LIMIT", "3")
            .with_env("SPIN_VARIABLE_TRUSTED_PROXIES", "127.0.0.1/32, ::1/128")
            .with_env("SPIN_VARIABLE_SYSTEME_API_KEY", "")
    })
    .await;
    let t = app.create_tenant("Six Ib").await;
    within_one_rate_window(20).await;
    for n in 1..=3 {
        let addr = format!("2001:db8:1:2::{n}");
        assert_eq!(
            post_via_proxy(&app, &t, &format!("v{n}@example.com"), &addr).await,
            201
        );
    }
    // Another address of the same /64 is the same subscriber.
    assert_eq!(
        post_via_proxy(&app, &t, "v4@example.com", "2001:db8:1:2:ffff::9").await,
        429
    );
    assert_eq!(
        post_via_proxy(&app, &t, "w1@example.com", "2001:db8:1:3::1").await,
        201
    );
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let app = spawn_app_with(|spec| {
        spec.with_env("SPIN_VARIABLE_CAPTURE_RATE_LIMIT", "2")
            .with_env("SPIN_VARIABLE_SYSTEME_API_KEY", "")
    })
    .await;
    let t = app.create_tenant("Direct Ib").await;
    within_one_rate_window(20).await;
    assert_eq!(
        post_via_proxy(&app, &t, "d1@example.com", "198.51.100.1").await,
        201
    );
    assert_eq!(
        post_via_proxy(&app, &t, "d2@example.com", "198.51.100.2").await,
        201
    );
    assert_eq!(
        post_via_proxy(&app, &t, "d3@example.com", "198.51.100.3").await,
        429
    );
}

#[tokio::test]
async fn a_replayed_idempotency_answer_counts_against_the_rate_limit() {
    let app = spawn_app_with(|spec| {
        spec.with_env("SPIN_VARIABLE_CAPTURE_RATE_LIMIT", "3")
            .with_env("SPIN_VARIABLE_SYSTEME_API_KEY", "")
    })
    .await;
    let t = app.create_tenant("Replayer Ib").await;
    within_one_rate_window(20).await;
    let post = |key: &'static str, email: &'static str| {
        app.client
            .post(app.url("/v1/leads"))
            .bearer_auth(&t.capture_token)
            .header("idempotency-key", key)
            .json(&json!({ "email": email }))
            .send()
    };
    assert_eq!(post("k-1", "i1@example.com").await.unwrap().status(), 201);
    let replay = post("k-1", "i1@example.com").await.unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(post("k-1", "i1@example.com").await.unwrap().status(), 201);
    assert_eq!(post("k-1", "i1@example.com").await.unwrap().status(), 429);
    assert_eq!(post("k-2", "i2@example.com").await.unwrap().status(), 429);
}

#[tokio::test]
async fn a_lead_made_from_a_callback_follows_the_form_rules_field_by_field() {
    let app = spawn_app().await;
    let t = app.create_tenant("Contact Ib").await;
    let long_name = "N".repeat(300);
    let body = json!({"contact": {
        "id": 4242,
        "email": "made-in-systeme@example.com",
        "sourceURL": "javascript:alert(document.cookie)//?utm_source=x",
        "fields": [
            {"slug": "first_name", "value": long_name},
            {"slug": "phone_number", "value": "+351 912 345 678"}
        ],
        "tags": [{"id": 1, "name": format!("{}demo-request", t.tag_prefix)}]
    }})
    .to_string();
    assert_eq!(
        status_of(
            app.post_systeme_event("CONTACT_CREATED", "m-1", &body)
                .await
        )
        .await,
        "applied"
    );
    let row = app.lead_row(&t.id, "made-in-systeme@example.com").unwrap();
    assert_eq!(row.name, None);
    assert_eq!(row.page_url, None);
    assert_eq!(row.utm_source, None);
    let phone: Option<String> = app
        .db()
        .query_row("SELECT phone FROM leads WHERE id = ?", [&row.id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(phone.as_deref(), Some("+351 912 345 678"));
    // A contact whose email breaks the form's rule is no lead at all.
    let bad = json!({"contact": {"email": "not an email", "tags": [{"id": 1, "name": format!("{}demo-request", t.tag_prefix)}]}}).to_string();
    assert_eq!(
        status_of(app.post_systeme_event("CONTACT_CREATED", "m-2", &bad).await).await,
        "ignored"
    );
}

#[tokio::test]
async fn an_order_no_tenant_held_does_not_count_once_a_tenant_captures_its_buyer() {
    let app = spawn_app().await;
    let t = app.create_tenant("Late Ib").await;
    let buyer = "late-buyer@example.com";
    let body = sale(buyer, 99_001, "203.0.113.7");
    // Nobody holds the buyer: the sale is acknowledged and counted for nobody.
    assert_eq!(
        status_of(app.post_systeme_event("SALE_NEW", "l-1", &body).await).await,
        "ignored"
    );
    // The capture key is public: the buyer's email is captured, then the old body replayed.
    capture(&app, &t, buyer).await;
    assert_eq!(
        status_of(app.post_systeme_event("SALE_NEW", "l-2", &body).await).await,
        "duplicate"
    );
    assert_eq!(stats(&app, &t).await["revenue_cents"], 0);
}
