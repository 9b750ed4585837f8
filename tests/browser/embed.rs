//! `/embed/v1.js` on a landing page served from another origin: the fetch() post with its real
//! CORS preflight, the inline answers, the honeypot, a refused origin, and the same form without
//! JavaScript landing on the tenant's https thank-you page through the `303`.

use api_tests::{TestApp, TestTenant, spawn_app};
use serde_json::json;

use crate::driver::{Browser, Options};
use crate::servers::{Site, serve_http, serve_https};
use crate::{api_json, put_settings};

/// A landing page with the dashboard's snippet; `script` adds the embed script.
fn landing_page(app: &TestApp, tenant: &TestTenant, script: bool) -> String {
    let script = if script {
        format!(
            "<script src=\"{}/embed/v1.js\" defer></script>",
            app.base_url
        )
    } else {
        String::new()
    };
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Become a partner</title></head><body>
<h1>Grow your IB business</h1>
<form data-clientflow method="post" action="{base}/v1/leads?key={key}" novalidate>
  <input type="email" name="email" placeholder="you@example.com">
  <input name="name" placeholder="Your name">
  <select name="ib_type"><option value="forex-ib">Forex IB</option><option value="crypto-affiliate">Crypto affiliate</option></select>
  <select name="monthly_leads"><option>0-100</option><option>100-500</option><option>500+</option></select>
  <input type="hidden" name="form" value="demo-request">
  <label><input type="checkbox" name="consent" value="true"> I agree to be contacted</label>
  <input type="text" name="_gotcha" tabindex="-1" autocomplete="off" aria-hidden="true" hidden>
  <button>Request a demo</button>
</form>
{script}
</body></html>"#,
        base = app.base_url,
        key = tenant.capture_token,
    )
}

async fn leads_named(app: &TestApp, tenant: &TestTenant, q: &str) -> Vec<serde_json::Value> {
    api_json(app, &format!("/v1/dashboard/leads?q={q}"), tenant).await["leads"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn the_embed_script_posts_from_another_origin_through_cors_and_shows_the_answer_inline() {
    let app = spawn_app().await;
    let t = app.create_tenant("Embed Ib").await;
    let site = Site::default();
    site.page("/", landing_page(&app, &t, true));
    let landing = serve_http(site.clone()).await;
    assert_ne!(landing, app.base_url, "the landing page is another origin");
    // Only this landing page's origin may post, so the preflight is judged against it.
    put_settings(&app, &t, json!({"allowed_origins": [landing.clone()]})).await;

    let browser = Browser::start(Options::default()).await;
    browser
        .goto(&format!(
            "{landing}/?utm_source=facebook&utm_campaign=spring"
        ))
        .await;
    browser
        .until("the embed script", || async {
            let ready = browser
                .js(
                    "return window.ClientFlow && window.ClientFlow.version",
                    vec![],
                )
                .await;
            (ready == json!(1)).then_some(())
        })
        .await;
    // The honeypot is in the form and out of sight.
    let trap = browser
        .find("form[data-clientflow] input[name=_gotcha]")
        .await;
    assert!(!trap.is_displayed().await.unwrap());

    // A field the API refuses: a message next to that field, announced, the typed values
    // kept; nothing stored.
    browser.type_into("input[name=email]", "not-an-email").await;
    browser.type_into("input[name=name]", "Vera Visitor").await;
    browser.click("form[data-clientflow] button").await;
    let note = browser
        .until_text("[data-clientflow-field-error=email]", |t| !t.is_empty())
        .await;
    assert_eq!(note, "Please enter a valid email address.");
    let beside = browser
        .js(
            "const f = document.querySelector('input[name=email]');
             return [f.nextElementSibling.getAttribute('data-clientflow-field-error'),
                     f.getAttribute('aria-invalid'), f.value,
                     document.querySelector('input[name=name]').value,
                     document.querySelector('[data-clientflow-message]').getAttribute('aria-live')];",
            vec![],
        )
        .await;
    assert_eq!(
        beside,
        json!(["email", "true", "not-an-email", "Vera Visitor", "polite"])
    );
    assert_eq!(app.lead_count(&t.id), 0);

    browser
        .type_into("input[name=email]", "visitor@example.com")
        .await;
    browser.type_into("input[name=name]", "Vera Visitor").await;
    browser
        .find("select[name=monthly_leads]")
        .await
        .select_by_index(2)
        .await
        .unwrap();
    browser.click("input[name=consent]").await;
    browser.click("form[data-clientflow] button").await;
    browser
        .until_text("[data-clientflow-message=sent]", |t| {
            t.starts_with("Thank you")
        })
        .await;
    // The page did not navigate: the answer came back through CORS.
    assert_eq!(
        browser
            .client
            .current_url()
            .await
            .unwrap()
            .origin()
            .ascii_serialization(),
        landing
    );
    let leads = leads_named(&app, &t, "visitor@example.com").await;
    assert_eq!(leads.len(), 1, "{leads:?}");
    let lead = &leads[0];
    assert_eq!(lead["name"], "Vera Visitor");
    assert_eq!(lead["monthly_leads"], "500+");
    assert_eq!(lead["consent"], true);
    assert_eq!(lead["utm_source"], "facebook");
    assert_eq!(lead["utm_campaign"], "spring");
    assert_eq!(
        lead["page_url"],
        format!("{landing}/?utm_source=facebook&utm_campaign=spring")
    );
    // The form was reset for the next visitor.
    let email = browser
        .find("input[name=email]")
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(email.as_deref(), Some(""));

    // A bot that fills the honeypot is told the same, and stored nowhere.
    browser
        .type_into("input[name=email]", "bot@example.com")
        .await;
    browser
        .js(
            "document.querySelector('input[name=_gotcha]').value = 'http://spam.example'",
            vec![],
        )
        .await;
    browser.click("form[data-clientflow] button").await;
    browser
        .until_text("[data-clientflow-message=sent]", |t| {
            t.starts_with("Thank you")
        })
        .await;
    assert!(app.lead_row(&t.id, "bot@example.com").is_none());
    let stats = api_json(&app, "/v1/dashboard/stats", &t).await;
    assert_eq!(stats["spam"], 1);
    assert_eq!(app.lead_count(&t.id), 1);
    browser.close().await;
}

#[tokio::test]
async fn a_landing_page_on_a_disallowed_origin_is_refused_and_says_so() {
    let app = spawn_app().await;
    let t = app.create_tenant("Refused Ib").await;
    put_settings(
        &app,
        &t,
        json!({"allowed_origins": ["https://lp.example.com"]}),
    )
    .await;
    let site = Site::default();
    site.page("/", landing_page(&app, &t, true));
    let landing = serve_http(site).await;

    let browser = Browser::start(Options::default()).await;
    browser.goto(&format!("{landing}/")).await;
    browser
        .type_into("input[name=email]", "stranger@example.com")
        .await;
    browser.click("form[data-clientflow] button").await;
    // The refused preflight hides the answer from the page, which asks the visitor to retry.
    let error = browser
        .until_text("[data-clientflow-message=error]", |t| !t.is_empty())
        .await;
    assert!(error.contains("could not send your request"), "{error}");
    assert_eq!(app.lead_count(&t.id), 0);
    // The preflight itself was the refusal: 403 for this origin.
    let preflight = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            app.url(&format!("/v1/leads?key={}", t.capture_token)),
        )
        .header("origin", &landing)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "idempotency-key")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 403);
    browser.close().await;
}

#[tokio::test]
async fn without_javascript_the_plain_form_lands_on_the_https_thank_you_page() {
    const THANKS_HOST: &str = "thanks.clientflow.test";
    let app = spawn_app().await;
    let t = app.create_tenant("Plain Ib").await;
    let thanks = Site::default();
    thanks.page(
        "/thanks",
        "<!doctype html><title>Thanks</title><h1>Thanks from the landing page</h1>".into(),
    );
    let thanks_port = serve_https(thanks.clone(), THANKS_HOST).await;
    let site = Site::default();
    site.page("/plain", landing_page(&app, &t, false));
    let landing = serve_http(site).await;
    put_settings(
        &app,
        &t,
        json!({
            "allowed_origins": [landing.clone()],
            "thank_you_url": format!("https://{THANKS_HOST}/thanks"),
        }),
    )
    .await;

    let browser = Browser::start(Options {
        map_hosts: vec![(THANKS_HOST.into(), thanks_port)],
    })
    .await;
    browser.goto(&format!("{landing}/plain")).await;
    let trap = browser.find("input[name=_gotcha]").await;
    assert!(!trap.is_displayed().await.unwrap(), "the honeypot shows");
    browser
        .type_into("input[name=email]", "plain@example.com")
        .await;
    browser.click("form[data-clientflow] button").await;
    browser
        .until_text("h1", |t| t == "Thanks from the landing page")
        .await;
    assert_eq!(
        browser.client.current_url().await.unwrap().as_str(),
        format!("https://{THANKS_HOST}/thanks")
    );
    assert!(
        thanks
            .requests()
            .contains(&"GET /thanks HTTP/1.1".to_string()),
        "{:?}",
        thanks.requests()
    );
    let leads = leads_named(&app, &t, "plain@example.com").await;
    assert_eq!(leads.len(), 1, "{leads:?}");
    assert_eq!(leads[0]["ib_type"], "forex-ib");
    browser.close().await;
}

#[tokio::test]
async fn with_javascript_the_visitor_lands_on_the_thank_you_page_with_attribution_stored() {
    const THANKS_HOST: &str = "thanks.clientflow.test";
    let app = spawn_app().await;
    let t = app.create_tenant("Redirect Ib").await;
    let thanks = Site::default();
    thanks.page(
        "/thanks",
        "<!doctype html><title>Thanks</title><h1>Thanks, pixel fired</h1>".into(),
    );
    let thanks_port = serve_https(thanks.clone(), THANKS_HOST).await;
    let site = Site::default();
    site.page("/", landing_page(&app, &t, true));
    site.page(
        "/ad",
        "<!doctype html><title>Ad</title><a id=go href=\"/?utm_source=google&utm_term=forex+ib&utm_content=hero&gclid=Cj0-g&fbclid=IwAR-f&ttclid=E.C.P\">Partner with us</a>".into(),
    );
    let landing = serve_http(site).await;
    put_settings(
        &app,
        &t,
        json!({
            "allowed_origins": [landing.clone()],
            "thank_you_url": format!("https://{THANKS_HOST}/thanks"),
        }),
    )
    .await;
    let browser = Browser::start(Options {
        map_hosts: vec![(THANKS_HOST.into(), thanks_port)],
    })
    .await;
    // The visitor arrives from another page, so the landing page has a referrer.
    browser.goto(&format!("{landing}/ad")).await;
    browser.click("#go").await;
    browser
        .until("the embed script", || async {
            let ready = browser
                .js(
                    "return window.ClientFlow && window.ClientFlow.version",
                    vec![],
                )
                .await;
            (ready == json!(1)).then_some(())
        })
        .await;
    browser
        .type_into("input[name=email]", "redirected@example.com")
        .await;
    browser.click("form[data-clientflow] button").await;
    browser
        .until_text("h1", |t| t == "Thanks, pixel fired")
        .await;
    assert_eq!(
        browser.client.current_url().await.unwrap().as_str(),
        format!("https://{THANKS_HOST}/thanks")
    );
    let leads = leads_named(&app, &t, "redirected@example.com").await;
    assert_eq!(leads.len(), 1, "{leads:?}");
    let lead = &leads[0];
    for (field, value) in [
        ("utm_source", "google"),
        ("utm_term", "forex ib"),
        ("utm_content", "hero"),
        ("gclid", "Cj0-g"),
        ("fbclid", "IwAR-f"),
        ("ttclid", "E.C.P"),
    ] {
        assert_eq!(lead[field], value, "{field}");
    }
    assert_eq!(lead["referrer"], format!("{landing}/ad"));
    browser.close().await;
}

#[tokio::test]
async fn a_form_that_opts_out_stays_on_the_page_and_shows_its_own_field_error_text() {
    let app = spawn_app().await;
    let t = app.create_tenant("Stay Ib").await;
    let site = Site::default();
    let page = landing_page(&app, &t, true).replace(
        "<form data-clientflow ",
        "<form data-clientflow data-clientflow-redirect=\"off\" data-clientflow-error-email=\"Diese E-Mail-Adresse stimmt nicht.\" ",
    );
    site.page("/", page);
    let landing = serve_http(site).await;
    put_settings(
        &app,
        &t,
        json!({"thank_you_url": "https://thanks.clientflow.test/thanks"}),
    )
    .await;
    let browser = Browser::start(Options::default()).await;
    browser.goto(&format!("{landing}/")).await;
    browser
        .until("the embed script", || async {
            let ready = browser
                .js(
                    "return window.ClientFlow && window.ClientFlow.version",
                    vec![],
                )
                .await;
            (ready == json!(1)).then_some(())
        })
        .await;
    browser.type_into("input[name=email]", "nope").await;
    browser.type_into("input[name=name]", "Stay Put").await;
    browser.click("form[data-clientflow] button").await;
    let note = browser
        .until_text("[data-clientflow-field-error=email]", |t| !t.is_empty())
        .await;
    assert_eq!(note, "Diese E-Mail-Adresse stimmt nicht.");
    let name = browser.find("input[name=name]").await.prop("value").await;
    assert_eq!(name.unwrap().as_deref(), Some("Stay Put"));
    browser
        .type_into("input[name=email]", "stay@example.com")
        .await;
    browser.click("form[data-clientflow] button").await;
    browser
        .until_text("[data-clientflow-message=sent]", |t| {
            t.starts_with("Thank you")
        })
        .await;
    assert!(
        browser
            .js(
                "return document.querySelectorAll('[data-clientflow-field-error]').length",
                vec![]
            )
            .await
            == json!(0),
        "the field error is gone after a good post"
    );
    assert_eq!(
        browser
            .client
            .current_url()
            .await
            .unwrap()
            .origin()
            .ascii_serialization(),
        landing,
        "no redirect for a form that opts out"
    );
    assert_eq!(leads_named(&app, &t, "stay@example.com").await.len(), 1);
    browser.close().await;
}

#[tokio::test]
async fn on_a_503_the_script_asks_the_visitor_to_retry_and_a_retry_reuses_its_idempotency_key() {
    let app = spawn_app().await;
    // A capture endpoint on a third origin that is briefly unavailable, as the app answers
    // while its storage is.
    let edge = Site::default();
    edge.fail("/v1/leads", 503);
    let edge_origin = serve_http(edge.clone()).await;
    let site = Site::default();
    let landing = serve_http(site.clone()).await;
    site.page(
        "/",
        format!(
            r#"<!doctype html><meta charset="utf-8"><title>Offer</title>
<form data-clientflow method="post" action="{edge_origin}/v1/leads?key=k">
  <input type="email" name="email"><button>Send</button>
</form>
<script src="{}/embed/v1.js"></script>"#,
            app.base_url
        ),
    );

    let browser = Browser::start(Options::default()).await;
    browser.goto(&format!("{landing}/")).await;
    browser
        .type_into("input[name=email]", "patient@example.com")
        .await;
    for attempt in 1..=2 {
        browser.click("form[data-clientflow] button").await;
        browser
            .until(
                &format!("attempt {attempt} to reach the endpoint"),
                || async {
                    let posts = edge.header_values("POST ", "idempotency-key").len();
                    (posts == attempt).then_some(())
                },
            )
            .await;
        let error = browser
            .until_text("[data-clientflow-message=error]", |t| {
                t.contains("try again")
            })
            .await;
        assert!(
            error.starts_with("We could not send your request"),
            "{error}"
        );
        // The button is usable again for the retry.
        browser
            .until("the button to come back", || async {
                let button = browser.find("form[data-clientflow] button").await;
                button.is_enabled().await.ok()?.then_some(())
            })
            .await;
    }
    // The same answers again carry the same key (no second lead once it works); a changed
    // answer is a new request with a new key.
    browser
        .type_into("input[name=email]", "changed@example.com")
        .await;
    browser.click("form[data-clientflow] button").await;
    browser
        .until("the third post", || async {
            (edge.header_values("POST ", "idempotency-key").len() == 3).then_some(())
        })
        .await;
    let keys = edge.header_values("POST ", "idempotency-key");
    assert!(keys.iter().all(Option::is_some), "{keys:?}");
    assert_eq!(keys[0], keys[1], "a retry reuses its key");
    assert_ne!(keys[1], keys[2], "a changed answer gets a new key");
    // The browser asked first: the key header made the cross-origin post preflighted.
    assert!(
        edge.requests()
            .iter()
            .any(|r| r.starts_with("OPTIONS /v1/leads")),
        "{:?}",
        edge.requests()
    );
    browser.close().await;
}

#[tokio::test]
async fn the_embed_script_shows_the_tenants_captcha_and_sends_how_long_the_form_was_shown() {
    let app = spawn_app().await;
    let t = app.create_tenant("Captcha Embed").await;
    put_settings(
        &app,
        &t,
        json!({"captcha": {"provider": "turnstile", "site_key": "0xSITE", "secret": "0xSECRET"}}),
    )
    .await;
    let site = Site::default();
    site.page(
        "/",
        landing_page(&app, &t, true).replace(
            "<form data-clientflow ",
            "<form data-clientflow data-clientflow-captcha=\"turnstile\" \
             data-clientflow-sitekey=\"0xSITE\" data-clientflow-error-captcha=\"Prove it again.\" ",
        ),
    );
    let landing = serve_http(site.clone()).await;

    let browser = Browser::start(Options::default()).await;
    browser.goto(&format!("{landing}/")).await;
    // The widget sits before the button with the tenant's site key, and the provider's script
    // is asked for (it loads nothing here: there is no network to reach it).
    let widget = browser
        .until("the captcha widget", || async {
            let found = browser
                .js(
                    "const w = document.querySelector('form[data-clientflow] .cf-turnstile');
                     const s = document.querySelector('script[src^=\"https://challenges.cloudflare.com/turnstile/v0/api.js\"]');
                     return w && [w.getAttribute('data-sitekey'), w.nextElementSibling.tagName, !!s];",
                    vec![],
                )
                .await;
            (!found.is_null()).then_some(found)
        })
        .await;
    assert_eq!(widget, json!(["0xSITE", "BUTTON", true]));

    // No token (the widget never ran): the check fails, the visitor is told so and keeps what
    // they typed; nothing is stored.
    browser
        .type_into("input[name=email]", "vera@example.com")
        .await;
    browser.click("form[data-clientflow] button").await;
    let error = browser
        .until_text("[data-clientflow-message=error]", |t| !t.is_empty())
        .await;
    assert_eq!(error, "Prove it again.");
    let kept = browser
        .find("input[name=email]")
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("vera@example.com"));
    assert_eq!(app.lead_count(&t.id), 0);

    // Without the captcha, a one-second minimum: a post once the page has been shown longer
    // is stored, which it is only when the script sent how long that was.
    put_settings(&app, &t, json!({"captcha": null, "min_fill_seconds": 1})).await;
    browser
        .until("the page to be shown for over a second", || async {
            let ms = browser.js("return performance.now()", vec![]).await;
            (ms.as_f64().unwrap_or_default() > 1500.0).then_some(())
        })
        .await;
    browser
        .type_into("input[name=email]", "patient@example.com")
        .await;
    browser.click("form[data-clientflow] button").await;
    browser
        .until_text("[data-clientflow-message=sent]", |t| {
            t.starts_with("Thank you")
        })
        .await;
    assert_eq!(leads_named(&app, &t, "patient@example.com").await.len(), 1);

    // A minimum longer than the page has been shown: the same thank-you, nothing stored.
    put_settings(&app, &t, json!({"min_fill_seconds": 60})).await;
    browser
        .type_into("input[name=email]", "quick@example.com")
        .await;
    browser.click("form[data-clientflow] button").await;
    browser
        .until_text("[data-clientflow-message=sent]", |t| {
            t.starts_with("Thank you")
        })
        .await;
    assert!(leads_named(&app, &t, "quick@example.com").await.is_empty());
    assert_eq!(app.lead_count(&t.id), 1);
    browser.close().await;
}
