//! The tenant dashboard: stats after a scripted history, keyset pagination while leads arrive,
//! search, timeline, erasure, CSV export, settings, and who may call it.

use std::collections::BTreeSet;

use api_tests::{
    TestApp, TestTenant, admin_token, assert_problem, json_body, mint, now, spawn_app,
    spawn_app_with,
};
use domain::token::{Claims, Scope};
use serde_json::{Value, json};

async fn get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn delete(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn get_json(app: &TestApp, path: &str, t: &TestTenant) -> Value {
    let resp = get(app, path, &t.dashboard_token()).await;
    assert_eq!(resp.status(), 200, "{path}");
    json_body(resp).await
}

/// Posts a signed Systeme.io event built from parts.
async fn event(app: &TestApp, id: &str, name: &str, body: Value) {
    let resp = app.post_systeme_event(name, id, &body.to_string()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_body(resp).await["status"], "applied", "{id}");
}

async fn tag(app: &TestApp, id: &str, t: &TestTenant, email: &str, suffix: &str) {
    let name = format!("{}{suffix}", t.tag_prefix);
    event(
        app,
        id,
        "CONTACT_TAG_ADDED",
        json!({"contact": {"email": email, "tags": [{"id": 1, "name": name}]}, "tag": {"id": 1, "name": name}}),
    )
    .await;
}

#[tokio::test]
async fn stats_after_a_scripted_history_are_exact() {
    let app = spawn_app().await;
    let a = app.create_tenant("Stats A").await;
    let b = app.create_tenant("Stats B").await;
    let leads = [
        json!({"email": "l1@example.com", "ib_type": "forex-ib", "monthly_leads": "500+", "utm_source": "facebook"}),
        json!({"email": "l2@example.com", "ib_type": "forex-ib", "monthly_leads": "100-500", "utm_source": "facebook"}),
        json!({"email": "l3@example.com", "ib_type": "forex-ib", "monthly_leads": "0-100", "utm_source": "google"}),
        json!({"email": "l4@example.com", "ib_type": "crypto-affiliate", "monthly_leads": "500+"}),
        json!({"email": "l5@example.com"}),
    ];
    for lead in &leads {
        assert_eq!(app.post_lead(&a.capture_token, lead).await.status(), 201);
    }
    app.post_lead(&a.capture_token, &json!({"email": "l1@example.com"}))
        .await; // a repeat
    app.post_form(
        &a.capture_token,
        &[("email", "bot@example.com"), ("_gotcha", "x")],
    )
    .await;
    // B's activity must not show in A's numbers.
    for i in 0..2 {
        app.post_lead(
            &b.capture_token,
            &json!({"email": format!("b{i}@example.com"), "ib_type": "forex-ib"}),
        )
        .await;
    }
    tag(&app, "e1", &b, "b0@example.com", "converted").await;

    for (i, (email, suffix)) in [
        ("l1@example.com", "email-sent"),
        ("l2@example.com", "email-sent"),
        ("l3@example.com", "email-welcome"),
        ("l1@example.com", "email-opened"),
        ("l2@example.com", "engaged"),
        ("l1@example.com", "email-clicked"),
        ("l1@example.com", "converted"),
    ]
    .iter()
    .enumerate()
    {
        tag(&app, &format!("a{i}"), &a, email, suffix).await;
    }
    let sale = |id: i64| json!({"customer": {"email": "l1@example.com"}, "order": {"id": id, "totalPrice": 19_900}});
    event(&app, "s1", "SALE_NEW", sale(1)).await;
    event(&app, "s2", "SALE_NEW", sale(2)).await;
    // A cancellation's body is its own (the sale's body sent again is a copy of the sale).
    let mut cancellation = sale(2);
    cancellation["canceledAt"] = json!("2026-11-22T08:00:00+00:00");
    event(&app, "s3", "SALE_CANCELED", cancellation).await;

    let stats = get_json(&app, "/v1/dashboard/stats?days=7", &a).await;
    assert_eq!(stats["window"]["days"], 7);
    assert_eq!(
        stats["leads"],
        json!({"total": 5, "this_month": 5, "last_7_days": 5, "in_window": 5})
    );
    // l1 retained (two sales), l2 engaged, l3 nurturing, l4 and l5 new.
    assert_eq!(
        stats["stages"],
        json!({"new": 2, "nurturing": 1, "engaged": 1, "converted": 0, "retained": 1})
    );
    assert_eq!(
        stats["funnel"],
        json!({"capture": 5, "nurture": 3, "convert": 1, "retain": 1})
    );
    assert_eq!(
        stats["emails"],
        json!({"sent": 3, "opened": 2, "clicked": 1, "open_rate": 0.6667, "click_rate": 0.3333})
    );
    assert_eq!(
        stats["conversions"],
        json!({"rate": 0.2, "converted_leads": 1, "in_window": 1})
    );
    assert_eq!(stats["revenue_cents"], 19_900);
    assert_eq!(
        stats["sync"],
        json!({"synced": 5, "pending": 0, "failed": 0, "held": 0})
    );
    assert_eq!(stats["spam"], 1);
    assert_eq!(
        stats["breakdowns"]["ib_type"],
        json!([{"value": "forex-ib", "leads": 3}, {"value": null, "leads": 1}, {"value": "crypto-affiliate", "leads": 1}])
    );
    assert_eq!(
        stats["breakdowns"]["volume"],
        json!([{"value": "high", "leads": 2}, {"value": null, "leads": 1}, {"value": "low", "leads": 1}, {"value": "medium", "leads": 1}])
    );
    assert_eq!(
        stats["breakdowns"]["utm_source"],
        json!([{"value": null, "leads": 2}, {"value": "facebook", "leads": 2}, {"value": "google", "leads": 1}])
    );
    let daily = stats["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 7, "zero-filled");
    assert_eq!(
        daily[..6]
            .iter()
            .map(|d| d["leads"].as_i64().unwrap())
            .sum::<i64>(),
        0
    );
    assert_eq!(daily[6]["day"], stats["window"]["to"]);
    assert_eq!(
        daily[6],
        json!({"day": stats["window"]["to"], "leads": 5, "spam": 1, "emails_sent": 3, "emails_opened": 2,
               "emails_clicked": 1, "conversions": 1, "revenue_cents": 19_900})
    );
    // Defaults and validation.
    assert_eq!(
        get_json(&app, "/v1/dashboard/stats", &a).await["daily"]
            .as_array()
            .unwrap()
            .len(),
        30
    );
    for bad in ["0", "366", "week"] {
        let resp = get(
            &app,
            &format!("/v1/dashboard/stats?days={bad}"),
            &a.dashboard_token(),
        )
        .await;
        assert_problem(resp, 400, "invalid_query").await;
    }
    let b_stats = get_json(&app, "/v1/dashboard/stats?days=7", &b).await;
    assert_eq!(b_stats["leads"]["total"], 2);
    assert_eq!(b_stats["funnel"]["convert"], 1);
}

/// Every way a lead's stage, sync status, IB type, volume or source changes keeps the stats'
/// breakdowns (counts the triggers of migration 0012 maintain) equal to a recount of the rows.
#[tokio::test]
async fn breakdowns_equal_a_recount_after_every_kind_of_change() {
    let app = spawn_app_with(|spec| spec.with_env("SPIN_VARIABLE_SYSTEME_API_KEY", "")).await;
    let a = app.create_tenant("Facets A").await;
    let b = app.create_tenant("Facets B").await;
    for (i, lead) in [
        json!({"email": "f1@example.com", "ib_type": "forex-ib", "monthly_leads": "500+"}),
        json!({"email": "f2@example.com", "utm_source": "google"}),
        json!({"email": "f3@example.com", "ib_type": "crypto-affiliate", "monthly_leads": "0-100"}),
        json!({"email": "f4@example.com"}),
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(
            app.post_lead(&a.capture_token, lead).await.status(),
            201,
            "lead {i}"
        );
    }
    app.post_lead(
        &b.capture_token,
        &json!({"email": "f1@example.com", "ib_type": "forex-ib"}),
    )
    .await;
    // Repeat posts change the IB type and the volume, and give a source to a lead without one
    // (the first source stays).
    for lead in [
        json!({"email": "f1@example.com", "ib_type": "stocks-ib", "monthly_leads": "100-500"}),
        json!({"email": "f2@example.com", "utm_source": "facebook", "ib_type": "forex-ib"}),
        json!({"email": "f4@example.com", "utm_source": "newsletter"}),
    ] {
        assert_eq!(app.post_lead(&a.capture_token, &lead).await.status(), 200);
    }
    // Stages move through callbacks; the sync status through an operator batch (the key is
    // unset, so pending leads stay pending: no change) and an erasure removes one lead.
    tag(&app, "m1", &a, "f1@example.com", "engaged").await;
    tag(&app, "m2", &a, "f1@example.com", "converted").await;
    tag(&app, "m3", &a, "f3@example.com", "email-opened").await;
    let f4 = app
        .db()
        .query_row(
            "SELECT id FROM leads WHERE tenant_id = ? AND email = 'f4@example.com'",
            [&a.id],
            |r| r.get::<_, String>(0),
        )
        .unwrap();
    assert_eq!(
        delete(
            &app,
            &format!("/v1/dashboard/leads/{f4}"),
            &a.dashboard_token()
        )
        .await
        .status(),
        204
    );

    let stats = get_json(&app, "/v1/dashboard/stats?days=7", &a).await;
    let recount = |column: &str| -> Value {
        let conn = app.db();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {column}, COUNT(*) FROM leads WHERE tenant_id = ? GROUP BY {column}"
            ))
            .unwrap();
        let mut counts: Vec<(Option<String>, i64)> = stmt
            .query_map([&a.id], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        counts.sort();
        json!(counts)
    };
    let shown = |list: &Value| -> Value {
        let mut counts: Vec<(Option<String>, i64)> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["value"].as_str().map(String::from),
                    e["leads"].as_i64().unwrap(),
                )
            })
            .collect();
        counts.sort();
        json!(counts)
    };
    for (facet, column) in [
        ("ib_type", "ib_type"),
        ("volume", "volume"),
        ("utm_source", "utm_source"),
    ] {
        assert_eq!(
            shown(&stats["breakdowns"][facet]),
            recount(column),
            "{facet}"
        );
    }
    assert_eq!(
        recount("ib_type"),
        json!([["crypto-affiliate", 1], ["forex-ib", 1], ["stocks-ib", 1]])
    );
    let stages = recount("stage");
    for pair in stages.as_array().unwrap() {
        assert_eq!(
            stats["stages"][pair[0].as_str().unwrap()],
            pair[1],
            "{stages}"
        );
    }
    let synced = recount("sync_status");
    for pair in synced.as_array().unwrap() {
        assert_eq!(
            stats["sync"][pair[0].as_str().unwrap()],
            pair[1],
            "{synced}"
        );
    }
    assert_eq!(stats["leads"]["total"], 3);
}

#[tokio::test]
async fn pages_through_hundreds_of_leads_without_repeats_or_gaps_while_leads_arrive() {
    let app = spawn_app_with(|spec| {
        spec.with_env("SPIN_VARIABLE_SYSTEME_API_KEY", "")
            .with_env("SPIN_VARIABLE_CAPTURE_RATE_LIMIT", "100000")
    })
    .await;
    let t = app.create_tenant("Pages Ib").await;
    let posts: Vec<(String, Value)> = (0..260)
        .map(|i| {
            (
                t.capture_token.clone(),
                json!({"email": format!("p{i}@example.com")}),
            )
        })
        .collect();
    let original: BTreeSet<String> = app.post_leads(&posts).await.into_iter().collect();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/dashboard/leads?limit=37&cursor={c}"),
            None => "/v1/dashboard/leads?limit=37".to_string(),
        };
        let page = get_json(&app, &path, &t).await;
        let leads = page["leads"].as_array().unwrap();
        assert!(leads.len() <= 37);
        seen.extend(leads.iter().map(|l| l["id"].as_str().unwrap().to_string()));
        // New leads keep arriving between pages.
        app.post_lead(
            &t.capture_token,
            &json!({"email": format!("late{pages}@example.com")}),
        )
        .await;
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 8, "260 leads in pages of 37");
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no lead twice");
    assert_eq!(
        unique, original,
        "every lead, and only those that existed at the start"
    );
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
    for bad in ["limit=0", "limit=201", "cursor=bm9wZQ", "stage=vip"] {
        let resp = get(
            &app,
            &format!("/v1/dashboard/leads?{bad}"),
            &t.dashboard_token(),
        )
        .await;
        assert_problem(resp, 400, "invalid_query").await;
    }
}

#[tokio::test]
async fn search_and_stage_filter_the_list() {
    let app = spawn_app().await;
    let t = app.create_tenant("Search Ib").await;
    for (email, name) in [
        ("ana.silva@example.com", "Ana Silva"),
        ("bruno@example.com", "Bruno Costa"),
        ("carla@silva.example", "Carla"),
        ("100%@example.com", "Percent"),
    ] {
        app.post_lead(&t.capture_token, &json!({"email": email, "name": name}))
            .await;
    }
    tag(&app, "e1", &t, "bruno@example.com", "email-opened").await;
    let emails = |page: &Value| -> BTreeSet<String> {
        page["leads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["email"].as_str().unwrap().to_string())
            .collect()
    };
    let page = get_json(&app, "/v1/dashboard/leads?q=SILVA", &t).await;
    assert_eq!(
        emails(&page),
        BTreeSet::from(["ana.silva@example.com".into(), "carla@silva.example".into()])
    );
    let page = get_json(&app, "/v1/dashboard/leads?q=costa", &t).await;
    assert_eq!(emails(&page), BTreeSet::from(["bruno@example.com".into()]));
    let page = get_json(&app, "/v1/dashboard/leads?q=%25", &t).await;
    assert_eq!(
        emails(&page),
        BTreeSet::from(["100%@example.com".into()]),
        "% is literal"
    );
    let page = get_json(&app, "/v1/dashboard/leads?stage=engaged", &t).await;
    assert_eq!(emails(&page), BTreeSet::from(["bruno@example.com".into()]));
    let page = get_json(&app, "/v1/dashboard/leads?stage=engaged&q=ana", &t).await;
    assert!(emails(&page).is_empty());
    let page = get_json(&app, "/v1/dashboard/leads?stage=new", &t).await;
    assert_eq!(
        emails(&page),
        BTreeSet::from([
            "ana.silva@example.com".into(),
            "carla@silva.example".into(),
            "100%@example.com".into()
        ])
    );
    // A stage other than `new` pages through its own index: newest first, then the end.
    tag(&app, "e2", &t, "carla@silva.example", "email-opened").await;
    let first = get_json(&app, "/v1/dashboard/leads?stage=engaged&limit=1", &t).await;
    assert_eq!(
        emails(&first),
        BTreeSet::from(["carla@silva.example".into()])
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    let path = format!("/v1/dashboard/leads?stage=engaged&limit=1&cursor={cursor}");
    let second = get_json(&app, &path, &t).await;
    assert_eq!(
        emails(&second),
        BTreeSet::from(["bruno@example.com".into()])
    );
    assert!(second["next_cursor"].is_null());
}

#[tokio::test]
async fn a_lead_shows_its_timeline_and_erasing_it_removes_everything() {
    let app = spawn_app().await;
    let a = app.create_tenant("Erase A").await;
    let b = app.create_tenant("Erase B").await;
    let resp = app
        .post_lead(
            &a.capture_token,
            &json!({"email": "gdpr@example.com", "name": "Gus", "form": "landing"}),
        )
        .await;
    let id = json_body(resp).await["id"].as_str().unwrap().to_string();
    tag(&app, "e1", &a, "gdpr@example.com", "email-opened").await;
    // A repeat post changes the lead's form, not what its first entry says it was captured by.
    let resp = app
        .post_lead(
            &a.capture_token,
            &json!({"email": "gdpr@example.com", "form": "webinar"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let lead = get_json(&app, &format!("/v1/dashboard/leads/{id}"), &a).await;
    assert_eq!(
        (
            lead["email"].as_str(),
            lead["stage"].as_str(),
            lead["emails_opened"].as_i64()
        ),
        (Some("gdpr@example.com"), Some("engaged"), Some(1))
    );
    let kinds: Vec<&str> = lead["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["captured", "tag_added"]);
    let first = &lead["timeline"][0];
    assert_eq!(
        (first["detail"]["form"].as_str(), first["at"].as_str()),
        (Some("landing"), lead["created_at"].as_str())
    );
    assert_eq!(
        lead["timeline"][1]["detail"]["tag"],
        format!("{}email-opened", a.tag_prefix)
    );

    // B cannot see or erase it: exactly like a missing id.
    let path = format!("/v1/dashboard/leads/{id}");
    assert_problem(
        get(&app, &path, &b.dashboard_token()).await,
        404,
        "lead_not_found",
    )
    .await;
    let resp = delete(&app, &path, &b.dashboard_token()).await;
    assert_problem(resp, 404, "lead_not_found").await;
    assert_problem(
        get(&app, "/v1/dashboard/leads/not-a-lead", &a.dashboard_token()).await,
        404,
        "lead_not_found",
    )
    .await;

    let resp = delete(&app, &path, &a.dashboard_token()).await;
    assert_eq!(resp.status(), 204);
    assert_problem(
        get(&app, &path, &a.dashboard_token()).await,
        404,
        "lead_not_found",
    )
    .await;
    let resp = delete(&app, &path, &a.dashboard_token()).await;
    assert_problem(resp, 404, "lead_not_found").await;
    let events: i64 = app
        .db()
        .query_row(
            "SELECT COUNT(*) FROM lead_events WHERE lead_id = ?",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(events, 0, "the timeline is erased with the lead");
    assert!(app.lead_row(&a.id, "gdpr@example.com").is_none());
    let stats = get_json(&app, "/v1/dashboard/stats", &a).await;
    assert_eq!(
        (
            stats["leads"]["total"].as_i64(),
            stats["stages"]["engaged"].as_i64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(
        app.admin_view(&a.id).await.unwrap()["usage"]["leads"],
        1,
        "the quota counts leads captured: erasing one does not give its place back"
    );
}

#[tokio::test]
async fn the_csv_export_is_tenant_scoped_quoted_and_formula_safe() {
    let app = spawn_app().await;
    let a = app.create_tenant("Csv A").await;
    let b = app.create_tenant("Csv B").await;
    app.post_lead(&a.capture_token, &json!({"email": "x1@example.com", "name": "=HYPERLINK(\"http://evil\",\"click\")", "phone": "+351 912 345 678"})).await;
    app.post_lead(
        &a.capture_token,
        &json!({"email": "x2@example.com", "name": "Smith, \"Jo\"", "broker_network": "@SUM(A1)"}),
    )
    .await;
    app.post_lead(&b.capture_token, &json!({"email": "b-only@example.com"}))
        .await;
    let resp = get(&app, "/v1/dashboard/leads.csv", &a.dashboard_token()).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("leads.csv")
    );
    let body = resp.text().await.unwrap();
    assert!(!body.contains("b-only@example.com"), "tenant-scoped");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[1], "email");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let x1 = rows
        .iter()
        .find(|r| &r[col("email")] == "x1@example.com")
        .unwrap();
    assert_eq!(&x1[col("name")], "'=HYPERLINK(\"http://evil\",\"click\")");
    assert_eq!(&x1[col("phone")], "'+351 912 345 678");
    let x2 = rows
        .iter()
        .find(|r| &r[col("email")] == "x2@example.com")
        .unwrap();
    assert_eq!(
        &x2[col("name")],
        "Smith, \"Jo\"",
        "quoted by the CSV writer, read back intact"
    );
    assert_eq!(&x2[col("broker_network")], "'@SUM(A1)");
    assert_eq!(&x2[col("tags")], format!("{}demo-request", a.tag_prefix));
}

#[tokio::test]
async fn a_large_export_streams_every_lead_once() {
    let app = spawn_app_with(|spec| {
        spec.with_env("SPIN_VARIABLE_SYSTEME_API_KEY", "")
            .with_env("SPIN_VARIABLE_CAPTURE_RATE_LIMIT", "100000")
    })
    .await;
    let t = app.create_tenant("Export Ib").await;
    let posts: Vec<(String, Value)> = (0..450)
        .map(|i| {
            (
                t.capture_token.clone(),
                json!({"email": format!("e{i}@example.com")}),
            )
        })
        .collect();
    app.post_leads(&posts).await;
    let body = get(&app, "/v1/dashboard/leads.csv", &t.dashboard_token())
        .await
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let emails: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[1].to_string())
        .collect();
    assert_eq!(emails.len(), 450, "three pages of 200, streamed");
    assert_eq!(emails.iter().collect::<BTreeSet<_>>().len(), 450);
}

#[tokio::test]
async fn settings_round_trip_and_refuse_bad_values() {
    let app = spawn_app().await;
    let t = app.create_tenant("Settings Ib").await;
    let settings = |mut answer: Value| {
        let effective = answer
            .as_object_mut()
            .unwrap()
            .remove("effective_tag_rules")
            .unwrap();
        (answer, effective)
    };
    let (first, effective) = settings(get_json(&app, "/v1/dashboard/settings", &t).await);
    assert_eq!(
        first,
        json!({"allowed_origins": [], "thank_you_url": null, "tag_rules": {}, "funnel_ids": [], "sync_requires_consent": false, "captcha": null, "min_fill_seconds": 0})
    );
    assert_eq!(
        effective["email-opened"], "email_opened",
        "the built-in rules"
    );
    let wanted = json!({
        "allowed_origins": ["https://lp.example.com", "http://localhost:8080"],
        "thank_you_url": "https://lp.example.com/thanks",
        "tag_rules": {"webinar-*": "email_clicked"},
        "funnel_ids": [],
        "sync_requires_consent": true,
        "captcha": null,
        "min_fill_seconds": 0
    });
    let put = |body: String| {
        app.client
            .put(app.url("/v1/dashboard/settings"))
            .bearer_auth(t.dashboard_token())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let resp = put(wanted.to_string()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(settings(json_body(resp).await).0, wanted);
    let (answer, effective) = settings(get_json(&app, "/v1/dashboard/settings", &t).await);
    assert_eq!(answer, wanted);
    assert_eq!(
        (&effective["webinar-*"], &effective["converted"]),
        (&json!("email_clicked"), &json!("converted")),
        "the tenant's rule beside the built-in ones"
    );
    // A GET's answer may be sent back whole.
    let whole = get_json(&app, "/v1/dashboard/settings", &t).await;
    assert_eq!(put(whole.to_string()).await.unwrap().status(), 200);
    for (body, status, code) in [
        (
            json!({"allowed_origins": ["lp.example.com"]}).to_string(),
            422,
            "invalid_field",
        ),
        (
            json!({"allowed_origins": ["https://x.example/path"]}).to_string(),
            422,
            "invalid_field",
        ),
        (
            json!({"thank_you_url": "http://lp.example.com"}).to_string(),
            422,
            "invalid_field",
        ),
        (
            json!({"tag_rules": {"x": "teleport"}}).to_string(),
            422,
            "invalid_field",
        ),
        (
            json!({"funnel_ids": [801]}).to_string(),
            422,
            "funnel_ids_read_only",
        ),
        (
            json!({"sync_requires_consent": "yes"}).to_string(),
            422,
            "invalid_field",
        ),
        (json!({"colour": "red"}).to_string(), 400, "invalid_json"),
        ("{".to_string(), 400, "invalid_json"),
    ] {
        assert_problem(put(body.clone()).await.unwrap(), status, code).await;
    }
    assert_eq!(
        settings(get_json(&app, "/v1/dashboard/settings", &t).await).0,
        wanted,
        "refused PUTs change nothing"
    );
}

#[tokio::test]
async fn attribution_fields_are_stored_shown_on_the_lead_and_exported() {
    let app = spawn_app().await;
    let t = app.create_tenant("Attribution Ib").await;
    put_settings(
        &app,
        &t,
        json!({"thank_you_url": "https://lp.example.com/thanks"}),
    )
    .await;
    let first = json!({
        "email": "ada@example.com", "utm_source": "google", "utm_term": "forex ib program",
        "utm_content": "hero-banner", "gclid": "Cj0KCQiA-gclid", "fbclid": "IwAR-fbclid",
        "ttclid": "E.C.P.ttclid", "referrer": "https://www.google.com/search?q=ib",
    });
    let resp = app.post_lead(&t.capture_token, &first).await;
    assert_eq!(resp.status(), 201);
    let answer = json_body(resp).await;
    assert_eq!(
        answer["thank_you_url"], "https://lp.example.com/thanks",
        "a script's answer names where to send the visitor"
    );
    let id = answer["id"].as_str().unwrap().to_string();
    // A repeat post keeps the first touch and fills only what is still empty.
    app.post_form(
        &t.capture_token,
        &[
            ("email", "ada@example.com"),
            ("utm_term", "second touch"),
            ("gclid", "other"),
            ("referrer", "https://www.bing.com/"),
        ],
    )
    .await;
    let lead = get_json(&app, &format!("/v1/dashboard/leads/{id}"), &t).await;
    for (field, value) in [
        ("utm_term", "forex ib program"),
        ("utm_content", "hero-banner"),
        ("gclid", "Cj0KCQiA-gclid"),
        ("fbclid", "IwAR-fbclid"),
        ("ttclid", "E.C.P.ttclid"),
        ("referrer", "https://www.google.com/search?q=ib"),
    ] {
        assert_eq!(lead[field], value, "{field} on the lead");
    }
    let page = get_json(&app, "/v1/dashboard/leads", &t).await;
    assert_eq!(
        page["leads"][0]["gclid"], "Cj0KCQiA-gclid",
        "in the list too"
    );
    assert_eq!(
        get(&app, "/v1/dashboard/leads.csv", &t.dashboard_token())
            .await
            .status(),
        200
    );
    let body = get(&app, "/v1/dashboard/leads.csv", &t.dashboard_token())
        .await
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let row = reader.records().next().unwrap().unwrap();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column"))
    };
    assert_eq!(&row[col("utm_term")], "forex ib program");
    assert_eq!(&row[col("utm_content")], "hero-banner");
    assert_eq!(&row[col("ttclid")], "E.C.P.ttclid");
    assert_eq!(&row[col("referrer")], "https://www.google.com/search?q=ib");
    // Bounded and checked like the other fields.
    let long = "x".repeat(201);
    let resp = app
        .post_lead(
            &t.capture_token,
            &json!({"email": "bob@example.com", "utm_content": long}),
        )
        .await;
    assert_problem(resp, 422, "invalid_field").await;
    let resp = app
        .post_lead(
            &t.capture_token,
            &json!({"email": "bob@example.com", "referrer": "javascript:alert(1)"}),
        )
        .await;
    assert_problem(resp, 422, "invalid_field").await;
}

#[tokio::test]
async fn the_csv_export_follows_the_lists_stage_and_search_filters() {
    let app = spawn_app().await;
    let t = app.create_tenant("Csv Filter Ib").await;
    for (email, name) in [
        ("ana.silva@example.com", "Ana Silva"),
        ("bruno@example.com", "Bruno Silva"),
        ("carla@example.com", "Carla Costa"),
    ] {
        app.post_lead(&t.capture_token, &json!({"email": email, "name": name}))
            .await;
    }
    tag(&app, "csv-e1", &t, "bruno@example.com", "email-opened").await;
    let exported = |query: &'static str| {
        let app = &app;
        let t = &t;
        async move {
            let resp = get(
                app,
                &format!("/v1/dashboard/leads.csv{query}"),
                &t.dashboard_token(),
            )
            .await;
            assert_eq!(resp.status(), 200, "{query}");
            let body = resp.text().await.unwrap();
            let mut reader = csv::Reader::from_reader(body.as_bytes());
            reader
                .records()
                .map(|r| r.unwrap()[1].to_string())
                .collect::<BTreeSet<String>>()
        }
    };
    let set = |emails: &[&str]| {
        emails
            .iter()
            .map(|e| (*e).to_string())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        exported("").await,
        set(&[
            "ana.silva@example.com",
            "bruno@example.com",
            "carla@example.com"
        ])
    );
    assert_eq!(
        exported("?q=silva").await,
        set(&["ana.silva@example.com", "bruno@example.com"])
    );
    assert_eq!(
        exported("?stage=engaged").await,
        set(&["bruno@example.com"])
    );
    assert_eq!(
        exported("?stage=new&q=silva").await,
        set(&["ana.silva@example.com"])
    );
    assert_problem(
        get(
            &app,
            "/v1/dashboard/leads.csv?stage=vip",
            &t.dashboard_token(),
        )
        .await,
        400,
        "invalid_query",
    )
    .await;
}

async fn put_settings(app: &TestApp, t: &TestTenant, body: Value) {
    let resp = app
        .client
        .put(app.url("/v1/dashboard/settings"))
        .bearer_auth(t.dashboard_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_tenant_that_syncs_only_consented_leads_holds_the_others_until_they_consent() {
    let app = spawn_app().await;
    let a = app.create_tenant("Consent A").await;
    let b = app.create_tenant("Consent B").await;
    // Off by default: a lead without consent is synced, as it always was.
    app.post_lead(&a.capture_token, &json!({"email": "before@example.com"}))
        .await;
    assert_eq!(
        app.lead_row(&a.id, "before@example.com")
            .unwrap()
            .sync_status,
        "synced"
    );
    put_settings(&app, &a, json!({"sync_requires_consent": true})).await;
    assert_eq!(
        get_json(&app, "/v1/dashboard/settings", &a).await["sync_requires_consent"],
        true
    );
    assert_eq!(
        get_json(&app, "/v1/dashboard/settings", &b).await["sync_requires_consent"],
        false,
        "A's rule is A's alone"
    );
    app.systeme.clear_calls();
    let resp = app
        .post_lead(&a.capture_token, &json!({"email": "nope@example.com"}))
        .await;
    assert_eq!(resp.status(), 201, "stored, and the visitor sees success");
    let held_id = json_body(resp).await["id"].as_str().unwrap().to_string();
    app.post_lead(
        &a.capture_token,
        &json!({"email": "yes@example.com", "consent": true}),
    )
    .await;
    app.post_lead(&b.capture_token, &json!({"email": "b-nope@example.com"}))
        .await;
    assert_eq!(
        app.lead_row(&a.id, "nope@example.com").unwrap().sync_status,
        "held"
    );
    assert_eq!(
        app.lead_row(&a.id, "yes@example.com").unwrap().sync_status,
        "synced"
    );
    assert_eq!(
        app.lead_row(&b.id, "b-nope@example.com")
            .unwrap()
            .sync_status,
        "synced",
        "B syncs every lead"
    );
    let lead = get_json(&app, &format!("/v1/dashboard/leads/{held_id}"), &a).await;
    assert_eq!(
        (&lead["sync_status"], &lead["held_for"], &lead["consent"]),
        (&json!("held"), &json!("consent"), &json!(false))
    );
    let stats = get_json(&app, "/v1/dashboard/stats", &a).await;
    assert_eq!(stats["sync"]["held"], 1, "{stats}");
    // The admin batch leaves it alone.
    let report = app.run_sync("?ignore_backoff=true&retry_failed=true").await;
    assert_eq!(report["attempted"], 0, "{report}");
    assert!(
        !app.systeme
            .calls()
            .iter()
            .any(|c| c.body.to_string().contains("\"nope@example.com\"")
                || c.query.iter().any(|(_, v)| v == "nope@example.com")),
        "nothing about the held lead reached Systeme.io"
    );
    // A later post that consents releases it at once.
    let resp = app
        .post_lead(
            &a.capture_token,
            &json!({"email": "nope@example.com", "consent": "on"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        app.lead_row(&a.id, "nope@example.com").unwrap().sync_status,
        "synced"
    );
    let lead = get_json(&app, &format!("/v1/dashboard/leads/{held_id}"), &a).await;
    assert_eq!(
        (&lead["held_for"], &lead["consent"]),
        (&json!(null), &json!(true))
    );
    // Turning the rule off queues the leads it held.
    app.post_lead(&a.capture_token, &json!({"email": "later@example.com"}))
        .await;
    assert_eq!(
        app.lead_row(&a.id, "later@example.com")
            .unwrap()
            .sync_status,
        "held"
    );
    put_settings(&app, &a, json!({"sync_requires_consent": false})).await;
    assert_eq!(
        app.lead_row(&a.id, "later@example.com")
            .unwrap()
            .sync_status,
        "pending"
    );
    let report = app.run_sync("").await;
    assert_eq!(report["synced"], 1, "{report}");
    assert_eq!(
        app.lead_row(&a.id, "later@example.com")
            .unwrap()
            .sync_status,
        "synced"
    );
}

#[tokio::test]
async fn a_failed_lead_is_queued_again_from_the_dashboard_and_others_are_refused() {
    let app = spawn_app().await;
    let t = app.create_tenant("Retry Ib").await;
    // The account lacks the custom fields: the contact is refused and the lead fails at once.
    app.systeme.set_custom_fields(Some(&[]));
    let resp = app
        .post_lead(&t.capture_token, &json!({"email": "kai@example.com"}))
        .await;
    let id = json_body(resp).await["id"].as_str().unwrap().to_string();
    let lead = get_json(&app, &format!("/v1/dashboard/leads/{id}"), &t).await;
    assert_eq!(lead["sync_status"], "failed");
    assert!(
        lead["sync_error"]
            .as_str()
            .is_some_and(|e| e.contains("clientflow_tenant_id")),
        "the lead says why: {lead}"
    );
    let retry = |id: String| {
        let app = &app;
        let token = t.dashboard_token();
        async move {
            app.client
                .post(app.url(&format!("/v1/dashboard/leads/{id}/retry")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    app.systeme.set_custom_fields(None);
    let resp = retry(id.clone()).await;
    assert_eq!(resp.status(), 200);
    let queued = json_body(resp).await;
    assert_eq!(
        (&queued["sync_status"], &queued["sync_attempts"]),
        (&json!("pending"), &json!(0))
    );
    let report = app.run_sync("").await;
    assert_eq!(report["synced"], 1, "due at once: {report}");
    assert_eq!(
        app.lead_row(&t.id, "kai@example.com").unwrap().sync_status,
        "synced"
    );
    assert_problem(retry(id.clone()).await, 409, "lead_not_failed").await;
    assert_problem(
        retry("0190b2c4-0000-7000-8000-000000000000".into()).await,
        404,
        "lead_not_found",
    )
    .await;
    assert_problem(retry("not-an-id".into()).await, 404, "lead_not_found").await;
}

/// Every dashboard route, with a method and a sample path.
pub fn dashboard_routes(lead_id: &str) -> Vec<(reqwest::Method, String)> {
    use reqwest::Method;
    vec![
        (Method::GET, "/v1/dashboard/stats".into()),
        (Method::GET, "/v1/dashboard/me".into()),
        (Method::GET, "/v1/dashboard/leads".into()),
        (Method::GET, format!("/v1/dashboard/leads/{lead_id}")),
        (Method::DELETE, format!("/v1/dashboard/leads/{lead_id}")),
        (Method::POST, format!("/v1/dashboard/leads/{lead_id}/retry")),
        (Method::GET, "/v1/dashboard/leads.csv".into()),
        (Method::GET, "/v1/dashboard/settings".into()),
        (Method::PUT, "/v1/dashboard/settings".into()),
        (Method::GET, "/v1/dashboard/capture-key".into()),
        (Method::POST, "/v1/dashboard/capture-key".into()),
    ]
}

#[tokio::test]
async fn every_dashboard_route_wants_a_live_dashboard_token() {
    let app = spawn_app().await;
    let t = app.create_tenant("Guard Ib").await;
    let resp = app
        .post_lead(&t.capture_token, &json!({"email": "kept@example.com"}))
        .await;
    let id = json_body(resp).await["id"].as_str().unwrap().to_string();
    let expired = mint(&Claims {
        sub: Some(t.id.clone()),
        scope: Scope::Dashboard,
        exp: Some(now() - 120),
        generation: None,
    });
    for (method, path) in dashboard_routes(&id) {
        let send = |token: Option<String>| {
            let mut req = app
                .client
                .request(method.clone(), app.url(&path))
                .json(&json!({}));
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            req.send()
        };
        assert_problem(send(None).await.unwrap(), 401, "token_missing").await;
        assert_problem(
            send(Some(expired.clone())).await.unwrap(),
            401,
            "token_expired",
        )
        .await;
        assert_problem(
            send(Some(t.capture_token.clone())).await.unwrap(),
            403,
            "token_scope",
        )
        .await;
        // An admin token is signed with admin_token_secret, which the dashboard does not hold.
        assert_problem(
            send(Some(admin_token())).await.unwrap(),
            401,
            "token_signature",
        )
        .await;
    }
    assert!(
        app.lead_row(&t.id, "kept@example.com").is_some(),
        "no refused DELETE erased anything"
    );
}

/// Seeds one day of a tenant's rollup (a day no request can reach in a test's lifetime).
fn seed_rollup(app: &TestApp, tenant: &str, day: &str, leads: i64, conversions: i64) {
    app.db_rw()
        .execute(
            "INSERT INTO daily_rollups (tenant_id, day, leads, conversions, revenue_cents)
             VALUES (?1, ?2, ?3, ?4, 0)",
            rusqlite::params![tenant, day, leads, conversions],
        )
        .unwrap();
}

#[tokio::test]
async fn a_custom_range_is_compared_with_the_period_before_it() {
    let app = spawn_app().await;
    let a = app.create_tenant("Range A").await;
    let b = app.create_tenant("Range B").await;
    // The window 2026-03-11..2026-03-20 and the ten days before it.
    seed_rollup(&app, &a.id, "2026-03-01", 2, 0);
    seed_rollup(&app, &a.id, "2026-03-10", 1, 1);
    seed_rollup(&app, &a.id, "2026-03-11", 4, 2);
    seed_rollup(&app, &a.id, "2026-03-20", 3, 0);
    seed_rollup(&app, &a.id, "2026-03-21", 50, 50);
    seed_rollup(&app, &a.id, "2026-02-28", 70, 70);
    // B's days, inside both windows, count for B alone.
    seed_rollup(&app, &b.id, "2026-03-05", 9, 9);
    seed_rollup(&app, &b.id, "2026-03-15", 9, 9);

    let stats = get_json(
        &app,
        "/v1/dashboard/stats?from=2026-03-11&to=2026-03-20",
        &a,
    )
    .await;
    assert_eq!(
        stats["window"],
        json!({"days": 10, "from": "2026-03-11", "to": "2026-03-20"})
    );
    assert_eq!(stats["daily"].as_array().unwrap().len(), 10);
    assert_eq!(stats["leads"]["in_window"], 7);
    assert_eq!(
        (&stats["period"]["leads"], &stats["period"]["conversions"]),
        (&json!(7), &json!(2))
    );
    assert_eq!(
        (
            &stats["previous"]["from"],
            &stats["previous"]["to"],
            &stats["previous"]["days"]
        ),
        (&json!("2026-03-01"), &json!("2026-03-10"), &json!(10))
    );
    assert_eq!(
        (
            &stats["previous"]["leads"],
            &stats["previous"]["conversions"]
        ),
        (&json!(3), &json!(1))
    );
    // A `days` window is compared the same way: the days just before it.
    let week = get_json(&app, "/v1/dashboard/stats?days=7", &a).await;
    assert_eq!(week["previous"]["days"], 7);
    assert_eq!(week["period"]["from"], week["window"]["from"]);
    let b_stats = get_json(
        &app,
        "/v1/dashboard/stats?from=2026-03-11&to=2026-03-20",
        &b,
    )
    .await;
    assert_eq!(
        (&b_stats["period"]["leads"], &b_stats["previous"]["leads"]),
        (&json!(9), &json!(9))
    );

    // Ranges that make no window are 422; values that are no date are 400.
    for bad in [
        "from=2026-03-20&to=2026-03-11",
        "from=2026-01-01&to=2027-01-01",
        "from=2026-03-11",
        "to=2026-03-11",
        "days=7&from=2026-03-11&to=2026-03-20",
    ] {
        let resp = get(
            &app,
            &format!("/v1/dashboard/stats?{bad}"),
            &a.dashboard_token(),
        )
        .await;
        assert_problem(resp, 422, "invalid_range").await;
    }
    let longest = get_json(
        &app,
        "/v1/dashboard/stats?from=2026-01-01&to=2026-12-31",
        &a,
    )
    .await;
    assert_eq!(longest["window"]["days"], 365);
    for bad in [
        "from=2026-3-11&to=2026-03-20",
        "from=2026-03-11&to=2026-02-30",
    ] {
        let resp = get(
            &app,
            &format!("/v1/dashboard/stats?{bad}"),
            &a.dashboard_token(),
        )
        .await;
        assert_problem(resp, 400, "invalid_query").await;
    }
}

#[tokio::test]
async fn sales_are_summed_per_currency_as_sold_on_the_stats_and_the_lead() {
    let app = spawn_app().await;
    let a = app.create_tenant("Money A").await;
    let b = app.create_tenant("Money B").await;
    for email in ["eur@example.com", "usd@example.com"] {
        app.post_lead(&a.capture_token, &json!({ "email": email }))
            .await;
    }
    app.post_lead(&b.capture_token, &json!({"email": "b@example.com"}))
        .await;
    let sale = |email: &str, order: i64, cents: i64, currency: &str| {
        json!({"customer": {"email": email}, "order": {"id": order, "totalPrice": cents},
               "pricePlan": {"amount": cents, "currency": currency}})
    };
    event(
        &app,
        "m1",
        "SALE_NEW",
        sale("eur@example.com", 11, 19_900, "eur"),
    )
    .await;
    event(
        &app,
        "m2",
        "SALE_NEW",
        sale("eur@example.com", 12, 4_900, "eur"),
    )
    .await;
    event(
        &app,
        "m3",
        "SALE_NEW",
        sale("usd@example.com", 13, 9_900, "usd"),
    )
    .await;
    let mut cancellation = sale("eur@example.com", 12, 4_900, "eur");
    cancellation["canceledAt"] = json!("2026-11-22T08:00:00+00:00");
    event(&app, "m4", "SALE_CANCELED", cancellation).await;
    event(
        &app,
        "m5",
        "SALE_NEW",
        sale("b@example.com", 14, 100_000, "eur"),
    )
    .await;

    let stats = get_json(&app, "/v1/dashboard/stats?days=7", &a).await;
    assert_eq!(
        stats["period"]["revenue"],
        json!([{"currency": "EUR", "cents": 19_900}, {"currency": "USD", "cents": 9_900}])
    );
    assert_eq!(stats["previous"]["revenue"], json!([]));
    let page = get_json(&app, "/v1/dashboard/leads?q=eur%40", &a).await;
    let id = page["leads"][0]["id"].as_str().unwrap().to_string();
    let lead = get_json(&app, &format!("/v1/dashboard/leads/{id}"), &a).await;
    assert_eq!(
        lead["revenue"],
        json!([{"currency": "EUR", "cents": 19_900}])
    );
    let b_stats = get_json(&app, "/v1/dashboard/stats?days=7", &b).await;
    assert_eq!(
        b_stats["period"]["revenue"],
        json!([{"currency": "EUR", "cents": 100_000}])
    );
}

#[tokio::test]
async fn the_list_filters_and_sorts_by_capture_both_ways_and_the_csv_follows() {
    let app = spawn_app().await;
    let a = app.create_tenant("Filter A").await;
    let b = app.create_tenant("Filter B").await;
    let mut ids = Vec::new();
    for lead in [
        json!({"email": "f1@example.com", "ib_type": "forex-ib", "utm_source": "google"}),
        json!({"email": "f2@example.com", "ib_type": "forex-ib", "utm_source": "facebook", "monthly_leads": "500+"}),
        json!({"email": "f3@example.com", "ib_type": "crypto-affiliate", "utm_source": "google"}),
        json!({"email": "f4@example.com"}),
    ] {
        let resp = app.post_lead(&a.capture_token, &lead).await;
        ids.push(json_body(resp).await["id"].as_str().unwrap().to_string());
    }
    // B holds the same values; none of its leads may show in A's list.
    app.post_lead(
        &b.capture_token,
        &json!({"email": "fb@example.com", "ib_type": "forex-ib", "utm_source": "google"}),
    )
    .await;
    tag(&app, "f-e1", &a, "f3@example.com", "webinar").await;
    tag(&app, "f-e2", &b, "fb@example.com", "webinar").await;
    app.db_rw()
        .execute(
            "UPDATE leads SET sync_status = 'failed' WHERE tenant_id = ?1 AND email = 'f2@example.com'",
            [&a.id],
        )
        .unwrap();
    let emails = |page: &Value| -> Vec<String> {
        page["leads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["email"].as_str().unwrap().to_string())
            .collect()
    };
    let listed = |query: String| {
        let app = &app;
        let a = &a;
        async move {
            let page = get_json(app, &format!("/v1/dashboard/leads?{query}"), a).await;
            let mut got = emails(&page);
            got.sort();
            got
        }
    };
    let webinar = format!("{}webinar", a.tag_prefix);
    for (query, want) in [
        ("ib_type=forex-ib".to_string(), vec!["f1", "f2"]),
        ("utm_source=google".to_string(), vec!["f1", "f3"]),
        ("volume=high".to_string(), vec!["f2"]),
        ("sync=failed".to_string(), vec!["f2"]),
        (
            "sync=synced&utm_source=google".to_string(),
            vec!["f1", "f3"],
        ),
        (format!("tag={webinar}"), vec!["f3"]),
        ("source=systeme".to_string(), vec![]),
        (
            "source=capture&ib_type=crypto-affiliate".to_string(),
            vec!["f3"],
        ),
        ("from=2000-01-01&to=2000-12-31".to_string(), vec![]),
        ("from=2000-01-01".to_string(), vec!["f1", "f2", "f3", "f4"]),
        (format!("tag={}webinar", b.tag_prefix), vec![]),
    ] {
        let want: Vec<String> = want.iter().map(|e| format!("{e}@example.com")).collect();
        assert_eq!(listed(query.clone()).await, want, "{query}");
    }

    // By capture, both ways, page by page.
    let mut newest_first = ids.clone();
    newest_first.sort();
    newest_first.reverse();
    for (sort, want) in [
        ("newest", newest_first.clone()),
        ("oldest", newest_first.iter().rev().cloned().collect()),
    ] {
        let mut got = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = get_json(
                &app,
                &format!("/v1/dashboard/leads?sort={sort}&limit=3&cursor={cursor}"),
                &a,
            )
            .await;
            got.extend(
                page["leads"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["id"].as_str().unwrap().to_string()),
            );
            match page["next_cursor"].as_str() {
                Some(next) => cursor = next.to_string(),
                None => break,
            }
        }
        assert_eq!(got, want, "{sort}");
    }

    // The CSV holds what the list shows, in its order.
    let resp = get(
        &app,
        "/v1/dashboard/leads.csv?utm_source=google&sort=oldest",
        &a.dashboard_token(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    let exported: Vec<String> = csv::Reader::from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap()[1].to_string())
        .collect();
    let mut google: Vec<(String, String)> = ids
        .iter()
        .zip(["f1", "f2", "f3", "f4"])
        .filter(|(_, e)| ["f1", "f3"].contains(e))
        .map(|(id, e)| (id.clone(), format!("{e}@example.com")))
        .collect();
    google.sort();
    assert_eq!(
        exported,
        google.into_iter().map(|(_, e)| e).collect::<Vec<_>>()
    );

    for bad in [
        "sort=up",
        "sync=lost",
        "source=api",
        "from=yesterday",
        "to=2026-02-30",
    ] {
        for path in ["/v1/dashboard/leads", "/v1/dashboard/leads.csv"] {
            let resp = get(&app, &format!("{path}?{bad}"), &a.dashboard_token()).await;
            assert_problem(resp, 400, "invalid_query").await;
        }
    }
}
