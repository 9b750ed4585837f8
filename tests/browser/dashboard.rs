//! The dashboard page: the seeded numbers exactly as the API reports them and never another
//! tenant's, the lead list (search, stage, load more, detail, erase), CSV, settings with field
//! errors, the spam protection (captcha, minimum fill time), the capture key and its snippet,
//! and every kind of bad token.

use api_tests::{TestApp, assert_problem, mint, now, spawn_app};
use domain::token::{Claims, Scope};
use serde_json::{Value, json};

use crate::driver::{Browser, Options};
use crate::{api_json, app_link, event, tag};

/// What the page shows for a rate: percent with at most two decimals ("66.67%", "20%").
fn percent(rate: &Value) -> String {
    let value = (rate.as_f64().unwrap() * 10_000.0).round() / 100.0;
    format!("{value}%")
}

fn count(n: &Value) -> String {
    n.as_i64().unwrap().to_string()
}

/// The emails in the page's lead table, top to bottom. The page redraws the table when the
/// list changes, so a read that meets a cell the redraw replaced reads the table again.
async fn table_emails(browser: &Browser) -> Vec<String> {
    for _ in 0..50 {
        let mut emails = Vec::new();
        let mut stale = false;
        for cell in browser.find_all("#leads tbody td.email").await {
            match cell.text().await {
                Ok(text) => emails.push(text),
                Err(_) => {
                    stale = true;
                    break;
                }
            }
        }
        if !stale {
            return emails;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the lead table kept being redrawn while it was read");
}

async fn wait_rows(browser: &Browser, n: usize) {
    browser
        .until(&format!("{n} lead rows"), || async {
            let rows = browser.find_all("#leads tbody tr").await.len();
            (rows == n).then_some(())
        })
        .await;
}

async fn signed_in(browser: &Browser, app: &TestApp, token: &str) {
    browser.goto(&app_link(app, token)).await;
    browser.find("body[data-ready=true]").await;
}

#[tokio::test]
async fn the_dashboard_shows_the_tenants_numbers_exactly_as_the_api_and_none_of_another_tenant() {
    let app = spawn_app().await;
    let a = app.create_tenant("Page A").await;
    let b = app.create_tenant("Page B").await;
    let a_leads = [
        json!({"email": "ana@example.com", "name": "Ana", "ib_type": "forex-ib", "monthly_leads": "500+", "utm_source": "facebook"}),
        json!({"email": "ben@example.com", "name": "Ben", "ib_type": "forex-ib", "monthly_leads": "100-500"}),
        json!({"email": "cleo@example.com", "ib_type": "crypto-affiliate", "monthly_leads": "0-100"}),
        json!({"email": "dan@example.com", "ib_type": "cfd-partner"}),
        json!({"email": "eve@example.com"}),
    ];
    for lead in &a_leads {
        assert_eq!(app.post_lead(&a.capture_token, lead).await.status(), 201);
    }
    app.post_form(
        &a.capture_token,
        &[("email", "bot@example.com"), ("_gotcha", "x")],
    )
    .await;
    for (i, (email, suffix)) in [
        ("ana@example.com", "email-sent"),
        ("ben@example.com", "email-sent"),
        ("cleo@example.com", "email-sent"),
        ("ana@example.com", "email-opened"),
        ("ben@example.com", "email-opened"),
        ("ana@example.com", "email-clicked"),
        ("ana@example.com", "converted"),
    ]
    .iter()
    .enumerate()
    {
        tag(&app, &format!("a{i}"), &a, email, suffix).await;
    }
    event(
        &app,
        "sale1",
        "SALE_NEW",
        json!({"customer": {"email": "ana@example.com"}, "order": {"id": 1, "totalPrice": 49_900}}),
    )
    .await;
    // B is busier than A, so any of B's numbers on A's page would show.
    let b_emails: Vec<String> = (0..8).map(|i| format!("b-only-{i}@example.net")).collect();
    for email in &b_emails {
        assert_eq!(
            app.post_lead(
                &b.capture_token,
                &json!({"email": email, "ib_type": "forex-ib"})
            )
            .await
            .status(),
            201
        );
    }
    tag(&app, "b0", &b, &b_emails[0], "converted").await;

    let browser = Browser::start(Options::default()).await;
    let token = a.dashboard_token();
    signed_in(&browser, &app, &token).await;

    // The token left the address bar and lives in this tab's sessionStorage.
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.as_str(), app.url("/app/"));
    let kept = browser
        .js(
            "return sessionStorage.getItem('clientflow.dashboard-token')",
            vec![],
        )
        .await;
    assert_eq!(kept, json!(token));

    let stats = api_json(&app, "/v1/dashboard/stats?days=30", &a).await;
    assert_eq!(stats["leads"]["total"], 5, "the seeding itself: {stats}");
    assert_eq!(
        stats["revenue_cents"], 49_900,
        "the seeding itself: {stats}"
    );
    for step in ["capture", "nurture", "convert", "retain"] {
        assert_eq!(
            browser
                .text(&format!("#funnel li[data-step={step}] .count"))
                .await,
            count(&stats["funnel"][step]),
            "funnel step {step}"
        );
    }
    assert_eq!(
        browser.text("#funnel li[data-step=nurture] .rate").await,
        format!(
            "{} of captured",
            percent(&json!(
                stats["funnel"]["nurture"].as_f64().unwrap()
                    / stats["funnel"]["capture"].as_f64().unwrap()
            ))
        )
    );
    for (kpi, value) in [
        ("emails_sent", count(&stats["emails"]["sent"])),
        ("emails_opened", count(&stats["emails"]["opened"])),
        ("emails_clicked", count(&stats["emails"]["clicked"])),
        ("open_rate", percent(&stats["emails"]["open_rate"])),
        ("click_rate", percent(&stats["emails"]["click_rate"])),
        ("conversion_rate", percent(&stats["conversions"]["rate"])),
        ("synced", count(&stats["sync"]["synced"])),
        ("pending", count(&stats["sync"]["pending"])),
        ("failed", count(&stats["sync"]["failed"])),
        ("held", count(&stats["sync"]["held"])),
        ("spam", count(&stats["spam"])),
        // A sale that names no currency is the amount alone, never dressed as dollars.
        ("revenue", {
            let cents = stats["revenue_cents"].as_i64().unwrap();
            format!("{}.{:02}", cents / 100, cents % 100)
        }),
    ] {
        assert_eq!(
            browser.text(&format!("[data-kpi={kpi}] dd")).await,
            value,
            "{kpi}"
        );
    }
    assert_eq!(
        browser.text("#lead-total").await,
        count(&stats["leads"]["total"])
    );
    // The chart draws one bar per day of the window, carrying the API's daily counts.
    let daily = stats["daily"].as_array().unwrap();
    let bars = browser.find_all("svg.chart rect.bar").await;
    assert_eq!(bars.len(), daily.len());
    for (bar, day) in bars.iter().zip(daily) {
        assert_eq!(
            bar.attr("data-day").await.unwrap().as_deref(),
            day["day"].as_str()
        );
        assert_eq!(
            bar.attr("data-leads").await.unwrap(),
            Some(day["leads"].to_string())
        );
        assert_eq!(
            bar.attr("data-conversions").await.unwrap(),
            Some(day["conversions"].to_string())
        );
    }
    // The lead list is the API's first page, in the API's order.
    let page = api_json(&app, "/v1/dashboard/leads?limit=25", &a).await;
    let api_emails: Vec<String> = page["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["email"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(table_emails(&browser).await, api_emails);
    let ana = app.lead_row(&a.id, "ana@example.com").unwrap().id;
    let ana_row = browser
        .text(&format!("#leads tbody tr[data-id='{ana}']"))
        .await;
    assert!(ana_row.contains("ana@example.com"), "{ana_row}");
    assert!(ana_row.contains("Converted"), "{ana_row}");
    // The 7-day period redraws the chart from the API's 7-day window.
    browser.click(".period button[data-days='7']").await;
    browser
        .until("a 7-day chart", || async {
            (browser.find_all("svg.chart rect.bar").await.len() == 7).then_some(())
        })
        .await;

    let html = browser.client.source().await.unwrap();
    for email in &b_emails {
        assert!(!html.contains(email.as_str()), "B's {email} on A's page");
    }
    assert!(!html.contains(&b.id), "B's id on A's page");
    assert!(!html.contains(&b.tag_prefix), "B's prefix on A's page");

    // The desktop screenshot shows the whole page, the phone one a phone's first screen.
    let height = browser
        .js("return document.documentElement.scrollHeight", vec![])
        .await
        .as_u64()
        .unwrap()
        .clamp(800, 2400);
    browser
        .client
        .set_window_size(1280, u32::try_from(height).unwrap())
        .await
        .unwrap();
    browser.screenshot("dashboard-desktop").await;
    browser.client.set_window_size(390, 844).await.unwrap();
    let fits = browser
        .js(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            vec![],
        )
        .await;
    assert_eq!(
        fits,
        json!(true),
        "the page scrolls sideways at phone width"
    );
    assert!(browser.displayed("#funnel li[data-step=retain]").await);
    assert!(browser.displayed("#leads tbody tr").await);
    browser.screenshot("dashboard-phone").await;
    browser.close().await;
}

#[tokio::test]
async fn search_stage_load_more_detail_erase_and_csv_work_in_the_page() {
    let app = spawn_app().await;
    let t = app.create_tenant("List Ib").await;
    let mut posts = Vec::new();
    for i in 0..28 {
        posts.push((
            t.capture_token.clone(),
            json!({"email": format!("lead{i:02}@example.com"), "ib_type": "forex-ib"}),
        ));
    }
    posts.push((
        t.capture_token.clone(),
        json!({"email": "needle.one@example.com", "name": "Needle One"}),
    ));
    posts.push((
        t.capture_token.clone(),
        json!({"email": "two@example.com", "name": "Haystack NEEDLE"}),
    ));
    app.post_leads(&posts).await;
    tag(&app, "e1", &t, "lead07@example.com", "engaged").await;

    let browser = Browser::start(Options::default()).await;
    signed_in(&browser, &app, &t.dashboard_token()).await;
    assert_eq!(browser.text("#lead-total").await, "30");

    // Load more: 25, then the last 5, and no button once the cursor runs out.
    wait_rows(&browser, 25).await;
    assert!(browser.displayed("#load-more").await);
    browser.click("#load-more").await;
    wait_rows(&browser, 30).await;
    browser
        .until("load more to hide", || async {
            (!browser.displayed("#load-more").await).then_some(())
        })
        .await;
    let all = table_emails(&browser).await;
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 30, "no repeats across pages: {all:?}");

    // Search matches email or name, case-insensitively, exactly like the API.
    browser.type_into("#lead-q", "needle").await;
    browser.click("#lead-filter button[type=submit]").await;
    wait_rows(&browser, 2).await;
    let api = api_json(&app, "/v1/dashboard/leads?q=needle", &t).await;
    let api_emails: Vec<String> = api["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["email"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(table_emails(&browser).await, api_emails);

    // The stage filter.
    browser.type_into("#lead-q", "").await;
    browser
        .find("#lead-stage")
        .await
        .select_by_value("engaged")
        .await
        .unwrap();
    wait_rows(&browser, 1).await;
    assert_eq!(table_emails(&browser).await, vec!["lead07@example.com"]);
    browser
        .find("#lead-stage")
        .await
        .select_by_value("")
        .await
        .unwrap();
    wait_rows(&browser, 25).await;

    // A lead's detail and timeline, then erasure after a confirmation.
    let id = app.lead_row(&t.id, "needle.one@example.com").unwrap().id;
    browser
        .click(&format!(
            "#leads tbody tr[data-id='{id}'] button[data-open]"
        ))
        .await;
    browser
        .until_text("#lead-title", |t| t == "needle.one@example.com")
        .await;
    browser
        .until_text("#lead-timeline li[data-kind=captured]", |t| {
            t.contains("captured")
        })
        .await;
    browser.click("#erase").await;
    assert!(
        browser
            .until_text("#erase-warning", |t| t.contains("permanently"))
            .await
            .contains("cannot be undone")
    );
    // Nothing is erased before the confirmation.
    assert!(app.lead_row(&t.id, "needle.one@example.com").is_some());
    browser.click("#erase-yes").await;
    browser
        .until_text("#lead-status", |t| t.contains("erased"))
        .await;
    assert!(
        browser
            .find_all(&format!("#leads tbody tr[data-id='{id}']"))
            .await
            .is_empty()
    );
    let gone = app
        .client
        .get(app.url(&format!("/v1/dashboard/leads/{id}")))
        .bearer_auth(t.dashboard_token())
        .send()
        .await
        .unwrap();
    assert_problem(gone, 404, "lead_not_found").await;
    browser.until_text("#lead-total", |t| t == "29").await;

    // CSV: the download is the API's export, every lead of this tenant in it.
    browser.click("#csv").await;
    browser
        .until_text("#csv-status", |t| t.starts_with("Downloaded leads-"))
        .await;
    let file = browser
        .until("the CSV file", || async { browser.downloaded().pop() })
        .await;
    let csv = std::fs::read_to_string(&file).unwrap();
    assert_eq!(csv.lines().count(), 30, "a header and 29 leads:\n{csv}");
    assert!(csv.contains("lead07@example.com"));
    assert!(!csv.contains("needle.one@example.com"));
    browser.close().await;
}

#[tokio::test]
async fn a_leads_attribution_consent_and_hold_reason_are_shown_in_the_page() {
    let app = spawn_app().await;
    let t = app.create_tenant("Attribution Page Ib").await;
    crate::put_settings(&app, &t, json!({"sync_requires_consent": true})).await;
    app.post_lead(
        &t.capture_token,
        &json!({"email": "clicked@example.com", "utm_source": "google", "utm_term": "ib program",
            "utm_content": "hero", "gclid": "Cj0-page", "fbclid": "IwAR-page", "ttclid": "E.C.P-page",
            "referrer": "https://www.google.com/", "consent": false}),
    )
    .await;
    app.post_lead(
        &t.capture_token,
        &json!({"email": "agreed@example.com", "consent": true}),
    )
    .await;
    let browser = Browser::start(Options::default()).await;
    signed_in(&browser, &app, &t.dashboard_token()).await;
    wait_rows(&browser, 2).await;
    let mut consent = Vec::new();
    for row in browser.find_all("#leads tbody tr").await {
        let email = row
            .find(fantoccini::Locator::Css("td.email"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let cell = row
            .find(fantoccini::Locator::Css("td.consent"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        consent.push((email, cell));
    }
    consent.sort();
    assert_eq!(
        consent,
        vec![
            ("agreed@example.com".to_string(), "yes".to_string()),
            ("clicked@example.com".to_string(), "no".to_string()),
        ]
    );
    let id = app.lead_row(&t.id, "clicked@example.com").unwrap().id;
    browser
        .click(&format!(
            "#leads tbody tr[data-id='{id}'] button[data-open]"
        ))
        .await;
    let fields = browser
        .until_text("#lead-fields", |t| t.contains("Referrer"))
        .await;
    for shown in [
        "google / ib program / hero",
        "gclid Cj0-page · fbclid IwAR-page · ttclid E.C.P-page",
        "https://www.google.com/",
        "no consent (you sync only leads who consented)",
    ] {
        assert!(fields.contains(shown), "{shown} in {fields}");
    }
    browser.close().await;
}

#[tokio::test]
async fn a_failed_lead_shows_why_and_is_retried_from_the_page() {
    let app = spawn_app().await;
    let t = app.create_tenant("Retry Page Ib").await;
    app.systeme.set_custom_fields(Some(&[]));
    app.post_lead(&t.capture_token, &json!({"email": "kai@example.com"}))
        .await;
    assert_eq!(
        app.lead_row(&t.id, "kai@example.com").unwrap().sync_status,
        "failed"
    );
    app.systeme.set_custom_fields(None);
    let browser = Browser::start(Options::default()).await;
    signed_in(&browser, &app, &t.dashboard_token()).await;
    wait_rows(&browser, 1).await;
    let id = app.lead_row(&t.id, "kai@example.com").unwrap().id;
    browser
        .click(&format!(
            "#leads tbody tr[data-id='{id}'] button[data-open]"
        ))
        .await;
    let fields = browser
        .until_text("#lead-fields", |t| t.contains("Sync error"))
        .await;
    assert!(fields.contains("clientflow_tenant_id"), "{fields}");
    browser.click("#retry-sync").await;
    browser
        .until_text("#lead-fields", |t| t.contains("pending (0 attempts)"))
        .await;
    assert!(
        !browser.displayed("#retry-sync").await,
        "only a failed lead offers it"
    );
    assert_eq!(
        app.lead_row(&t.id, "kai@example.com").unwrap().sync_status,
        "pending"
    );
    let report = app.run_sync("").await;
    assert_eq!(report["synced"], 1, "{report}");
    browser.close().await;
}

#[tokio::test]
async fn settings_save_show_the_apis_field_errors_and_the_snippet_follows_the_capture_key() {
    let app = spawn_app().await;
    let t = app.create_tenant("Settings Ib").await;
    // Funnels are the operator's: the page shows them and cannot edit them.
    let assigned = app
        .client
        .patch(app.url(&format!("/v1/admin/tenants/{}", t.id)))
        .bearer_auth(api_tests::admin_token())
        .json(&json!({"funnel_ids": [801, 12]}))
        .send()
        .await
        .unwrap();
    assert_eq!(assigned.status(), 200);
    let browser = Browser::start(Options::default()).await;
    signed_in(&browser, &app, &t.dashboard_token()).await;
    assert_eq!(
        browser.until_text("#funnel-ids", |t| !t.is_empty()).await,
        "12, 801"
    );
    assert!(
        browser
            .find_all("#settings input[name=funnel_ids], #settings textarea[name=funnel_ids]")
            .await
            .is_empty(),
        "no funnel field to edit"
    );

    browser
        .type_into(
            "#allowed-origins",
            "https://lp.example.com\nhttps://promo.example.com",
        )
        .await;
    browser
        .type_into("#thank-you-url", "https://lp.example.com/thanks")
        .await;
    browser.click("#sync-requires-consent").await;
    browser
        .type_into(
            "#tag-rules",
            "webinar-* = email_clicked\nemail-sent = ignore",
        )
        .await;
    browser.click("#settings button[type=submit]").await;
    browser
        .until_text("#settings-status", |t| t.starts_with("Saved"))
        .await;
    let saved = api_json(&app, "/v1/dashboard/settings", &t).await;
    assert_eq!(
        saved["effective_tag_rules"]["webinar-*"], "email_clicked",
        "{saved}"
    );
    // What the form edits, saved as typed (settings it does not show keep their values).
    for (name, value) in [
        (
            "allowed_origins",
            json!(["https://lp.example.com", "https://promo.example.com"]),
        ),
        ("thank_you_url", json!("https://lp.example.com/thanks")),
        (
            "tag_rules",
            json!({"webinar-*": "email_clicked", "email-sent": "ignore"}),
        ),
        ("funnel_ids", json!([12, 801])),
        ("sync_requires_consent", json!(true)),
    ] {
        assert_eq!(saved[name], value, "{name}: {saved}");
    }

    // A bad value: the API's own detail, next to its field; nothing changes.
    browser
        .type_into("#thank-you-url", "http://lp.example.com/thanks")
        .await;
    browser.click("#settings button[type=submit]").await;
    let shown = browser
        .until_text("#error-thank_you_url", |t| !t.is_empty())
        .await;
    let refused = app
        .client
        .put(app.url("/v1/dashboard/settings"))
        .bearer_auth(t.dashboard_token())
        .json(&json!({"thank_you_url": "http://lp.example.com/thanks"}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(refused, 422, "invalid_field").await;
    assert_eq!(shown, problem["detail"].as_str().unwrap());
    assert!(shown.starts_with("thank_you_url"), "{shown}");
    let invalid = browser
        .find("#thank-you-url")
        .await
        .attr("aria-invalid")
        .await
        .unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));
    assert!(!browser.displayed("#error-allowed_origins").await);
    assert_eq!(api_json(&app, "/v1/dashboard/settings", &t).await, saved);
    // A bad origin lands next to the origins.
    browser
        .type_into("#thank-you-url", "https://lp.example.com/thanks")
        .await;
    browser
        .type_into("#allowed-origins", "https://lp.example.com/path")
        .await;
    browser.click("#settings button[type=submit]").await;
    let shown = browser
        .until_text("#error-allowed_origins", |t| !t.is_empty())
        .await;
    assert!(shown.starts_with("allowed_origins: "), "{shown}");
    assert!(!browser.displayed("#error-thank_you_url").await);

    // The snippet carries the current capture key, which captures.
    let snippet = browser
        .until("the snippet", || async {
            let value = browser.find("#snippet").await.prop("value").await.ok()??;
            (!value.is_empty()).then_some(value)
        })
        .await;
    assert!(
        snippet.contains(&format!(
            "action=\"{}/v1/leads?key={}\"",
            app.base_url, t.capture_token
        )),
        "{snippet}"
    );
    assert!(snippet.contains("data-clientflow"), "{snippet}");
    assert!(
        snippet.contains(&format!("<script src=\"{}/embed/v1.js\"", app.base_url)),
        "{snippet}"
    );
    assert!(snippet.contains("name=\"_gotcha\""), "{snippet}");
    // Every field a visitor fills in has a label around it.
    let unlabelled = browser
        .js(
            "const d = new DOMParser().parseFromString(arguments[0], 'text/html');
             return [...d.querySelectorAll('input:not([type=hidden]):not([name=_gotcha]), select')]
                 .filter(f => !f.closest('label')).map(f => f.name);",
            vec![json!(snippet)],
        )
        .await;
    assert_eq!(unlabelled, json!([]), "{snippet}");

    // Rotation warns first, then swaps the key: the old one is refused, the new one captures.
    browser.click("#rotate").await;
    browser
        .until_text("#rotate-warning", |t| t.contains("stop working"))
        .await;
    browser.click("#rotate-yes").await;
    browser
        .until_text("#rotate-status", |t| t.contains("old key now fail"))
        .await;
    let rotated = browser
        .find("#snippet")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(!rotated.contains(&t.capture_token));
    let old = app
        .post_lead(&t.capture_token, &json!({"email": "late@example.com"}))
        .await;
    assert_problem(old, 401, "token_revoked").await;
    let new_key = rotated
        .split("?key=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let fresh = app
        .post_lead(&new_key, &json!({"email": "fresh@example.com"}))
        .await;
    assert_eq!(fresh.status(), 201);
    browser.close().await;
}

/// The snippet once it is filled in.
async fn snippet_text(browser: &Browser) -> String {
    browser
        .until("the snippet", || async {
            let value = browser.find("#snippet").await.prop("value").await.ok()??;
            (!value.is_empty()).then_some(value)
        })
        .await
}

async fn save_settings(browser: &Browser) {
    browser
        .js(
            "document.querySelector('#settings-status').hidden = true;",
            vec![],
        )
        .await;
    browser.click("#settings button[type=submit]").await;
    browser
        .until_text("#settings-status", |t| t.starts_with("Saved"))
        .await;
}

#[tokio::test]
async fn settings_spam_protection_saves_the_captcha_and_fill_time_never_shows_the_secret_and_the_snippet_names_the_widget()
 {
    let app = spawn_app().await;
    let t = app.create_tenant("Spam Ib").await;
    let site_key = "0x4AAAAAAAsitekey-Page_1";
    let secret = "0x4AAAAAAAsecretNeverShown-9";
    let browser = Browser::start(Options::default()).await;
    signed_in(&browser, &app, &t.dashboard_token()).await;
    let before = snippet_text(&browser).await;
    assert!(!before.contains("data-clientflow-captcha"), "{before}");
    assert!(!before.contains("data-clientflow-sitekey"), "{before}");
    assert!(
        !browser.displayed("#captcha-keys").await,
        "no keys while off"
    );

    // Turnstile with its keys and a 3-second minimum, saved with the rest of the form.
    browser
        .find("#captcha-provider")
        .await
        .select_by_value("turnstile")
        .await
        .unwrap();
    assert!(browser.displayed("#captcha-keys").await);
    let secret_input = browser.find("#captcha-secret").await;
    assert_eq!(
        secret_input.attr("type").await.unwrap().as_deref(),
        Some("password")
    );
    assert_eq!(
        secret_input.prop("placeholder").await.unwrap().as_deref(),
        Some("the provider's secret key")
    );
    browser.type_into("#captcha-site-key", site_key).await;
    browser.type_into("#captcha-secret", secret).await;
    browser.type_into("#min-fill-seconds", "3").await;
    save_settings(&browser).await;
    let saved = api_json(&app, "/v1/dashboard/settings", &t).await;
    assert_eq!(
        saved["captcha"],
        json!({"provider": "turnstile", "site_key": site_key, "secret_set": true}),
        "{saved}"
    );
    assert_eq!(saved["min_fill_seconds"], 3, "{saved}");
    assert!(!saved.to_string().contains(secret), "{saved}");

    // After a reload the page shows the setting, and the secret is nowhere in it.
    browser.goto("about:blank").await;
    signed_in(&browser, &app, &t.dashboard_token()).await;
    browser
        .until("the saved provider", || async {
            let value = browser
                .find("#captcha-provider")
                .await
                .prop("value")
                .await
                .ok()??;
            (value == "turnstile").then_some(())
        })
        .await;
    let secret_input = browser.find("#captcha-secret").await;
    assert_eq!(
        secret_input.prop("value").await.unwrap().as_deref(),
        Some("")
    );
    assert_eq!(
        secret_input.prop("placeholder").await.unwrap().as_deref(),
        Some("saved — leave empty to keep")
    );
    assert_eq!(
        browser
            .find("#captcha-site-key")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(site_key)
    );
    assert_eq!(
        browser
            .find("#min-fill-seconds")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("3")
    );
    let leaked = browser
        .js(
            "return document.documentElement.outerHTML.includes(arguments[0])
                 || [...document.querySelectorAll('input, textarea, select')]
                     .some(i => String(i.value).includes(arguments[0]));",
            vec![json!(secret)],
        )
        .await;
    assert_eq!(leaked, json!(false), "the secret is in the page");
    // The snippet names the widget, so the copy-paste shows it.
    let on = snippet_text(&browser).await;
    assert!(
        on.contains(&format!(
            "<form data-clientflow data-clientflow-captcha=\"turnstile\" data-clientflow-sitekey=\"{site_key}\""
        )),
        "{on}"
    );

    // Saving without typing the secret keeps it.
    browser.type_into("#min-fill-seconds", "5").await;
    save_settings(&browser).await;
    let kept = api_json(&app, "/v1/dashboard/settings", &t).await;
    assert_eq!(kept["captcha"], saved["captcha"], "{kept}");
    assert_eq!(kept["min_fill_seconds"], 5, "{kept}");

    // Another provider needs its secret: the API's word lands next to the captcha, on the secret.
    browser
        .find("#captcha-provider")
        .await
        .select_by_value("hcaptcha")
        .await
        .unwrap();
    assert_eq!(
        browser
            .find("#captcha-secret")
            .await
            .prop("placeholder")
            .await
            .unwrap()
            .as_deref(),
        Some("the provider's secret key")
    );
    browser.click("#settings button[type=submit]").await;
    let shown = browser
        .until_text("#error-captcha", |t| !t.is_empty())
        .await;
    assert!(shown.starts_with("captcha: secret: "), "{shown}");
    assert_eq!(
        browser
            .find("#captcha-secret")
            .await
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert_eq!(api_json(&app, "/v1/dashboard/settings", &t).await, kept);
    // A fill time out of range lands next to it, in the API's words.
    browser
        .find("#captcha-provider")
        .await
        .select_by_value("turnstile")
        .await
        .unwrap();
    browser.type_into("#min-fill-seconds", "61").await;
    browser.click("#settings button[type=submit]").await;
    let shown = browser
        .until_text("#error-min_fill_seconds", |t| !t.is_empty())
        .await;
    assert!(shown.starts_with("min_fill_seconds: "), "{shown}");
    assert!(!browser.displayed("#error-captcha").await);
    assert_eq!(api_json(&app, "/v1/dashboard/settings", &t).await, kept);

    // Off: the API has no captcha and the snippet no longer names a widget.
    browser.type_into("#min-fill-seconds", "0").await;
    browser
        .find("#captcha-provider")
        .await
        .select_by_value("")
        .await
        .unwrap();
    assert!(!browser.displayed("#captcha-keys").await);
    save_settings(&browser).await;
    let off = api_json(&app, "/v1/dashboard/settings", &t).await;
    assert_eq!(off["captcha"], Value::Null, "{off}");
    assert_eq!(off["min_fill_seconds"], 0, "{off}");
    let after = browser
        .until("the snippet without the widget", || async {
            let value = browser.find("#snippet").await.prop("value").await.ok()??;
            (!value.is_empty() && !value.contains("data-clientflow-captcha")).then_some(value)
        })
        .await;
    assert!(!after.contains("data-clientflow-sitekey"), "{after}");
    assert!(
        after.contains("<form data-clientflow method=\"post\""),
        "{after}"
    );
    browser.close().await;
}

#[tokio::test]
async fn without_a_usable_token_the_page_shows_the_sign_in_message_and_no_data() {
    let app = spawn_app().await;
    let t = app.create_tenant("Token Ib").await;
    assert_eq!(
        app.post_lead(
            &t.capture_token,
            &json!({"email": "secret-lead@example.com"})
        )
        .await
        .status(),
        201
    );
    let expired = mint(&Claims {
        sub: Some(t.id.clone()),
        scope: Scope::Dashboard,
        exp: Some(now() - 120),
        generation: None,
    });
    let foreign = {
        let secret =
            domain::secret::TokenSecret::parse("another-deployments-secret-0123456789abcdef")
                .unwrap();
        domain::token::mint(
            &secret,
            &Claims {
                sub: Some(t.id.clone()),
                scope: Scope::Dashboard,
                exp: Some(now() + 600),
                generation: None,
            },
        )
    };
    let foreign_detail = {
        let resp = app
            .client
            .get(app.url("/v1/dashboard/stats"))
            .bearer_auth(&foreign)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        api_tests::json_body(resp).await["detail"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let browser = Browser::start(Options::default()).await;
    let cases: Vec<(String, Option<String>)> = vec![
        (app.url("/app/"), None),
        (app.url("/app/#token=not-a-token"), Some("malformed".into())),
        (
            app.url("/app/#token=a.bm90LWpzb24.b"),
            Some("malformed".into()),
        ),
        (app_link(&app, &expired), Some("expired".into())),
        (app_link(&app, &foreign), Some(foreign_detail)),
        (
            app_link(&app, &t.capture_token),
            Some("not a dashboard token".into()),
        ),
    ];
    for (url, reason) in cases {
        browser.goto(&url).await;
        browser
            .until_text("#sign-in-title", |t| t == "Sign in to your dashboard")
            .await;
        match &reason {
            Some(reason) => {
                let shown = browser
                    .until_text("#sign-in-reason", |t| !t.is_empty())
                    .await;
                assert!(shown.contains(reason.as_str()), "{url}: {shown}");
            }
            None => assert!(!browser.displayed("#sign-in-reason").await, "{url}"),
        }
        assert!(!browser.displayed("#dashboard").await, "{url}");
        let html = browser.client.source().await.unwrap();
        assert!(!html.contains("secret-lead@example.com"), "{url}");
        assert!(
            !browser
                .client
                .current_url()
                .await
                .unwrap()
                .as_str()
                .contains("token="),
            "{url}: the token stays in the address bar"
        );
    }
    // Pasting a good token opens the dashboard.
    browser
        .type_into("#token-input", &t.dashboard_token())
        .await;
    browser.click("#sign-in-form button").await;
    browser
        .until_text("#leads tbody td.email", |t| t == "secret-lead@example.com")
        .await;
    // Signing out leaves nothing behind.
    browser.click("#sign-out").await;
    browser
        .until_text("#sign-in-title", |t| t == "Sign in to your dashboard")
        .await;
    assert!(browser.find_all("#leads tbody tr").await.is_empty());
    browser.close().await;
}

/// The token the page's session holds.
async fn session_token(browser: &Browser) -> Value {
    browser
        .js(
            "return sessionStorage.getItem('clientflow.dashboard-token')",
            vec![],
        )
        .await
}

#[tokio::test]
async fn the_header_names_the_tenant_and_a_link_for_another_tenant_asks_before_switching() {
    let app = spawn_app().await;
    let a = app.create_tenant("Header Ib").await;
    let b = app.create_tenant("Stranger Ib").await;
    for (t, email) in [(&a, "mine@example.com"), (&b, "theirs@example.com")] {
        let resp = app
            .post_lead(&t.capture_token, &json!({"email": email}))
            .await;
        assert_eq!(resp.status(), 201);
    }
    let browser = Browser::start(Options::default()).await;
    let token = a.dashboard_token();
    signed_in(&browser, &app, &token).await;
    assert_eq!(
        browser.until_text("#tenant-name", |t| !t.is_empty()).await,
        "Header Ib"
    );
    assert_eq!(browser.text("#tenant-prefix").await, a.tag_prefix);

    // A link with another tenant's token asks first, naming both; declining keeps the session.
    let prompt = || async {
        browser
            .until("the switch prompt", || async {
                browser.displayed("#switch").await.then_some(())
            })
            .await;
        browser.text("#switch-detail").await
    };
    browser.goto(&app_link(&app, &b.dashboard_token())).await;
    let asked = prompt().await;
    assert!(
        asked.contains("Stranger Ib") && asked.contains(&b.tag_prefix),
        "{asked}"
    );
    assert!(
        asked.contains("Header Ib") && asked.contains(&a.tag_prefix),
        "{asked}"
    );
    assert!(!browser.displayed("#dashboard").await);
    assert_eq!(
        session_token(&browser).await,
        json!(token),
        "not replaced yet"
    );
    browser.click("#switch-no").await;
    browser
        .until_text("#leads tbody td.email", |t| t == "mine@example.com")
        .await;
    assert_eq!(browser.text("#tenant-name").await, "Header Ib");
    assert_eq!(session_token(&browser).await, json!(token));
    let url = browser.client.current_url().await.unwrap();
    assert!(!url.as_str().contains("token="), "{url}");

    // A fresh token of the same tenant replaces the session without a question.
    let fresh = mint(&Claims {
        sub: Some(a.id.clone()),
        scope: Scope::Dashboard,
        exp: Some(now() + 900),
        generation: None,
    });
    browser.goto(&app_link(&app, &fresh)).await;
    browser
        .until("the fresh token in the session", || async {
            (session_token(&browser).await == json!(fresh)).then_some(())
        })
        .await;
    browser
        .until_text("#leads tbody td.email", |t| t == "mine@example.com")
        .await;
    assert!(!browser.displayed("#switch").await);

    // Accepting switches, and the header says to whom.
    browser.goto(&app_link(&app, &b.dashboard_token())).await;
    prompt().await;
    browser.click("#switch-yes").await;
    browser
        .until_text("#tenant-name", |t| t == "Stranger Ib")
        .await;
    browser
        .until_text("#leads tbody td.email", |t| t == "theirs@example.com")
        .await;
    assert_eq!(browser.text("#tenant-prefix").await, b.tag_prefix);
    browser.close().await;
}

/// The emails the API lists for `query`, in its order.
async fn api_emails(app: &TestApp, tenant: &api_tests::TestTenant, query: &str) -> Vec<String> {
    let page = api_json(app, &format!("/v1/dashboard/leads?{query}"), tenant).await;
    page["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["email"].as_str().unwrap().to_string())
        .collect()
}

/// Seeds one day of a tenant's rollup, a day no request reaches while the test runs.
fn seed_rollup(app: &TestApp, tenant: &str, day: &str, leads: i64, conversions: i64) {
    app.db_rw()
        .execute(
            "INSERT INTO daily_rollups (tenant_id, day, leads, conversions) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![tenant, day, leads, conversions],
        )
        .unwrap();
}

/// Sets a date input's value as a date picker does, so the test does not depend on how the
/// browser's locale lays out typed dates.
async fn set_date(browser: &Browser, css: &str, value: &str) {
    browser
        .js(
            "const input = document.querySelector(arguments[0]); input.value = arguments[1];",
            vec![json!(css), json!(value)],
        )
        .await;
}

#[tokio::test]
async fn a_custom_range_shows_its_window_and_each_figure_beside_the_previous_period() {
    let app = spawn_app().await;
    let t = app.create_tenant("Range Page Ib").await;
    // The window 2026-03-11..2026-03-20 and the ten days before it: leads 3 → 7 (up),
    // conversions 3 → 2 (down). The days outside both count for neither.
    seed_rollup(&app, &t.id, "2026-03-01", 2, 2);
    seed_rollup(&app, &t.id, "2026-03-10", 1, 1);
    seed_rollup(&app, &t.id, "2026-03-11", 4, 2);
    seed_rollup(&app, &t.id, "2026-03-20", 3, 0);
    seed_rollup(&app, &t.id, "2026-03-21", 50, 50);
    seed_rollup(&app, &t.id, "2026-02-28", 70, 70);
    let browser = Browser::start(Options::default()).await;
    signed_in(&browser, &app, &t.dashboard_token()).await;

    set_date(&browser, "#range-from", "2026-03-11").await;
    set_date(&browser, "#range-to", "2026-03-20").await;
    browser.click("#range button[type=submit]").await;
    browser
        .until("the range's window", || async {
            let from = browser
                .find("#window")
                .await
                .attr("data-from")
                .await
                .ok()??;
            (from == "2026-03-11").then_some(())
        })
        .await;
    let stats = api_json(
        &app,
        "/v1/dashboard/stats?from=2026-03-11&to=2026-03-20",
        &t,
    )
    .await;
    assert_eq!(
        (&stats["period"]["leads"], &stats["previous"]["leads"]),
        (&json!(7), &json!(3)),
        "the seeding itself: {stats}"
    );
    assert_eq!(
        (
            &stats["period"]["conversions"],
            &stats["previous"]["conversions"]
        ),
        (&json!(2), &json!(3)),
        "the seeding itself: {stats}"
    );
    assert_eq!(
        browser.find("#window").await.attr("data-to").await.unwrap(),
        Some("2026-03-20".to_string())
    );
    assert_eq!(browser.find_all("svg.chart rect.bar").await.len(), 10);
    assert_eq!(
        browser.find_all("#chart-table tbody tr").await.len(),
        10,
        "the table alternative holds the same days"
    );
    // No preset is pressed while a range is shown.
    for b in browser.find_all(".period button").await {
        assert_eq!(
            b.attr("aria-pressed").await.unwrap().as_deref(),
            Some("false")
        );
    }

    let capture = browser.find("#funnel li[data-step=capture] .delta").await;
    assert_eq!(
        capture.text().await.unwrap(),
        "7 in period ▲ 133.33% vs 3 in the previous 10 days"
    );
    assert_eq!(
        capture.attr("data-trend").await.unwrap().as_deref(),
        Some("up")
    );
    let convert = browser.find("#funnel li[data-step=convert] .delta").await;
    assert_eq!(
        convert.text().await.unwrap(),
        "2 in period ▼ 33.33% vs 3 in the previous 10 days"
    );
    assert_eq!(
        convert.attr("data-trend").await.unwrap().as_deref(),
        Some("down")
    );
    assert_eq!(
        browser.text("[data-kpi=captured] dd").await,
        count(&stats["period"]["leads"])
    );

    // The chart answers the keyboard: End reads the last day, Left the one before.
    browser.click("#chart").await;
    browser
        .js("document.querySelector('#chart').focus()", vec![])
        .await;
    browser
        .find("#chart")
        .await
        .send_keys(&fantoccini::key::Key::End.to_string())
        .await
        .unwrap();
    browser
        .until_text("#chart-readout", |t| {
            t.contains(": 3 captured, 0 converted")
        })
        .await;
    browser
        .find("#chart")
        .await
        .send_keys(&fantoccini::key::Key::Left.to_string())
        .await
        .unwrap();
    browser
        .until_text("#chart-readout", |t| {
            t.contains(": 0 captured, 0 converted")
        })
        .await;
    let active = browser.find_all("#chart rect.bar.active").await;
    assert_eq!(active.len(), 1);
    assert_eq!(
        active[0].attr("data-day").await.unwrap().as_deref(),
        Some("2026-03-19")
    );

    // A range the API refuses (over 365 days): its word beside the range, the window kept.
    set_date(&browser, "#range-from", "2025-01-01").await;
    browser.click("#range button[type=submit]").await;
    let shown = browser.until_text("#range-error", |t| !t.is_empty()).await;
    let refused = app
        .client
        .get(app.url("/v1/dashboard/stats?from=2025-01-01&to=2026-03-20"))
        .bearer_auth(t.dashboard_token())
        .send()
        .await
        .unwrap();
    let problem = assert_problem(refused, 422, "invalid_range").await;
    assert_eq!(shown, problem["detail"].as_str().unwrap());
    assert_eq!(browser.find_all("svg.chart rect.bar").await.len(), 10);
    browser.close().await;
}

#[tokio::test]
async fn choosing_a_breakdown_row_filters_the_lead_list_and_the_csv() {
    let app = spawn_app().await;
    let t = app.create_tenant("Breakdown Page Ib").await;
    for (email, ib_type, utm) in [
        ("fx1@example.com", "forex-ib", Some("google")),
        ("fx2@example.com", "forex-ib", None),
        ("fx3@example.com", "forex-ib", Some("facebook")),
        ("cr1@example.com", "crypto-affiliate", Some("google")),
        ("cr2@example.com", "crypto-affiliate", None),
    ] {
        let mut lead = json!({"email": email, "ib_type": ib_type, "monthly_leads": "0-100"});
        if let Some(utm) = utm {
            lead["utm_source"] = json!(utm);
        }
        assert_eq!(app.post_lead(&t.capture_token, &lead).await.status(), 201);
    }
    let browser = Browser::start(Options::default()).await;
    signed_in(&browser, &app, &t.dashboard_token()).await;
    wait_rows(&browser, 5).await;

    // Every breakdown the API answers, every row with its count.
    let stats = api_json(&app, "/v1/dashboard/stats?days=30", &t).await;
    let breakdowns = stats["breakdowns"].as_object().unwrap();
    assert!(breakdowns.contains_key("ib_type") && breakdowns.contains_key("utm_source"));
    for (facet, buckets) in breakdowns {
        let rows = browser
            .find_all(&format!("#breakdowns [data-breakdown='{facet}'] li"))
            .await;
        let buckets = buckets.as_array().unwrap();
        assert_eq!(rows.len(), buckets.len(), "{facet}: {buckets:?}");
        for (row, bucket) in rows.iter().zip(buckets) {
            let text = row.text().await.unwrap();
            let value = bucket["value"].as_str().unwrap_or("(none)");
            let n = &bucket["leads"];
            let noun = if n == 1 { "lead" } else { "leads" };
            assert_eq!(text, format!("{value}: {n} {noun}"), "{facet}");
        }
    }

    browser
        .click("#breakdowns [data-breakdown=ib_type] button[data-value='crypto-affiliate']")
        .await;
    wait_rows(&browser, 2).await;
    assert_eq!(
        table_emails(&browser).await,
        api_emails(&app, &t, "ib_type=crypto-affiliate").await
    );
    assert!(
        browser
            .until_text("#lead-facet", |t| t.contains("crypto-affiliate"))
            .await
            .contains("IB type")
    );
    let pressed = browser
        .find("#breakdowns button[data-value='crypto-affiliate']")
        .await
        .attr("aria-pressed")
        .await
        .unwrap();
    assert_eq!(pressed.as_deref(), Some("true"));

    // The CSV holds what the list shows.
    browser.click("#csv").await;
    browser
        .until_text("#csv-status", |t| t.starts_with("Downloaded leads-"))
        .await;
    let file = browser
        .until("the CSV file", || async { browser.downloaded().pop() })
        .await;
    let csv = std::fs::read_to_string(&file).unwrap();
    assert_eq!(csv.lines().count(), 3, "a header and 2 leads:\n{csv}");
    assert!(csv.contains("cr1@example.com") && csv.contains("cr2@example.com"));
    assert!(!csv.contains("fx1@example.com"), "{csv}");

    // Another row replaces the filter; "show all" lists every lead again.
    browser
        .click("#breakdowns [data-breakdown=utm_source] button[data-value='google']")
        .await;
    wait_rows(&browser, 2).await;
    let mut google = table_emails(&browser).await;
    google.sort();
    assert_eq!(google, vec!["cr1@example.com", "fx1@example.com"]);
    assert_eq!(
        table_emails(&browser).await,
        api_emails(&app, &t, "utm_source=google").await
    );
    browser.click("#lead-facet-clear").await;
    wait_rows(&browser, 5).await;
    assert!(!browser.displayed("#lead-facet").await);
    browser.close().await;
}

#[tokio::test]
async fn the_lead_list_sorts_by_captured_date_both_ways() {
    let app = spawn_app().await;
    let t = app.create_tenant("Sort Page Ib").await;
    for i in 0..4 {
        let email = format!("sorted{i}@example.com");
        assert_eq!(
            app.post_lead(&t.capture_token, &json!({ "email": email }))
                .await
                .status(),
            201
        );
    }
    let newest = api_emails(&app, &t, "sort=newest").await;
    let oldest = api_emails(&app, &t, "sort=oldest").await;
    let mut reversed = newest.clone();
    reversed.reverse();
    assert_eq!(oldest, reversed, "the API's two orders");
    assert_eq!(newest.len(), 4);

    let browser = Browser::start(Options::default()).await;
    signed_in(&browser, &app, &t.dashboard_token()).await;
    wait_rows(&browser, 4).await;
    assert_eq!(table_emails(&browser).await, newest);
    let aria_sort = || async {
        browser
            .find("#captured-col")
            .await
            .attr("aria-sort")
            .await
            .unwrap()
    };
    assert_eq!(aria_sort().await.as_deref(), Some("descending"));

    // The column header flips the order.
    browser.click("#sort-captured").await;
    browser
        .until("oldest first", || async {
            (table_emails(&browser).await == oldest).then_some(())
        })
        .await;
    assert_eq!(aria_sort().await.as_deref(), Some("ascending"));
    assert_eq!(
        browser
            .find("#lead-sort")
            .await
            .prop("value")
            .await
            .unwrap(),
        Some("oldest".to_string())
    );
    // And the order menu flips it back.
    browser
        .find("#lead-sort")
        .await
        .select_by_value("newest")
        .await
        .unwrap();
    browser
        .until("newest first", || async {
            (table_emails(&browser).await == newest).then_some(())
        })
        .await;
    assert_eq!(aria_sort().await.as_deref(), Some("descending"));
    browser.close().await;
}

#[tokio::test]
async fn a_sale_shows_in_the_currency_it_was_sold_in_with_totals_per_currency() {
    let app = spawn_app().await;
    let t = app.create_tenant("Euro Page Ib").await;
    for email in ["eur@example.com", "usd@example.com"] {
        app.post_lead(&t.capture_token, &json!({ "email": email }))
            .await;
    }
    let sale = |email: &str, order: i64, cents: i64, currency: &str| {
        json!({"customer": {"email": email}, "order": {"id": order, "totalPrice": cents},
               "pricePlan": {"amount": cents, "currency": currency}})
    };
    event(
        &app,
        "eur1",
        "SALE_NEW",
        sale("eur@example.com", 21, 19_900, "eur"),
    )
    .await;
    event(
        &app,
        "eur2",
        "SALE_NEW",
        sale("eur@example.com", 22, 5_050, "eur"),
    )
    .await;
    event(
        &app,
        "usd1",
        "SALE_NEW",
        sale("usd@example.com", 23, 9_900, "usd"),
    )
    .await;
    let stats = api_json(&app, "/v1/dashboard/stats?days=30", &t).await;
    assert_eq!(
        stats["period"]["revenue"],
        json!([{"currency": "EUR", "cents": 24_950}, {"currency": "USD", "cents": 9_900}]),
        "the seeding itself"
    );

    let browser = Browser::start(Options::default()).await;
    signed_in(&browser, &app, &t.dashboard_token()).await;
    // What this browser's locale makes of each amount in its own currency.
    let as_sold = |amount: f64, currency: &'static str| {
        let browser = &browser;
        async move {
            browser
                .js(
                    "return new Intl.NumberFormat(navigator.language, {style: 'currency', currency: arguments[1]}).format(arguments[0])",
                    vec![json!(amount), json!(currency)],
                )
                .await
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let eur = as_sold(249.5, "EUR").await;
    let usd = as_sold(99.0, "USD").await;
    assert!(eur.contains('€') && usd.contains('$'), "{eur} {usd}");
    assert_eq!(
        browser.text("[data-kpi=revenue] dd").await,
        format!("{eur} · {usd}"),
        "each currency as sold, never added together"
    );
    assert!(
        browser
            .text("#funnel li[data-step=retain] .sub")
            .await
            .contains(&format!("{eur} · {usd}"))
    );

    let id = app.lead_row(&t.id, "eur@example.com").unwrap().id;
    browser
        .click(&format!(
            "#leads tbody tr[data-id='{id}'] button[data-open]"
        ))
        .await;
    let fields = browser
        .until_text("#lead-fields", |t| t.contains("Sales"))
        .await;
    assert!(fields.contains(&format!("2 · {eur}")), "{fields}");
    assert!(
        !fields.contains('$'),
        "a EUR sale dressed as dollars: {fields}"
    );
    browser.close().await;
}

#[tokio::test]
async fn workflows_list_the_tenants_tag_rules_on_top_of_the_built_in_ones() {
    let app = spawn_app().await;
    let t = app.create_tenant("Workflow Page Ib").await;
    crate::put_settings(
        &app,
        &t,
        json!({"tag_rules": {"webinar-*": "email_clicked", "converted": "ignore"}}),
    )
    .await;
    let settings = api_json(&app, "/v1/dashboard/settings", &t).await;
    let effective = settings["effective_tag_rules"].as_object().unwrap();
    let browser = Browser::start(Options::default()).await;
    signed_in(&browser, &app, &t.dashboard_token()).await;
    browser
        .until_text("#workflows li[data-rule='webinar-*']", |t| !t.is_empty())
        .await;

    let rows = browser.find_all("#workflows li").await;
    assert_eq!(rows.len(), effective.len(), "{effective:?}");
    // The tenant's own rules come first.
    let mut rules = Vec::new();
    for row in &rows {
        rules.push((
            row.attr("data-rule").await.unwrap().unwrap(),
            row.attr("data-own").await.unwrap().unwrap(),
        ));
    }
    assert_eq!(
        rules[..2],
        [
            ("converted".to_string(), "true".to_string()),
            ("webinar-*".to_string(), "true".to_string())
        ]
    );
    assert!(
        rules[2..].iter().all(|(_, own)| own == "false"),
        "{rules:?}"
    );
    let webinar = browser.text("#workflows li[data-rule='webinar-*']").await;
    assert_eq!(
        webinar,
        format!(
            "When a contact gets the tag {}webinar-* → count a click your rule",
            t.tag_prefix
        )
    );
    // The tenant's rule replaces the built-in one of the same tag.
    let converted = browser.text("#workflows li[data-rule='converted']").await;
    assert!(converted.ends_with("→ do nothing your rule"), "{converted}");
    let opened = browser
        .text("#workflows li[data-rule='email-opened']")
        .await;
    assert!(
        opened.ends_with("→ count an email opened built in"),
        "{opened}"
    );
    browser.close().await;
}

#[tokio::test]
async fn the_figures_are_read_again_after_a_minute_while_the_tab_is_visible_and_not_while_hidden() {
    let app = spawn_app().await;
    let t = app.create_tenant("Fresh Page Ib").await;
    app.post_lead(&t.capture_token, &json!({"email": "first@example.com"}))
        .await;
    let browser = Browser::start(Options::default()).await;
    signed_in(&browser, &app, &t.dashboard_token()).await;
    assert_eq!(browser.text("#lead-total").await, "1");
    assert!(browser.text("#updated").await.starts_with("Updated "));
    app.post_lead(&t.capture_token, &json!({"email": "second@example.com"}))
        .await;

    // The page's clock jumps a minute ahead and the tab's visibility is the test's to say;
    // each visibility change is answered at once (the stats request starts synchronously).
    let calls = browser
        .js(
            "let visibility = 'visible';
             Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => visibility });
             const seen = [];
             const realFetch = window.fetch;
             let requested = 0;
             window.fetch = (path, init) => {
               if (String(path).includes('/v1/dashboard/stats')) requested += 1;
               return realFetch(path, init);
             };
             document.dispatchEvent(new Event('visibilitychange'));
             seen.push(requested);
             const now = Date.now.bind(Date);
             Date.now = () => now() + 61000;
             visibility = 'hidden';
             document.dispatchEvent(new Event('visibilitychange'));
             seen.push(requested);
             visibility = 'visible';
             document.dispatchEvent(new Event('visibilitychange'));
             seen.push(requested);
             return seen;",
            vec![],
        )
        .await;
    assert_eq!(
        calls,
        json!([0, 0, 1]),
        "fresh figures, then hidden, then visible and a minute old"
    );
    browser.until_text("#lead-total", |t| t == "2").await;
    browser.close().await;
}

#[tokio::test]
async fn dates_numbers_and_money_follow_the_browsers_locale() {
    let app = spawn_app().await;
    let t = app.create_tenant("Locale Page Ib").await;
    seed_rollup(&app, &t.id, "2026-03-11", 1234, 0);
    app.post_lead(&t.capture_token, &json!({"email": "eur@example.com"}))
        .await;
    event(
        &app,
        "de1",
        "SALE_NEW",
        json!({"customer": {"email": "eur@example.com"}, "order": {"id": 31, "totalPrice": 24_950},
               "pricePlan": {"amount": 24_950, "currency": "eur"}}),
    )
    .await;
    let browser = Browser::start_in(Options::default(), Some("de-DE")).await;
    signed_in(&browser, &app, &t.dashboard_token()).await;
    let language = browser.js("return navigator.language", vec![]).await;
    assert!(
        language.as_str().unwrap().starts_with("de"),
        "the browser runs in German: {language}"
    );
    // German writes the euro after the amount, with a decimal comma (WebDriver reads the
    // no-break space before the sign as a space).
    assert_eq!(browser.text("[data-kpi=revenue] dd").await, "249,50 €");

    set_date(&browser, "#range-from", "2026-03-11").await;
    set_date(&browser, "#range-to", "2026-03-20").await;
    browser.click("#range button[type=submit]").await;
    browser
        .until_text("#window", |t| t == "11.03.2026 to 20.03.2026")
        .await;
    assert_eq!(browser.text("[data-kpi=captured] dd").await, "1.234");
    browser.close().await;
}
