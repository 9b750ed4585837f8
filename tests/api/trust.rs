//! The public capture key and the shared Systeme.io account cannot be turned against a tenant
//! (docs/contract.md §9 "Threat model"). Each test replays an attack that worked before and shows it fails.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use api_tests::systeme::Mode;
use api_tests::{TestApp, admin_token, assert_problem, json_body, spawn_app};
use serde_json::{Value, json};

fn assignments(app: &api_tests::SpawnedApp) -> usize {
    app.systeme
        .calls()
        .iter()
        .filter(|c| {
            c.method == "POST" && c.path.starts_with("/api/contacts/") && c.path.ends_with("/tags")
        })
        .count()
}

#[tokio::test]
async fn a_visitor_cannot_forge_funnel_stage_tags() {
    let app = spawn_app().await;
    let t = app.create_tenant("Stage Ib").await;
    for body in [
        json!({"email": "forger@example.com", "tags": "converted,engaged,email-opened"}),
        json!({"email": "forger@example.com", "tags": ["vip", "Email Opened"]}),
        json!({"email": "forger@example.com", "form": "converted"}),
        json!({"email": "forger@example.com", "ib_type": "email-clicked"}),
        json!({"email": "forger@example.com", "tags": format!("{}retained", t.tag_prefix)}),
    ] {
        let problem = assert_problem(
            app.post_lead(&t.capture_token, &body).await,
            422,
            "reserved_tag",
        )
        .await;
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("tags:")
                    || d.starts_with("form:")
                    || d.starts_with("ib_type:")),
            "{problem}"
        );
    }
    // The plain-form path too.
    let resp = app
        .post_form(
            &t.capture_token,
            &[("email", "forger@example.com"), ("tags", "converted")],
        )
        .await;
    assert_problem(resp, 422, "reserved_tag").await;
    assert!(app.lead_row(&t.id, "forger@example.com").is_none());
    let stage_tags: Vec<String> = app
        .systeme
        .tag_names()
        .into_iter()
        .filter(|n| {
            [
                "converted",
                "engaged",
                "email-opened",
                "email-clicked",
                "retained",
            ]
            .iter()
            .any(|s| n.ends_with(s))
        })
        .collect();
    assert!(stage_tags.is_empty(), "reached Systeme.io: {stage_tags:?}");
    // A tag no rule reacts to is still welcome.
    let ok = app
        .post_lead(
            &t.capture_token,
            &json!({"email": "fan@example.com", "tags": "vip"}),
        )
        .await;
    assert_eq!(ok.status(), 201);
    let row = app.lead_row(&t.id, "fan@example.com").unwrap();
    assert!(
        row.tags.contains(&format!("{}vip", t.tag_prefix)),
        "{:?}",
        row.tags
    );
}

#[tokio::test]
async fn a_leads_tags_are_capped_and_a_repeat_post_assigns_only_its_new_tags() {
    let app = spawn_app().await;
    let t = app.create_tenant("Cap Ib").await;
    let email = "grower@example.com";
    let first: Vec<String> = (0..10).map(|i| format!("first{i}")).collect();
    assert_eq!(
        app.post_lead(&t.capture_token, &json!({"email": email, "tags": first}))
            .await
            .status(),
        201
    );
    let initial = app.lead_row(&t.id, email).unwrap();
    assert_eq!(initial.sync_status, "synced");
    assert_eq!(assignments(&app), initial.tags.len());
    app.systeme.clear_calls();
    assert_eq!(
        app.post_lead(
            &t.capture_token,
            &json!({"email": email, "tags": ["new1", "new2"]})
        )
        .await
        .status(),
        200
    );
    assert_eq!(app.lead_row(&t.id, email).unwrap().sync_status, "synced");
    assert_eq!(
        assignments(&app),
        2,
        "only the two new tags are assigned again"
    );
    for post in 0..12 {
        let tags: Vec<String> = (0..10).map(|i| format!("p{post}x{i}")).collect();
        let resp = app
            .post_lead(&t.capture_token, &json!({"email": email, "tags": tags}))
            .await;
        assert_eq!(resp.status(), 200);
    }
    let row = app.lead_row(&t.id, email).unwrap();
    assert_eq!(
        row.tags.len(),
        domain::lead::MAX_LEAD_TAGS,
        "{:?}",
        row.tags
    );
    // What the lead had first is kept; the overflow of later posts is dropped.
    for tag in &initial.tags {
        assert!(row.tags.contains(tag), "{tag} was dropped");
    }
    assert!(app.systeme.contact_tags(email).unwrap().len() <= domain::lead::MAX_LEAD_TAGS);
}

fn sale(email: &str, order: i64, funnel: Option<i64>) -> String {
    let mut body = json!({
        "customer": {"email": email},
        "order": {"id": order, "totalPrice": 19_900},
        "pricePlan": {"amount": 19_900, "currency": "eur"}
    });
    if let Some(funnel) = funnel {
        body["funnelStep"] = json!({"id": 1, "funnel": {"id": funnel, "name": "F"}});
    }
    body.to_string()
}

async fn revenue(app: &TestApp, token: &str) -> Value {
    let stats = json_body(
        app.client
            .get(app.url("/v1/dashboard/stats"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    stats["revenue_cents"].clone()
}

async fn timeline_kinds(app: &TestApp, token: &str, lead_id: &str) -> Vec<String> {
    let lead = json_body(
        app.client
            .get(app.url(&format!("/v1/dashboard/leads/{lead_id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    lead["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_tenant_cannot_claim_another_tenants_sale_by_capturing_the_buyer() {
    let app = spawn_app().await;
    let a = app.create_tenant("Seller Ib").await;
    let b = app.create_tenant("Snoop Ib").await;
    let buyer = "buyer@example.com";
    for t in [&a, &b] {
        assert_eq!(
            app.post_lead(&t.capture_token, &json!({"email": buyer}))
                .await
                .status(),
            201
        );
    }
    // Both hold the buyer, nobody registered the funnel: the sale is nobody's.
    let resp = app
        .post_systeme_event("SALE_NEW", "sale-1", &sale(buyer, 77_001, Some(801)))
        .await;
    assert_eq!(json_body(resp).await["status"], "ignored");
    for t in [&a, &b] {
        assert_eq!(revenue(&app, &t.dashboard_token()).await, 0);
        let lead = app.lead_row(&t.id, buyer).unwrap();
        assert!(
            !timeline_kinds(&app, &t.dashboard_token(), &lead.id)
                .await
                .contains(&"sale".to_string())
        );
    }
    let admin = json_body(
        app.client
            .get(app.url("/v1/admin/sales"))
            .bearer_auth(admin_token())
            .send()
            .await
            .unwrap(),
    )
    .await;
    let listed = &admin["sales"][0];
    assert_eq!(listed["message_id"], "sale-1");
    assert_eq!(listed["candidates"], 2);
    assert_eq!(listed["funnel_id"], 801);
    // The operator gives A the funnel; it cannot be given to B too.
    let put = |t: &api_tests::TestTenant, body: Value| {
        app.client
            .patch(app.url(&format!("/v1/admin/tenants/{}", t.id)))
            .bearer_auth(admin_token())
            .json(&body)
            .send()
    };
    assert_eq!(
        put(&a, json!({"funnel_ids": [801]}))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_problem(
        put(&b, json!({"funnel_ids": [801]})).await.unwrap(),
        409,
        "funnel_taken",
    )
    .await;
    let resp = app
        .post_systeme_event("SALE_NEW", "sale-2", &sale(buyer, 77_002, Some(801)))
        .await;
    assert_eq!(json_body(resp).await["status"], "applied");
    assert_eq!(revenue(&app, &a.dashboard_token()).await, 19_900);
    assert_eq!(revenue(&app, &b.dashboard_token()).await, 0);
    let b_lead = app.lead_row(&b.id, buyer).unwrap();
    let b_kinds = timeline_kinds(&app, &b.dashboard_token(), &b_lead.id).await;
    assert!(
        !b_kinds.iter().any(|k| k.starts_with("sale")),
        "{b_kinds:?}"
    );
    // A buyer only one tenant holds is that tenant's, funnel or not.
    assert_eq!(
        app.post_lead(&b.capture_token, &json!({"email": "solo@example.com"}))
            .await
            .status(),
        201
    );
    let resp = app
        .post_systeme_event(
            "SALE_NEW",
            "sale-3",
            &sale("solo@example.com", 77_003, None),
        )
        .await;
    assert_eq!(json_body(resp).await["status"], "applied");
    assert_eq!(revenue(&app, &b.dashboard_token()).await, 19_900);
    assert_eq!(revenue(&app, &a.dashboard_token()).await, 19_900);
}

#[tokio::test]
async fn a_signed_callback_replayed_under_a_new_message_id_counts_once() {
    let app = spawn_app().await;
    let t = app.create_tenant("Replay Ib").await;
    let email = "opener@example.com";
    assert_eq!(
        app.post_lead(&t.capture_token, &json!({"email": email}))
            .await
            .status(),
        201
    );
    let tag = format!("{}email-opened", t.tag_prefix);
    let body = json!({"contact": {"email": email, "tags": [{"id": 5, "name": tag}]}, "tag": {"id": 5, "name": tag}}).to_string();
    let first = app
        .post_systeme_event("CONTACT_TAG_ADDED", "open-1", &body)
        .await;
    assert_eq!(json_body(first).await["status"], "applied");
    for n in 2..5 {
        let again = app
            .post_systeme_event("CONTACT_TAG_ADDED", &format!("open-{n}"), &body)
            .await;
        assert_eq!(json_body(again).await["status"], "duplicate");
    }
    let opened: i64 = app
        .db()
        .query_row(
            "SELECT emails_opened FROM leads WHERE tenant_id = ? AND email = ?",
            [&t.id, &email.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(opened, 1);
}

/// Sends a request head declaring `declared` body bytes, then only `sent` of them, and reads
/// what comes back (within a few seconds).
fn raw_post(port: u16, method: &str, path: &str, declared: usize, sent: usize) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&vec![b'{'; sent]).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test]
async fn a_declared_oversized_body_is_refused_before_it_is_read_on_every_route() {
    let app = spawn_app().await;
    let t = app.create_tenant("Size Ib").await;
    let port = app.port;
    for (method, path) in [
        ("POST", format!("/v1/leads?key={}", t.capture_token)),
        ("POST", "/v1/systeme/events".to_string()),
        ("POST", "/v1/tenants".to_string()),
        ("POST", "/v1/admin/sync".to_string()),
        ("PUT", "/v1/dashboard/settings".to_string()),
        ("POST", "/app/".to_string()),
    ] {
        let target = path.clone();
        let answer =
            tokio::task::spawn_blocking(move || raw_post(port, method, &target, 50_000_000, 16))
                .await
                .unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "{method} {path} answered {:?}",
            answer.lines().next()
        );
        assert!(answer.contains("body_too_large"), "{answer}");
    }
    // Without a Content-Length (chunked), a body past the limit is cut off at the limit.
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let head = "POST /v1/systeme/events HTTP/1.1\r\nhost: 127.0.0.1\r\n\
            transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        let chunk = vec![b' '; 40 * 1024];
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .unwrap();
        stream.write_all(&chunk).unwrap();
        let _ = stream.write_all(b"\r\n0\r\n\r\n");
        let mut answer = vec![0u8; 4096];
        let n = stream.read(&mut answer).unwrap_or(0);
        String::from_utf8_lossy(&answer[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn a_suspended_tenants_leads_wait_out_the_batch_sync_until_reactivation() {
    let app = spawn_app().await;
    let t = app.create_tenant("Paused Ib").await;
    app.systeme.set_mode(Mode::Fail(503));
    assert_eq!(
        app.post_lead(&t.capture_token, &json!({"email": "waiting@example.com"}))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.lead_row(&t.id, "waiting@example.com")
            .unwrap()
            .sync_status,
        "pending"
    );
    let patch = |status: &'static str| {
        app.client
            .patch(app.url(&format!("/v1/admin/tenants/{}", t.id)))
            .bearer_auth(admin_token())
            .json(&json!({"status": status}))
            .send()
    };
    assert_eq!(patch("suspended").await.unwrap().status(), 200);
    app.systeme.set_mode(Mode::Normal);
    app.systeme.clear_calls();
    let report = app.run_sync("?ignore_backoff=true").await;
    assert_eq!(report["attempted"], 0, "{report}");
    assert!(
        app.systeme.calls().is_empty(),
        "a suspended tenant's lead reached Systeme.io"
    );
    assert_eq!(
        app.lead_row(&t.id, "waiting@example.com")
            .unwrap()
            .sync_status,
        "pending"
    );
    assert_eq!(patch("active").await.unwrap().status(), 200);
    let report = app.run_sync("?ignore_backoff=true").await;
    assert_eq!(report["synced"], 1, "{report}");
    assert_eq!(
        app.lead_row(&t.id, "waiting@example.com")
            .unwrap()
            .sync_status,
        "synced"
    );
}

#[tokio::test]
async fn erasing_a_lead_neither_frees_quota_nor_lets_a_callback_bring_it_back() {
    let app = spawn_app().await;
    let t = app.create_tenant("Erase Ib").await;
    let email = "gone@example.com";
    for e in [email, "kept@example.com"] {
        assert_eq!(
            app.post_lead(&t.capture_token, &json!({"email": e}))
                .await
                .status(),
            201
        );
    }
    assert_eq!(app.admin_view(&t.id).await.unwrap()["usage"]["leads"], 2);
    let lead = app.lead_row(&t.id, email).unwrap();
    let erase = app
        .client
        .delete(app.url(&format!("/v1/dashboard/leads/{}", lead.id)))
        .bearer_auth(t.dashboard_token())
        .send()
        .await
        .unwrap();
    assert_eq!(erase.status(), 204);
    assert!(app.lead_row(&t.id, email).is_none());
    assert_eq!(
        app.admin_view(&t.id).await.unwrap()["usage"]["leads"],
        2,
        "erasing must not give the quota back"
    );
    // The tombstone keeps no address, only a hash.
    let stored: String = app
        .db()
        .query_row(
            "SELECT email_hash FROM erased_leads WHERE tenant_id = ?",
            [&t.id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!stored.contains('@') && stored.len() == 64, "{stored}");
    // Systeme.io still knows the contact with the tenant's tags: its events do not recreate it.
    let tag = format!("{}engaged", t.tag_prefix);
    let body = json!({"contact": {"id": 4242, "email": email, "tags": [{"id": 9, "name": tag}]}, "tag": {"id": 9, "name": tag}}).to_string();
    let resp = app
        .post_systeme_event("CONTACT_TAG_ADDED", "after-erase", &body)
        .await;
    assert_eq!(json_body(resp).await["status"], "ignored");
    assert!(
        app.lead_row(&t.id, email).is_none(),
        "a callback brought the erased lead back"
    );
    // The person posting the form again is a new lead.
    assert_eq!(
        app.post_lead(&t.capture_token, &json!({"email": email}))
            .await
            .status(),
        201
    );
    let again = app.lead_row(&t.id, email).unwrap();
    assert_ne!(again.id, lead.id);
    assert_eq!(app.admin_view(&t.id).await.unwrap()["usage"]["leads"], 3);
}
