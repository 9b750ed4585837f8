//! The dashboard's Alerts section against the `alerts` component: a rule made on the page, its
//! signing secret shown once, "Send test" reaching a local receiver with the Standard Webhooks
//! headers and a signature made with that secret, the delivery in the log, and a refused
//! destination explained beside the URL field in the API's own words.

use api_tests::{TestApp, TestTenant, assert_problem, spawn_app_with};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::api_json;
use crate::driver::{Browser, Options};

async fn signed_in(browser: &Browser, app: &TestApp, token: &str) {
    browser.goto(&crate::app_link(app, token)).await;
    browser.find("body[data-ready=true]").await;
}

/// What the API answers for a rule it is asked to create (the page sends the same body).
async fn post_rule(app: &TestApp, tenant: &TestTenant, rule: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/dashboard/alerts"))
        .bearer_auth(tenant.dashboard_token())
        .json(rule)
        .send()
        .await
        .unwrap()
}

/// Fills the alert editor: a `lead.captured` rule for volume high, sent as `json` to `url`.
async fn fill_rule(browser: &Browser, name: &str, url: &str) {
    browser.type_into("#alert-name", name).await;
    browser
        .find("#alert-event")
        .await
        .select_by_value("lead.captured")
        .await
        .unwrap();
    browser
        .find("#alert-volume")
        .await
        .select_by_value("high")
        .await
        .unwrap();
    browser.type_into("#alert-url", url).await;
    browser
        .find("#alert-format")
        .await
        .select_by_value("json")
        .await
        .unwrap();
}

/// A count as the page writes it in English: 1000 → "1,000".
fn grouped(n: &Value) -> String {
    let digits = n.as_i64().unwrap().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The value of header `name` of a received request, as text.
fn header(request: &wiremock::Request, name: &str) -> String {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("the delivery lacks {name}: {:?}", request.headers))
        .to_string()
}

#[tokio::test]
async fn a_rule_made_on_the_page_sends_a_signed_test_that_the_log_shows_delivered() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let origin = receiver.uri();
    let app =
        spawn_app_with(|spec| spec.with_env("SPIN_VARIABLE_ALERTS_DEV_ORIGIN", &origin)).await;
    let t = app.create_tenant("Alerts Page Ib").await;
    let browser = Browser::start(Options::default()).await;
    signed_in(&browser, &app, &t.dashboard_token()).await;
    assert!(browser.displayed("#alert-rules-empty").await);
    assert!(!browser.displayed("#alert-error").await);

    // A refused destination: the API's reason, beside the URL field.
    let refused = "https://localhost/x";
    let body = json!({"name": "VIP lead", "enabled": true,
        "when": {"event": "lead.captured", "volume": "high"},
        "destination": {"url": refused, "format": "json"}});
    let problem =
        assert_problem(post_rule(&app, &t, &body).await, 422, "destination_refused").await;
    let reason = problem["detail"].as_str().unwrap().to_string();
    browser.click("#alert-new").await;
    fill_rule(&browser, "VIP lead", refused).await;
    browser.click("#alert-save").await;
    let shown = browser
        .until_text(
            "#alert-form [data-field='destination.url'] .field-error",
            |t| !t.is_empty(),
        )
        .await;
    assert_eq!(shown, reason);
    let url_input = browser.find("#alert-url").await;
    assert_eq!(
        url_input.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert!(
        !browser
            .displayed("#alert-form [data-field='name'] .field-error")
            .await
    );
    assert!(!browser.displayed("#alert-form-error").await);
    assert_eq!(
        api_json(&app, "/v1/dashboard/alerts", &t).await["rules"],
        json!([]),
        "a refused rule is not stored"
    );

    // The receiver's origin is the exempted one: the rule is saved and the secret shown once.
    let hook = format!("{origin}/hook");
    browser.type_into("#alert-url", &hook).await;
    browser.click("#alert-save").await;
    let secret = browser
        .until("the signing secret", || async {
            if !browser.displayed("#alert-secret-box").await {
                return None;
            }
            let value = browser
                .find("#alert-secret")
                .await
                .prop("value")
                .await
                .ok()??;
            value.starts_with("whsec_").then_some(value)
        })
        .await;
    assert!(
        browser
            .text("#alert-secret-once")
            .await
            .contains("Shown once")
    );
    assert!(
        !browser.displayed("#alert-form").await,
        "the editor closes on save"
    );
    let alerts = api_json(&app, "/v1/dashboard/alerts", &t).await;
    assert_eq!(alerts["signing_secret_set"], true, "{alerts}");
    assert!(
        !alerts.to_string().contains(&secret),
        "the list never answers the secret"
    );
    let rules = alerts["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{alerts}");
    let rule_id = rules[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        rules[0]["when"],
        json!({"event": "lead.captured", "volume": "high"})
    );
    assert_eq!(
        rules[0]["destination"],
        json!({"url": hook, "format": "json"})
    );

    let item = format!("#alert-rules li[data-id='{rule_id}']");
    let text = browser.until_text(&item, |t| t.contains("VIP lead")).await;
    assert!(
        text.contains("When a new lead is captured with volume high (500+)"),
        "{text}"
    );
    let host = origin.trim_start_matches("http://");
    assert!(text.contains(&format!("{host} · JSON")), "{text}");
    let workflow = browser
        .text(&format!("#workflows li[data-alert='{rule_id}']"))
        .await;
    assert_eq!(
        workflow,
        format!("When a new lead is captured with volume high (500+) → notify {host} alert")
    );

    // "Send test": one signed POST to the receiver, then the log shows it delivered.
    browser.click(&format!("{item} button.rule-test")).await;
    let request = browser
        .until("the test delivery at the receiver", || async {
            let received = receiver.received_requests().await.unwrap_or_default();
            received.into_iter().find(|r| r.url.path() == "/hook")
        })
        .await;
    assert_eq!(request.method.as_str(), "POST");
    let id = header(&request, "webhook-id");
    let timestamp = header(&request, "webhook-timestamp");
    let signature = header(&request, "webhook-signature");
    let sent: Value = serde_json::from_slice(&request.body).expect("a JSON body");
    assert_eq!(sent["type"], "test", "{sent}");
    let seconds: i64 = timestamp.parse().expect("seconds since the epoch");
    assert!((seconds - api_tests::now()).abs() < 120, "{timestamp}");
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("the secret is base64 after whsec_");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert!(
        signature.split(' ').any(|s| s == expected),
        "{signature} is not {expected}"
    );

    let row = format!("#deliveries tbody tr[data-id='{id}']");
    browser
        .until_text(&format!("{row} td.status"), |t| t == "delivered")
        .await;
    assert_eq!(browser.text(&format!("{row} td.rule")).await, "VIP lead");
    assert_eq!(browser.text(&format!("{row} td.code")).await, "200");
    assert_eq!(browser.text(&format!("{row} td.attempts")).await, "1");
    assert_eq!(browser.text(&format!("{row} td.next")).await, "—");
    assert_eq!(
        browser
            .find(&row)
            .await
            .attr("data-rule")
            .await
            .unwrap()
            .as_deref(),
        Some(rule_id.as_str())
    );
    let status = browser.until_text("#alert-status", |t| !t.is_empty()).await;
    assert!(status.contains("delivered, HTTP 200"), "{status}");
    // The limits as the API reads them after the test.
    let alerts = api_json(&app, "/v1/dashboard/alerts", &t).await;
    let limits = format!(
        "1 of {} alerts · {} of {} delivery attempts today",
        grouped(&alerts["limits"]["rules"]),
        grouped(&alerts["deliveries_today"]),
        grouped(&alerts["limits"]["deliveries_per_day"])
    );
    browser.until_text("#alert-limits", |t| t == limits).await;
    browser.screenshot("alerts").await;

    // "Redeliver": the same webhook-id again, and the log read again.
    browser.click(&format!("{row} button.redeliver")).await;
    let again = browser
        .until("the redelivery at the receiver", || async {
            let received = receiver.received_requests().await.unwrap_or_default();
            received
                .into_iter()
                .filter(|r| r.url.path() == "/hook")
                .nth(1)
        })
        .await;
    assert_eq!(header(&again, "webhook-id"), id);
    let redelivered = browser
        .until_text("#delivery-status", |t| !t.is_empty())
        .await;
    assert!(redelivered.contains("delivered, HTTP 200"), "{redelivered}");
    browser
        .until_text(&format!("{row} td.status"), |t| t == "delivered")
        .await;

    // The switch: a PUT with enabled off, and the rule says so.
    browser.click(&format!("{item} input.rule-enabled")).await;
    browser
        .find(&format!(
            "#alert-rules li[data-id='{rule_id}'][data-enabled='false']"
        ))
        .await;
    let rule = api_json(&app, &format!("/v1/dashboard/alerts/{rule_id}"), &t).await;
    assert_eq!(rule["enabled"], false, "{rule}");
    assert_eq!(
        rule["when"],
        json!({"event": "lead.captured", "volume": "high"})
    );
    assert!(
        browser
            .text(&format!("{item} .rule-status"))
            .await
            .contains("switched off")
    );

    // Shown once: the page loaded again says a secret is set and shows none.
    browser.client.refresh().await.unwrap();
    browser.find("body[data-ready=true]").await;
    browser.find(&item).await;
    assert!(!browser.displayed("#alert-secret-box").await);
    assert!(browser.displayed("#alert-secret-set").await);
    browser.close().await;
}
