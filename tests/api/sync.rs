//! Durable Systeme.io sync: what the client sends, failure → pending → `/v1/admin/sync` →
//! synced, rate limits, timeouts, giving up and retrying, sync switched off, and a 500-lead
//! run against a flaky fake.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use api_tests::{Mode, admin_token, assert_problem, now, spawn_app, spawn_app_with};
use serde_json::json;

fn next_sync_at(app: &api_tests::TestApp, lead_id: &str) -> i64 {
    app.db()
        .query_row(
            "SELECT next_sync_at FROM leads WHERE id = ?",
            [lead_id],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn systeme_down_leaves_the_lead_pending_until_the_admin_sync_pushes_it() {
    let app = spawn_app().await;
    let t = app.create_tenant("Down Ib").await;
    app.systeme.set_mode(Mode::Fail(503));
    let resp = app
        .post_lead(
            &t.capture_token,
            &json!({"email": "fay@example.com", "name": "Fay Da Costa", "phone": "+351 912 000 111", "ib_type": "forex-ib"}),
        )
        .await;
    assert_eq!(resp.status(), 201, "stored even though Systeme.io is down");
    let row = app.lead_row(&t.id, "fay@example.com").unwrap();
    assert_eq!(
        (row.sync_status.as_str(), row.sync_attempts),
        ("pending", 1)
    );
    assert!(
        next_sync_at(&app, &row.id) >= now() + 55,
        "backoff of about a minute"
    );

    // Back up, but the lead is not due yet: a plain batch leaves it alone.
    app.systeme.set_mode(Mode::Normal);
    app.systeme.clear_calls();
    let report = app.run_sync("").await;
    assert_eq!(
        (
            report["attempted"].as_i64(),
            report["remaining_due"].as_i64()
        ),
        (Some(0), Some(0)),
        "{report}"
    );
    assert!(app.systeme.calls().is_empty());

    let report = app.run_sync("?ignore_backoff=true").await;
    assert_eq!(report["synced"], 1, "{report}");
    assert_eq!(report["sync_enabled"], true);
    let row = app.lead_row(&t.id, "fay@example.com").unwrap();
    assert_eq!(row.sync_status, "synced");
    assert!(row.systeme_contact_id.is_some());

    // Exactly what the client sent.
    let calls = app.systeme.calls();
    for call in &calls {
        assert_eq!(call.headers["x-api-key"], api_tests::SYSTEME_API_KEY);
        assert_eq!(call.headers["accept"], "application/json");
    }
    let shape: Vec<(String, String)> = calls
        .iter()
        .map(|c| (c.method.clone(), c.path.clone()))
        .collect();
    let contact = row.systeme_contact_id.unwrap();
    let p = &t.tag_prefix;
    let mut expected = vec![
        ("GET".to_string(), "/api/contacts".to_string()),
        ("POST".into(), "/api/contacts".into()),
    ];
    for _ in 0..2 {
        expected.push(("GET".into(), "/api/tags".into()));
        expected.push(("POST".into(), "/api/tags".into()));
        expected.push(("POST".into(), format!("/api/contacts/{contact}/tags")));
    }
    assert_eq!(shape, expected);
    assert_eq!(
        calls[0].query,
        vec![("email".to_string(), "fay@example.com".to_string())]
    );
    assert_eq!(calls[1].headers["content-type"], "application/json");
    assert_eq!(
        calls[1].body,
        json!({"email": "fay@example.com", "fields": [
            {"slug": "first_name", "value": "Fay"},
            {"slug": "surname", "value": "Da Costa"},
            {"slug": "phone_number", "value": "+351 912 000 111"},
            {"slug": "clientflow_tenant_id", "value": t.id},
            {"slug": "clientflow_tag_prefix", "value": p},
        ]})
    );
    // Every body travels with its length, never chunked.
    for call in calls.iter().filter(|c| c.method == "POST") {
        assert_eq!(
            call.headers.get("content-length").map(String::as_str),
            Some(call.body_len.to_string().as_str()),
            "{call:?}"
        );
        assert!(call.body_len > 0);
        assert!(!call.headers.contains_key("transfer-encoding"), "{call:?}");
    }
    // The exact name, looked up 100 a page, oldest first.
    assert_eq!(
        calls[2].param("query"),
        Some(format!("{p}demo-request").as_str())
    );
    assert_eq!(calls[2].param("limit"), Some("100"));
    assert_eq!(calls[2].param("order"), Some("asc"));
    assert_eq!(calls[2].param("startingAfter"), None);
    assert_eq!(calls[3].body, json!({"name": format!("{p}demo-request")}));
    assert!(calls[4].body["tagId"].is_i64());
    assert_eq!(
        app.systeme.contact_tags("fay@example.com"),
        Some(BTreeSet::from([
            format!("{p}demo-request"),
            format!("{p}forex-ib")
        ]))
    );

    // Tag ids are cached: the next lead with the same tags looks none of them up.
    app.systeme.clear_calls();
    app.post_lead(
        &t.capture_token,
        &json!({"email": "gil@example.com", "ib_type": "forex-ib"}),
    )
    .await;
    let paths: Vec<String> = app
        .systeme
        .calls()
        .iter()
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    assert!(!paths.iter().any(|p| p.contains("/api/tags ")), "{paths:?}");
    assert!(!paths.iter().any(|p| p.ends_with("/api/tags")), "{paths:?}");
}

#[tokio::test]
async fn a_rate_limited_sync_honours_retry_after_and_stops_the_batch() {
    let app = spawn_app().await;
    let t = app.create_tenant("Slow Ib").await;
    app.systeme.set_mode(Mode::RateLimit { retry_after: 600 });
    for i in 0..3 {
        let resp = app
            .post_lead(
                &t.capture_token,
                &json!({"email": format!("s{i}@example.com")}),
            )
            .await;
        assert_eq!(resp.status(), 201);
    }
    let row = app.lead_row(&t.id, "s0@example.com").unwrap();
    assert_eq!(row.sync_status, "pending");
    assert!(
        next_sync_at(&app, &row.id) >= now() + 590,
        "Retry-After of 600 s honoured"
    );
    let report = app.run_sync("?ignore_backoff=true").await;
    assert_eq!(report["rate_limited"], true, "{report}");
    assert_eq!(
        report["attempted"], 1,
        "the batch stops at the first 429: {report}"
    );
    assert_eq!(report["remaining_due"], 0);
}

#[tokio::test]
async fn a_hung_systeme_times_out_and_the_visitor_still_gets_an_answer() {
    let app = spawn_app().await;
    let t = app.create_tenant("Hang Ib").await;
    app.systeme.set_mode(Mode::Hang(Duration::from_secs(60)));
    let started = Instant::now();
    let resp = app
        .post_lead(&t.capture_token, &json!({"email": "hang@example.com"}))
        .await;
    assert_eq!(resp.status(), 201);
    // The client's own timeouts bound the wait (4 s to the first byte), not Spin's 600 s.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let row = app.lead_row(&t.id, "hang@example.com").unwrap();
    assert_eq!(
        (row.sync_status.as_str(), row.sync_attempts),
        ("pending", 1)
    );
}

#[tokio::test]
async fn a_response_that_is_not_json_leaves_the_lead_pending() {
    let app = spawn_app().await;
    let t = app.create_tenant("Garbage Ib").await;
    app.systeme.set_mode(Mode::Garbage);
    let resp = app
        .post_lead(&t.capture_token, &json!({"email": "gar@example.com"}))
        .await;
    assert_eq!(resp.status(), 201);
    let row = app.lead_row(&t.id, "gar@example.com").unwrap();
    assert_eq!(
        (row.sync_status.as_str(), row.sync_attempts),
        ("pending", 1)
    );
    let error: String = app
        .db()
        .query_row(
            "SELECT sync_error FROM leads WHERE id = ?",
            [&row.id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(error.starts_with("unexpected response"), "{error}");
    app.systeme.set_mode(Mode::Normal);
    let report = app.run_sync("?ignore_backoff=true").await;
    assert_eq!(report["synced"], 1, "{report}");
}

#[tokio::test]
async fn after_the_last_attempt_a_lead_is_failed_visible_and_retryable() {
    let app = spawn_app().await;
    let t = app.create_tenant("Fail Ib").await;
    app.systeme.set_mode(Mode::Fail(500));
    app.post_lead(&t.capture_token, &json!({"email": "hal@example.com"}))
        .await;
    for _ in 1..6 {
        app.run_sync("?ignore_backoff=true").await;
    }
    let row = app.lead_row(&t.id, "hal@example.com").unwrap();
    assert_eq!((row.sync_status.as_str(), row.sync_attempts), ("failed", 6));
    let report = app.run_sync("?ignore_backoff=true").await;
    assert_eq!(
        report["attempted"], 0,
        "failed leads are not retried on their own"
    );

    app.systeme.set_mode(Mode::Normal);
    let report = app.run_sync("?retry_failed=true").await;
    assert_eq!(
        (report["requeued"].as_i64(), report["synced"].as_i64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(
        app.lead_row(&t.id, "hal@example.com").unwrap().sync_status,
        "synced"
    );
}

#[tokio::test]
async fn without_an_api_key_leads_stay_pending_and_nothing_is_sent() {
    let app = spawn_app_with(|spec| spec.with_env("SPIN_VARIABLE_SYSTEME_API_KEY", "")).await;
    let t = app.create_tenant("Off Ib").await;
    assert_eq!(
        app.post_lead(&t.capture_token, &json!({"email": "ivy@example.com"}))
            .await
            .status(),
        201
    );
    let report = app.run_sync("?ignore_backoff=true").await;
    assert_eq!(report["sync_enabled"], false, "{report}");
    assert_eq!(report["attempted"], 0);
    assert_eq!(
        app.lead_row(&t.id, "ivy@example.com").unwrap().sync_status,
        "pending"
    );
    assert!(app.systeme.calls().is_empty());
}

#[tokio::test]
async fn the_admin_sync_needs_an_admin_token_and_a_sane_query() {
    let app = spawn_app().await;
    let t = app.create_tenant("Sync Auth").await;
    let url = app.url("/v1/admin/sync");
    assert_problem(
        app.client.post(&url).send().await.unwrap(),
        401,
        "token_missing",
    )
    .await;
    for token in [t.capture_token.clone(), t.dashboard_token()] {
        let resp = app
            .client
            .post(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_problem(resp, 403, "token_scope").await;
    }
    for query in ["?limit=0", "?limit=501", "?limit=x", "?retry_failed=maybe"] {
        let resp = app
            .client
            .post(app.url(&format!("/v1/admin/sync{query}")))
            .bearer_auth(admin_token())
            .send()
            .await
            .unwrap();
        assert_problem(resp, 400, "invalid_query").await;
    }
    let get = app
        .client
        .get(&url)
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap();
    assert_problem(get, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn five_hundred_leads_across_three_tenants_survive_a_flaky_systeme() {
    let app =
        spawn_app_with(|spec| spec.with_env("SPIN_VARIABLE_CAPTURE_RATE_LIMIT", "100000")).await;
    app.systeme.set_mode(Mode::FailRandomly(3));
    let tenants = [
        app.create_tenant("Flaky A").await,
        app.create_tenant("Flaky B").await,
        app.create_tenant("Flaky C").await,
    ];
    for t in &tenants {
        app.unlimited_sync_calls(&t.id).await;
    }
    let forms = ["demo-request", "webinar", "ebook"];
    let leads: Vec<(usize, String, usize)> = (0..500)
        .map(|i| (i % 3, format!("trader{i}@example.com"), i % forms.len()))
        .collect();
    let posts: Vec<(String, serde_json::Value)> = leads
        .iter()
        .map(|(t, email, form)| {
            (
                tenants[*t].capture_token.clone(),
                json!({"email": email, "form": forms[*form], "monthly_leads": "500+"}),
            )
        })
        .collect();
    app.post_leads(&posts).await;
    // Every lead stored exactly once, with its own tenant.
    for (i, t) in tenants.iter().enumerate() {
        let expected = leads.iter().filter(|(owner, _, _)| *owner == i).count();
        assert_eq!(app.lead_count(&t.id), i64::try_from(expected).unwrap());
    }
    let total: i64 = app
        .db()
        .query_row("SELECT COUNT(*) FROM leads", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total, 500);
    let pending_after_capture: i64 = app
        .db()
        .query_row(
            "SELECT COUNT(*) FROM leads WHERE sync_status = 'pending'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        pending_after_capture > 0,
        "a third of the calls failed, so some leads must be pending"
    );

    let mut rounds = 0;
    loop {
        let report = app
            .run_sync("?retry_failed=true&ignore_backoff=true&limit=500")
            .await;
        let unsynced: i64 = app
            .db()
            .query_row(
                "SELECT COUNT(*) FROM leads WHERE sync_status != 'synced'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if unsynced == 0 {
            break;
        }
        rounds += 1;
        assert!(
            rounds < 40,
            "still {unsynced} unsynced after {rounds} rounds: {report}"
        );
    }
    assert_eq!(app.systeme.contact_count(), 500);
    for (owner, email, form) in &leads {
        let p = &tenants[*owner].tag_prefix;
        let expected = BTreeSet::from([format!("{p}{}", forms[*form]), format!("{p}high-volume")]);
        assert_eq!(
            app.systeme.contact_tags(email).as_ref(),
            Some(&expected),
            "{email}"
        );
    }
    let fields = app.systeme.contact_fields("trader1@example.com").unwrap();
    assert!(fields.contains(&json!({"slug": "clientflow_tenant_id", "value": tenants[1].id})));
}

fn sync_error(app: &api_tests::TestApp, lead_id: &str) -> Option<String> {
    app.db()
        .query_row(
            "SELECT sync_error FROM leads WHERE id = ?",
            [lead_id],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn an_existing_tag_past_the_first_page_of_look_alikes_is_found_not_duplicated() {
    let app = spawn_app().await;
    let t = app.create_tenant("Paged Ib").await;
    let p = &t.tag_prefix;
    let exact = format!("{p}demo-request");
    // Look-alikes on both sides, so the exact tag is past the first page in either order.
    for i in 0..120 {
        app.systeme.add_tag(&format!("{p}demo-request-v{i}"));
    }
    let id = app.systeme.add_tag(&exact);
    for i in 120..240 {
        app.systeme.add_tag(&format!("{p}demo-request-{i}"));
    }
    let resp = app
        .post_lead(&t.capture_token, &json!({"email": "page@example.com"}))
        .await;
    assert_eq!(resp.status(), 201);
    let row = app.lead_row(&t.id, "page@example.com").unwrap();
    assert_eq!(row.sync_status, "synced");
    assert_eq!(
        app.systeme.tag_ids(&exact),
        vec![id],
        "found, not duplicated"
    );
    assert!(app.systeme.calls_to("POST", "/api/tags").is_empty());
    assert_eq!(
        app.systeme.contact_tags("page@example.com"),
        Some(BTreeSet::from([exact.clone()]))
    );
    let lookups = app.systeme.calls_to("GET", "/api/tags");
    assert!(lookups.len() >= 2, "paged through: {}", lookups.len());
    assert!(lookups.iter().all(|c| c.param("limit") == Some("100")));
    assert!(
        lookups
            .iter()
            .skip(1)
            .all(|c| c.param("startingAfter").is_some())
    );
}

#[tokio::test]
async fn a_tag_deleted_in_systeme_is_recreated_and_never_silently_skipped() {
    let app = spawn_app().await;
    let t = app.create_tenant("Deleted Ib").await;
    let tag = format!("{}demo-request", t.tag_prefix);
    app.post_lead(&t.capture_token, &json!({"email": "one@example.com"}))
        .await;
    assert_eq!(
        app.lead_row(&t.id, "one@example.com").unwrap().sync_status,
        "synced"
    );
    let old = app.systeme.tag_ids(&tag);
    assert_eq!(old.len(), 1);

    // An operator deletes the tag in Systeme.io; the app still has its id cached.
    app.systeme.delete_tag(&tag);
    app.systeme.clear_calls();
    app.post_lead(&t.capture_token, &json!({"email": "two@example.com"}))
        .await;
    let row = app.lead_row(&t.id, "two@example.com").unwrap();
    assert_eq!(row.sync_status, "synced");
    assert_eq!(
        app.systeme.contact_tags("two@example.com"),
        Some(BTreeSet::from([tag.clone()])),
        "the new lead has the tag"
    );
    let now_ids = app.systeme.tag_ids(&tag);
    assert_eq!(now_ids.len(), 1, "recreated once");
    assert_ne!(now_ids, old);
    let assigns: Vec<i64> = app
        .systeme
        .calls()
        .iter()
        .filter(|c| c.method == "POST" && c.path.ends_with("/tags") && c.path != "/api/tags")
        .map(|c| c.body["tagId"].as_i64().unwrap())
        .collect();
    assert_eq!(
        assigns,
        vec![old[0], now_ids[0]],
        "the stale id, then once more"
    );

    // The next lead uses the new id straight away.
    app.systeme.clear_calls();
    app.post_lead(&t.capture_token, &json!({"email": "three@example.com"}))
        .await;
    assert_eq!(
        app.lead_row(&t.id, "three@example.com")
            .unwrap()
            .sync_status,
        "synced"
    );
    assert!(app.systeme.calls_to("GET", "/api/tags").is_empty());
    assert_eq!(app.systeme.tag_ids(&tag), now_ids);

    // A lead synced again (captured anew) whose contact already has the tag: the 422 is
    // checked against the contact's tags, and the lead is synced. A sync assigns only the tags
    // the last successful sync did not give the contact (`synced_tags`); forget them, as for
    // a lead synced before that was recorded, so the tag is assigned again.
    app.db_rw()
        .execute(
            "UPDATE leads SET synced_tags = '[]' WHERE email = 'three@example.com'",
            [],
        )
        .unwrap();
    app.systeme.clear_calls();
    app.post_lead(
        &t.capture_token,
        &json!({"email": "three@example.com", "name": "Three Again"}),
    )
    .await;
    let row = app.lead_row(&t.id, "three@example.com").unwrap();
    assert_eq!(row.sync_status, "synced");
    let contact = row.systeme_contact_id.unwrap();
    assert_eq!(
        app.systeme
            .calls_to("GET", &format!("/api/contacts/{contact}"))
            .len(),
        1,
        "the contact's tags were read back"
    );
    assert_eq!(app.systeme.tag_ids(&tag), now_ids);
}

#[tokio::test]
async fn a_permanent_422_on_contact_create_fails_the_lead_with_a_reason_until_fixed() {
    let app = spawn_app().await;
    let t = app.create_tenant("Fields Ib").await;
    // The account lacks the two custom fields the guide asks for.
    app.systeme.set_custom_fields(Some(&[]));
    let resp = app
        .post_lead(
            &t.capture_token,
            &json!({"email": "kai@example.com", "name": "Kai Lee"}),
        )
        .await;
    assert_eq!(resp.status(), 201, "stored whatever Systeme.io says");
    let row = app.lead_row(&t.id, "kai@example.com").unwrap();
    assert_eq!(
        (row.sync_status.as_str(), row.sync_attempts),
        ("failed", 1),
        "failed at once, not retried five more times"
    );
    let reason = sync_error(&app, &row.id).unwrap();
    assert!(
        reason.contains("fields[2].slug") && reason.contains("clientflow_tenant_id"),
        "{reason}"
    );
    assert_eq!(app.systeme.contact_count(), 0);
    let report = app.run_sync("?ignore_backoff=true").await;
    assert_eq!(report["attempted"], 0, "{report}");

    // The operator creates the fields, then queues failed leads again.
    app.systeme
        .set_custom_fields(Some(&["clientflow_tenant_id", "clientflow_tag_prefix"]));
    let report = app.run_sync("?retry_failed=true").await;
    assert_eq!(
        (report["requeued"].as_i64(), report["synced"].as_i64()),
        (Some(1), Some(1)),
        "{report}"
    );
    let row = app.lead_row(&t.id, "kai@example.com").unwrap();
    assert_eq!(row.sync_status, "synced");
    assert_eq!(sync_error(&app, &row.id), None);
    let fields = app.systeme.contact_fields("kai@example.com").unwrap();
    assert!(fields.contains(&json!({"slug": "clientflow_tenant_id", "value": t.id})));
}

#[tokio::test]
async fn concurrent_syncs_needing_one_new_tag_make_one_tag() {
    let app = spawn_app().await;
    let a = app.create_tenant("Race A").await;
    let b = app.create_tenant("Race B").await;
    // Slow lookups, so every sync has looked (and found nothing) before any creates.
    app.systeme
        .delay("GET", "/api/tags", Duration::from_millis(700));
    app.systeme
        .delay("GET", "/api/contacts", Duration::from_millis(300));
    // And a slow create, so the others ask while the first is still creating.
    app.systeme
        .delay("POST", "/api/tags", Duration::from_millis(500));
    let mut posts: Vec<(String, serde_json::Value)> = (0..4)
        .map(|i| {
            (
                a.capture_token.clone(),
                json!({"email": format!("race{i}@example.com"), "form": "webinar"}),
            )
        })
        .collect();
    // The same person through another tenant at the same time: one contact.
    posts.push((
        b.capture_token.clone(),
        json!({"email": "race0@example.com", "form": "webinar"}),
    ));
    app.post_leads(&posts).await;
    let tag = format!("{}webinar", a.tag_prefix);

    let calls = app.systeme.calls();
    let first_create = calls
        .iter()
        .position(|c| c.method == "POST" && c.path == "/api/tags" && c.body["name"] == tag.as_str())
        .expect("the tag was created");
    let looked_before = calls[..first_create]
        .iter()
        .filter(|c| c.path == "/api/tags" && c.param("query") == Some(tag.as_str()))
        .count();
    assert!(
        looked_before >= 2,
        "the syncs really raced: {looked_before}"
    );

    // Some may have been left pending if they waited too long; the batch finishes them.
    app.run_sync("?ignore_backoff=true").await;
    assert_eq!(app.systeme.tag_ids(&tag).len(), 1, "one tag");
    assert_eq!(
        app.systeme
            .tag_ids(&format!("{}webinar", b.tag_prefix))
            .len(),
        1
    );
    let creates = app
        .systeme
        .calls_to("POST", "/api/tags")
        .into_iter()
        .filter(|c| c.body["name"] == tag.as_str())
        .count();
    assert_eq!(creates, 1);
    assert_eq!(
        app.systeme.contact_count(),
        4,
        "race0 once, for both tenants"
    );
    for i in 0..4 {
        let email = format!("race{i}@example.com");
        assert_eq!(app.lead_row(&a.id, &email).unwrap().sync_status, "synced");
        assert!(
            app.systeme.contact_tags(&email).unwrap().contains(&tag),
            "{email}"
        );
    }
    assert_eq!(
        app.lead_row(&b.id, "race0@example.com")
            .unwrap()
            .sync_status,
        "synced"
    );
}

#[tokio::test]
async fn rate_limit_headers_give_a_sane_bounded_backoff() {
    let app = spawn_app().await;
    let t = app.create_tenant("Refill Ib").await;
    let cases = [
        // A refill timestamp five minutes ahead, no Retry-After.
        (
            Mode::RateLimitRefill {
                refill: (now() + 300).to_string(),
            },
            295,
            310,
        ),
        // A refill timestamp a week ahead: never more than an hour.
        (
            Mode::RateLimitRefill {
                refill: (now() + 7 * 86_400).to_string(),
            },
            3590,
            3605,
        ),
        // A small refill is seconds; the backoff's minute still applies.
        (
            Mode::RateLimitRefill {
                refill: "20".into(),
            },
            55,
            65,
        ),
        // Retry-After wins over the refill header, and is capped at an hour too.
        (
            Mode::RateLimit {
                retry_after: 86_400,
            },
            3590,
            3605,
        ),
    ];
    for (i, (mode, low, high)) in cases.into_iter().enumerate() {
        app.systeme.set_mode(mode.clone());
        let email = format!("rl{i}@example.com");
        let resp = app
            .post_lead(&t.capture_token, &json!({"email": email}))
            .await;
        assert_eq!(resp.status(), 201);
        let row = app.lead_row(&t.id, &email).unwrap();
        assert_eq!(row.sync_status, "pending");
        let wait = next_sync_at(&app, &row.id) - now();
        assert!((low..=high).contains(&wait), "{mode:?}: waits {wait} s");
    }
}
