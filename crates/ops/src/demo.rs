//! `cfe-ops demo`: the first five minutes. Waits for a running app to answer `/v1/health`; on an
//! app with no tenant yet, creates a demo tenant and walks a dozen sample leads through the funnel;
//! then prints one line: the demo tenant's dashboard link and a `curl` that posts a lead.
//!
//! Everything goes through the app's public API, as the SaaS back end, a landing page and
//! Systeme.io would: a signed signup, captures with the tenant's capture key, signed Systeme.io
//! callbacks (tags, an opt-in, sales). So the numbers the dashboard shows are computed by the
//! app itself, and a seeded lead has the timeline a real one would.

use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use domain::secret::{SystemeSecret, TokenSecret, WebhookSecret};
use domain::token::{Claims, Scope};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

use crate::env::{env_secret, now};
use Step::{OptIn, Sale, Tag};

/// The demo tenant's sign-up email: how a later run finds the tenant again.
const DEMO_EMAIL: &str = "demo-ib@clientflow.example";
const DEMO_NAME: &str = "Demo IB";
/// How long the printed dashboard link stays valid (a dashboard token may live 24 hours).
const LINK_TTL_SECS: i64 = 12 * 3600;

/// Where a sample lead gets to after its capture.
#[derive(Clone, Copy)]
enum Step {
    /// A tag under the tenant's prefix, added by a Systeme.io automation.
    Tag(&'static str),
    /// The contact confirms its subscription.
    OptIn,
    /// A sale, in cents of US dollars.
    Sale(i64),
}

/// A sample lead: what the landing page posts, then what happens to it.
struct Sample {
    /// The part of the email before `@example.com`.
    local: &'static str,
    name: &'static str,
    ib_type: &'static str,
    volume: &'static str,
    source: &'static str,
    steps: &'static [Step],
}

const SENT: Step = Tag("email-sent");
const OPENED: Step = Tag("email-opened");
const CLICKED: Step = Tag("email-clicked");

/// Twelve leads across every stage: 1 retained (two sales), 2 converted (a sale, a tag),
/// 3 engaged, 3 nurturing (one by an opt-in), 3 new.
#[rustfmt::skip]
const SAMPLES: &[Sample] = &[
    sample("ana.silva", "Ana Silva", "forex-ib", "500+", "facebook", &[SENT, OPENED, CLICKED, Sale(49_900), Sale(19_900)]),
    sample("ben.okafor", "Ben Okafor", "forex-ib", "100-500", "google", &[SENT, OPENED, CLICKED, Tag("converted")]),
    sample("chloe.martin", "Chloé Martin", "crypto-affiliate", "100-500", "facebook", &[SENT, OPENED, Sale(19_900)]),
    sample("david.chen", "David Chen", "cfd-partner", "0-100", "linkedin", &[SENT, OPENED, CLICKED]),
    sample("elena.rossi", "Elena Rossi", "forex-ib", "500+", "google", &[SENT, OPENED]),
    sample("farid.haddad", "Farid Haddad", "crypto-affiliate", "0-100", "youtube", &[SENT, OPENED]),
    sample("grace.kim", "Grace Kim", "forex-ib", "100-500", "facebook", &[SENT]),
    sample("hugo.petit", "Hugo Petit", "cfd-partner", "0-100", "newsletter", &[SENT]),
    sample("ines.garcia", "Inés García", "crypto-affiliate", "500+", "google", &[OptIn]),
    sample("jonas.weber", "Jonas Weber", "forex-ib", "0-100", "", &[]),
    sample("kemi.adeyemi", "Kemi Adeyemi", "cfd-partner", "100-500", "facebook", &[]),
    sample("liam.walsh", "Liam Walsh", "crypto-affiliate", "", "linkedin", &[]),
];

const fn sample(
    local: &'static str,
    name: &'static str,
    ib_type: &'static str,
    volume: &'static str,
    source: &'static str,
    steps: &'static [Step],
) -> Sample {
    Sample {
        local,
        name,
        ib_type,
        volume,
        source,
        steps,
    }
}

/// What `cfe-ops demo` was asked to do.
#[derive(Debug)]
pub struct Options {
    /// The app's base URL, e.g. `http://127.0.0.1:3000`.
    pub url: String,
    /// Create the demo tenant when the app has no tenant yet.
    pub seed: bool,
    /// How long to wait for `/v1/health` to answer `200`.
    pub wait: Duration,
}

pub fn run(options: &Options) -> Result<()> {
    let app = App::new(&options.url)?;
    app.wait_healthy(options.wait)?;
    let tenants = app.tenants()?;
    let demo = tenants
        .iter()
        .find(|t| t.get("email").and_then(Value::as_str) == Some(DEMO_EMAIL))
        .map(|t| text(t, "id"))
        .transpose()?;
    let demo = match demo {
        Some(id) => Some(id),
        None if tenants.is_empty() && options.seed => Some(app.seed()?),
        None => None,
    };
    match demo {
        Some(id) => println!("{}", app.first_line(&id)?),
        None if tenants.is_empty() => println!(
            "Serving {}: no tenants yet (docs/guide.md#tenants-and-tokens signs one up)",
            app.base
        ),
        None => println!(
            "Serving {}: {} tenants, none of them the demo (docs/guide.md#tenants-and-tokens mints a dashboard link)",
            app.base,
            tenants.len()
        ),
    }
    Ok(())
}

/// The running app, over HTTP; each call signs with the secret its route checks.
struct App {
    base: String,
    http: Client,
}

impl App {
    fn new(url: &str) -> Result<Self> {
        let http = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            base: url.trim_end_matches('/').to_string(),
            http,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Polls `/v1/health` until it answers `200` (the first start compiles the components).
    fn wait_healthy(&self, patience: Duration) -> Result<()> {
        let deadline = Instant::now() + patience;
        loop {
            let last = match self.http.get(self.url("/v1/health")).send() {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => format!("{} {}", resp.status(), resp.text().unwrap_or_default()),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                bail!(
                    "{} did not become healthy within {patience:?}: {last}",
                    self.base
                );
            }
            sleep(Duration::from_millis(250));
        }
    }

    /// Every tenant, in the operator's view (`GET /v1/admin/tenants`, page by page).
    fn tenants(&self) -> Result<Vec<Value>> {
        let admin = mint_admin()?;
        let mut tenants = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self
                .http
                .get(self.url("/v1/admin/tenants"))
                .query(&[("limit", "500")])
                .bearer_auth(&admin);
            if let Some(cursor) = &cursor {
                req = req.query(&[("cursor", cursor)]);
            }
            let page = expect_json(req, 200, "listing tenants")?;
            if let Some(list) = page.get("tenants").and_then(Value::as_array) {
                tenants.extend(list.iter().cloned());
            }
            match page.get("next_cursor").and_then(Value::as_str) {
                Some(next) => cursor = Some(next.to_string()),
                None => return Ok(tenants),
            }
        }
    }

    /// The one line: the dashboard link, and a curl that posts a lead with the current capture
    /// key.
    fn first_line(&self, tenant: &str) -> Result<String> {
        let dashboard = mint_dashboard(tenant)?;
        let key = self
            .http
            .get(self.url("/v1/dashboard/capture-key"))
            .bearer_auth(&dashboard);
        let key = expect_json(key, 200, "reading the capture key")?;
        let key = text(&key, "capture_token")?;
        Ok(format!(
            "Dashboard: {}   Post a lead: curl -d 'email=you@example.com&name=You' '{}'",
            self.url(&format!("/app/#token={dashboard}")),
            self.url(&format!("/v1/leads?key={key}")),
        ))
    }

    /// Creates the demo tenant and its leads; returns the tenant id.
    fn seed(&self) -> Result<String> {
        let tenant = self.sign_up()?;
        let id = text(&tenant, "id")?;
        let prefix = text(&tenant, "tag_prefix")?;
        let capture = text(&tenant, "capture_token")?;
        for sample in SAMPLES {
            self.capture(&capture, sample)?;
        }
        // A bot filling the hidden honeypot field: answered like a lead, counted as spam.
        self.http
            .post(self.url("/v1/leads"))
            .bearer_auth(&capture)
            .json(&json!({"email": "bot@example.net", "_gotcha": "https://example.net"}))
            .send()
            .and_then(Response::error_for_status)
            .context("posting the honeypot lead")?;
        let mut order = 0;
        for sample in SAMPLES {
            for (n, step) in sample.steps.iter().enumerate() {
                let event = Callback::new(&prefix, sample, *step, &mut order);
                self.callback(&format!("demo-{}-{n}", sample.local), &event)?;
            }
        }
        Ok(id)
    }

    fn sign_up(&self) -> Result<Value> {
        let secret = WebhookSecret::parse(&env_secret("SPIN_VARIABLE_SIGNUP_SECRET")?)?;
        let body = json!({"name": DEMO_NAME, "email": DEMO_EMAIL, "plan": "starter"}).to_string();
        // A fixed webhook id: a signup retried after an interruption returns the same tenant.
        let id = "msg_clientflow_demo";
        let ts = now()?;
        let signature = domain::signature::sign_standard(&secret, id, ts, body.as_bytes());
        let req = self
            .http
            .post(self.url("/v1/tenants"))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body);
        expect_json(req, 201, "signing up the demo tenant")
    }

    fn capture(&self, capture: &str, sample: &Sample) -> Result<()> {
        let mut lead = json!({
            "email": email(sample),
            "name": sample.name,
            "ib_type": sample.ib_type,
            "form": "demo-request",
            "consent": true,
            "page_url": "https://lp.demo-ib.example/forex-partners",
            "monthly_leads": sample.volume,
            "utm_source": sample.source,
            "utm_campaign": if sample.source.is_empty() { "" } else { "spring-launch" },
        });
        // What a sample does not have, its form leaves out.
        if let Value::Object(fields) = &mut lead {
            fields.retain(|_, value| value.as_str() != Some(""));
        }
        let req = self
            .http
            .post(self.url("/v1/leads"))
            .bearer_auth(capture)
            .json(&lead);
        expect_json(req, 201, &format!("capturing {}", email(sample)))?;
        Ok(())
    }

    /// Posts a Systeme.io callback signed with `systeme_webhook_secret`; it must apply.
    fn callback(&self, message_id: &str, event: &Callback) -> Result<()> {
        let secret = SystemeSecret::parse(&env_secret("SPIN_VARIABLE_SYSTEME_WEBHOOK_SECRET")?)?;
        let body = event.body.to_string();
        let req = self
            .http
            .post(self.url("/v1/systeme/events"))
            .header("content-type", "application/json")
            .header("x-webhook-event", event.name)
            .header("x-webhook-message-id", message_id)
            .header(
                "x-webhook-signature",
                domain::signature::sign_systeme(&secret, body.as_bytes()),
            )
            .body(body);
        let answer = expect_json(req, 200, &format!("{} {message_id}", event.name))?;
        if answer.get("status").and_then(Value::as_str) != Some("applied") {
            bail!("{} {message_id} was not applied: {answer}", event.name);
        }
        Ok(())
    }
}

/// A Systeme.io callback as its webhook sends it.
struct Callback {
    name: &'static str,
    body: Value,
}

impl Callback {
    fn new(prefix: &str, sample: &Sample, step: Step, order: &mut i64) -> Self {
        let email = email(sample);
        let tag = |suffix: &str| {
            let name = format!("{prefix}{suffix}");
            json!({"id": tag_id(suffix), "name": name})
        };
        match step {
            Tag(suffix) => Self {
                name: "CONTACT_TAG_ADDED",
                body: json!({
                    "contact": {"email": email, "tags": [tag("demo-request"), tag(suffix)]},
                    "tag": tag(suffix),
                }),
            },
            OptIn => Self {
                name: "CONTACT_OPT_IN",
                body: json!({"contact": {"email": email, "tags": [tag("demo-request")]}}),
            },
            Sale(cents) => {
                *order += 1;
                Self {
                    name: "SALE_NEW",
                    body: json!({
                        "customer": {"email": email},
                        "order": {"id": 90_000 + *order, "totalPrice": cents},
                        "pricePlan": {"name": "IB mentorship", "amount": cents, "currency": "usd"},
                    }),
                }
            }
        }
    }
}

/// A stable made-up Systeme.io tag id per suffix.
fn tag_id(suffix: &str) -> u64 {
    suffix
        .bytes()
        .fold(7_000, |id, b| (id * 31 + u64::from(b)) % 1_000_000)
}

fn email(sample: &Sample) -> String {
    format!("{}@example.com", sample.local)
}

fn text(value: &Value, key: &str) -> Result<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("no {key} in {value}"))
}

/// Sends `req` and returns its JSON body, or an error naming `what` unless the status is
/// `status`.
fn expect_json(req: RequestBuilder, status: u16, what: &str) -> Result<Value> {
    let resp: Response = req.send().with_context(|| what.to_string())?;
    let got = resp.status().as_u16();
    let body = resp.text().unwrap_or_default();
    if got != status {
        bail!("{what}: expected {status}, got {got}: {body}");
    }
    serde_json::from_str(&body).with_context(|| format!("{what}: not JSON: {body}"))
}

fn mint_admin() -> Result<String> {
    let secret = TokenSecret::parse_named(
        "admin_token_secret",
        &env_secret("SPIN_VARIABLE_ADMIN_TOKEN_SECRET")?,
    )?;
    mint(&secret, None, Scope::Admin, 300)
}

fn mint_dashboard(tenant: &str) -> Result<String> {
    let secret = TokenSecret::parse(&env_secret("SPIN_VARIABLE_TOKEN_SECRET")?)?;
    mint(
        &secret,
        Some(tenant.to_string()),
        Scope::Dashboard,
        LINK_TTL_SECS,
    )
}

fn mint(secret: &TokenSecret, sub: Option<String>, scope: Scope, ttl: i64) -> Result<String> {
    let claims = Claims {
        sub,
        scope,
        exp: Some(now()? + ttl),
        generation: None,
    };
    Ok(domain::token::mint(secret, &claims))
}
