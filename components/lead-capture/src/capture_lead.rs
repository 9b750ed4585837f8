//! `POST /v1/leads`: a landing-page form post becomes a stored lead, then a Systeme.io contact.
//!
//! Order: size (413, at the entry point: `read_limited`) → capture token (401/403) → origin (403) → content type (415) →
//! idempotency claim (a replay, or 409 while another request holds the key) → fields (400/422)
//! → spam: the honeypot, then the tenant's minimum fill time (both a quiet `201` that stores
//! nothing and counts spam), then the tenant's captcha ([`crate::captcha`]: 422
//! `captcha_failed`, 503 `captcha_unavailable`) → rate limit (429) and store in one
//! transaction (durable before any 2xx) → inline sync (its failure leaves the lead pending;
//! never an error for the visitor). Refused bodies count against the rate limit too.

use std::cell::Cell;

use domain::funnel::TagRules;
use domain::lead::{LeadSubmission, Submission};
use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use platform::clock::{new_id, now_unix};
use platform::request::{self, BodyKind};
use platform::tenant::TenantContext;
use serde::Serialize;
use spin_sdk::http::{Request, Response};

use crate::captcha;
use crate::store::{CaptureOutcome, LeadStore, StoredAnswer};
use crate::sync::{SyncTarget, Syncer};

#[derive(Serialize)]
struct Accepted<'a> {
    id: &'a str,
    status: &'static str,
}

pub fn origin_not_allowed() -> ApiError {
    ApiError::Forbidden {
        code: "origin_not_allowed",
        detail: "this origin may not post this tenant's forms".into(),
    }
}

fn quota_exceeded() -> ApiError {
    ApiError::Forbidden {
        code: "quota_exceeded",
        detail: "this form's owner has reached its plan's lead limit; nothing was stored".into(),
    }
}

/// The handler: errors become problem+json; a browser gets CORS headers on every answer it is
/// allowed to read.
pub fn capture_lead(req: &Request) -> Response {
    let run = CaptureRun {
        req,
        claim: new_id(),
        captcha_passed: Cell::new(false),
        origin_refused: Cell::new(false),
    };
    let mut resp = platform::response::handle(|| run.capture());
    if let Some(origin) = request::origin(req)
        && !run.origin_refused.get()
    {
        request::allow_origin(&mut resp, origin);
    }
    resp
}

/// One request's capture, and what it keeps across reruns of its unit of work (storage was
/// busy): its token for claiming the `Idempotency-Key` (made once, so a rerun finds the claim
/// its own), whether its captcha passed (a captcha token is good for one verify call), and
/// whether its origin was refused (that answer gets no CORS headers).
struct CaptureRun<'r> {
    req: &'r Request,
    claim: anyhow::Result<String>,
    captcha_passed: Cell<bool>,
    origin_refused: Cell<bool>,
}

/// The rate limit for one client: every request that reaches the body counts against it; a
/// valid lead is counted and stored in the same statement.
struct RateLimit<'a> {
    leads: &'a LeadStore,
    client: String,
    limit: u32,
    now: i64,
}

impl RateLimit<'_> {
    /// Counts a request that stores no lead; `429` when the client is over its limit.
    fn count(&self) -> Result<(), ApiError> {
        match self.leads.rate_limit(&self.client, self.limit, self.now)? {
            Some(wait) => Err(limited(wait)),
            None => Ok(()),
        }
    }

    /// Counts a refused request, then refuses it with `error` (or `429` if over the limit).
    fn refuse<T>(&self, error: ApiError) -> Result<T, ApiError> {
        self.count()?;
        Err(error)
    }
}

fn limited(wait: u64) -> ApiError {
    ApiError::RateLimited {
        code: "rate_limited",
        detail: format!("too many submissions from this address; retry in {wait} s"),
        retry_after_secs: wait,
    }
}

impl CaptureRun<'_> {
    fn capture(&self) -> Result<Response, ApiError> {
        let req = self.req;
        let ctx = authenticate(req, Scope::Capture)?;
        if let Some(origin) = request::sent_origin(req)
            && !ctx.tenant().settings.allows_origin(origin)
        {
            self.origin_refused.set(true);
            return Err(origin_not_allowed());
        }
        let leads = LeadStore::new(&ctx)?;
        let rate = RateLimit {
            leads: &leads,
            client: request::client_addr(
                req,
                &platform::config::trusted_proxies()?,
                platform::config::forwarded_header()?,
            ),
            limit: platform::config::capture_rate_limit()?,
            now: now_unix(),
        };
        let kind = match request::body_kind(req) {
            Ok(kind) => kind,
            Err(e) => return rate.refuse(e),
        };
        let mut claimed = match self.claim_key(&rate)? {
            KeyClaim::Replay(answer) => {
                // A replayed answer is a post like any other for the rate limit.
                rate.count()?;
                let mut resp = answer_response(req, &ctx, kind, &answer)?;
                resp.set_header("idempotent-replayed", "true");
                return Ok(resp);
            }
            KeyClaim::Claimed(claimed) => claimed,
        };
        let answer = match self.screen(&rate, kind)? {
            None => {
                rate.count()?;
                leads.count_spam(rate.now)?;
                // Indistinguishable from a new lead, so a bot learns nothing.
                accepted(201, &new_id()?, "created")?
            }
            Some(lead) => store(&ctx, &rate, &lead)?,
        };
        if let Some(claimed) = &mut claimed {
            claimed.remember(&answer)?;
        }
        answer_response(req, &ctx, kind, &answer)
    }

    /// Claims the request's `Idempotency-Key`, if it sent one: the stored answer when the key
    /// was answered before (`409` while another request holds it).
    fn claim_key<'a>(&'a self, rate: &RateLimit<'a>) -> Result<KeyClaim<'a>, ApiError> {
        let Some(key) = request::idempotency_key(self.req)? else {
            return Ok(KeyClaim::Claimed(None));
        };
        let claim = self
            .claim
            .as_ref()
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("{e:#}")))?;
        let hash = request::request_hash(self.req);
        if let Some(answer) = rate.leads.claim(&key, &hash, claim, rate.now)? {
            return Ok(KeyClaim::Replay(answer));
        }
        Ok(KeyClaim::Claimed(Some(Claimed {
            leads: rate.leads,
            key,
            claim,
            answered: false,
        })))
    }

    /// The post's lead, or `None` for spam: the honeypot, then the tenant's spam rules (a post
    /// sent sooner than its minimum fill time is spam like a filled honeypot; a captcha the
    /// tenant turned on must pass). A body that is not a lead is refused.
    fn screen(
        &self,
        rate: &RateLimit<'_>,
        kind: BodyKind,
    ) -> Result<Option<Box<LeadSubmission>>, ApiError> {
        let parsed = request::fields(self.req, kind).and_then(|fields| {
            Submission::parse(&fields)
                .map(|submission| (fields, submission))
                .map_err(|e| ApiError::Unprocessable {
                    code: "invalid_field",
                    detail: e.to_string(),
                })
        });
        let (fields, lead) = match parsed {
            Ok((_, Submission::Spam)) => return Ok(None),
            Ok((fields, Submission::Lead(lead))) => (fields, lead),
            Err(e) => return rate.refuse(e),
        };
        let rules = rate.leads.spam_rules()?;
        if rules.filled_too_fast(&fields) {
            return Ok(None);
        }
        if !self.captcha_passed.get() {
            if let Err(e) = captcha::check(rules.captcha_token(&fields), &rate.client) {
                return rate.refuse(e);
            }
            self.captcha_passed.set(true);
        }
        Ok(Some(lead))
    }
}

/// What claiming the `Idempotency-Key` found: an answer to replay, or this request's claim
/// (`None` without a key).
enum KeyClaim<'a> {
    Replay(StoredAnswer),
    Claimed(Option<Claimed<'a>>),
}

/// Stores the lead (counted against the rate limit and the plan's quota in the same
/// statement), then syncs it inline when it is due.
fn store(
    ctx: &TenantContext,
    rate: &RateLimit<'_>,
    lead: &LeadSubmission,
) -> Result<StoredAnswer, ApiError> {
    let rules = TagRules::defaults().with_overrides(&ctx.tenant().settings.tag_rules);
    let tags = match lead.tags(&ctx.tenant().tag_prefix, &rules) {
        Ok(tags) => tags,
        Err(reserved) => {
            return rate.refuse(ApiError::Unprocessable {
                code: "reserved_tag",
                detail: reserved.to_string(),
            });
        }
    };
    let captured =
        match rate
            .leads
            .capture_within_limit(&rate.client, rate.limit, lead, &tags, rate.now)?
        {
            CaptureOutcome::Stored(captured) => captured,
            CaptureOutcome::RateLimited { retry_after_secs } => {
                return Err(limited(retry_after_secs));
            }
            CaptureOutcome::QuotaFull => return Err(quota_exceeded()),
        };
    if captured.kick_alerts {
        platform::alerts::kick();
    }
    if captured.sync_now {
        sync_inline(rate.leads, &captured.target, rate.now);
    }
    if captured.created {
        accepted(201, captured.id.as_ref(), "created")
    } else {
        accepted(200, captured.id.as_ref(), "updated")
    }
}

/// This request's claim on its `Idempotency-Key`: answered, or let go when the request fails
/// (any `?` above drops it), so a retry with the same key runs at once instead of waiting out
/// the claim.
struct Claimed<'a> {
    leads: &'a LeadStore,
    key: String,
    claim: &'a str,
    answered: bool,
}

impl Claimed<'_> {
    fn remember(&mut self, answer: &StoredAnswer) -> Result<(), ApiError> {
        self.leads.remember(&self.key, self.claim, answer)?;
        self.answered = true;
        Ok(())
    }
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        if !self.answered
            && let Err(e) = self.leads.release(&self.key, self.claim)
        {
            eprintln!("releasing an Idempotency-Key claim failed (it expires): {e:#}");
        }
    }
}

/// The lead is stored; a failed or impossible sync only leaves it pending for the batch.
fn sync_inline(leads: &LeadStore, target: &SyncTarget, now: i64) {
    match Syncer::from_variables() {
        Ok(Some(mut syncer)) => {
            if let Err(e) = leads.sync(&mut syncer, target, now) {
                eprintln!("recording an inline sync failed (the lead stays pending): {e:#}");
            }
        }
        Ok(None) => {}
        Err(e) => eprintln!("systeme.io sync is misconfigured; leads stay pending: {e}"),
    }
}

fn accepted(status: u16, id: &str, what: &'static str) -> Result<StoredAnswer, ApiError> {
    let body = serde_json::to_string(&Accepted { id, status: what })
        .map_err(|e| ApiError::Unexpected(e.into()))?;
    Ok(StoredAnswer { status, body })
}

/// JSON for scripts; `303` to the thank-you page for a plain HTML form when one is set.
/// A script's `2xx` answer names the thank-you URL (`thank_you_url`) when one is set, so the
/// form script can send the visitor there; it is added to the answer as sent, not to the one
/// kept for an `Idempotency-Key`, so a replay names the current URL.
fn answer_response(
    req: &Request,
    ctx: &TenantContext,
    kind: BodyKind,
    answer: &StoredAnswer,
) -> Result<Response, ApiError> {
    if kind == BodyKind::Form
        && request::accepts_html(req)
        && let Some(url) = &ctx.tenant().settings.thank_you_url
    {
        return Ok(Response::builder()
            .status(303)
            .header("location", url.as_ref())
            .body(Vec::new())
            .build());
    }
    let mut body = answer.body.clone();
    if (200..300).contains(&answer.status)
        && let Some(url) = &ctx.tenant().settings.thank_you_url
        && let Ok(serde_json::Value::Object(mut fields)) =
            serde_json::from_str::<serde_json::Value>(&body)
    {
        fields.insert("thank_you_url".into(), url.as_ref().into());
        body = serde_json::Value::Object(fields).to_string();
    }
    Ok(Response::builder()
        .status(answer.status)
        .header("content-type", "application/json")
        .body(body.into_bytes())
        .build())
}
