//! `POST /v1/leads`: a landing-page form post becomes a stored lead, then a Systeme.io contact.
//!
//! Order: size (413, at the entry point: `read_limited`) → capture token (401/403) → origin (403) → content type (415) →
//! idempotency claim (a replay, or 409 while another request holds the key) → fields (400/422)
//! → spam: the honeypot, then the tenant's minimum fill time (both a quiet `201` that stores
//! nothing and counts spam), then the tenant's captcha ([`crate::captcha`]: 422
//! `captcha_failed`, 503 `captcha_unavailable`) → rate limit (429) and store in one
//! transaction (durable before any 2xx) → inline sync (its failure leaves the lead pending;
//! never an error for the visitor). Refused bodies count against the rate limit too.

use domain::funnel::TagRules;
use domain::lead::Submission;
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
    let origin = request::origin(req);
    let mut allow_cors = true;
    // This request's token for claiming its Idempotency-Key: made once, outside the retry
    // loop, so a rerun of the unit of work finds the claim its own.
    let claim = new_id();
    // A captcha token is good for one verify call: a rerun of the unit of work (storage was
    // busy) does not verify it again.
    let mut captcha_passed = false;
    let mut resp =
        platform::response::handle(|| capture(req, &mut allow_cors, &mut captcha_passed, &claim));
    if let Some(origin) = origin
        && allow_cors
    {
        request::allow_origin(&mut resp, origin);
    }
    resp
}

fn capture(
    req: &Request,
    allow_cors: &mut bool,
    captcha_passed: &mut bool,
    claim: &anyhow::Result<String>,
) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Capture)?;
    if let Some(origin) = request::sent_origin(req)
        && !ctx.tenant().settings.allows_origin(origin)
    {
        *allow_cors = false;
        return Err(origin_not_allowed());
    }
    let now = now_unix();
    let leads = LeadStore::new(&ctx)?;
    let limit = platform::config::capture_rate_limit()?;
    let client = request::client_addr(
        req,
        &platform::config::trusted_proxies()?,
        platform::config::forwarded_header()?,
    );
    let limited = |wait: u64| ApiError::RateLimited {
        code: "rate_limited",
        detail: format!("too many submissions from this address; retry in {wait} s"),
        retry_after_secs: wait,
    };
    // Every request that reaches the body counts against the limit; a valid lead is counted
    // and stored in the same transaction.
    let count_only = || -> Result<(), ApiError> {
        match leads.rate_limit(&client, limit, now)? {
            Some(wait) => Err(limited(wait)),
            None => Ok(()),
        }
    };
    let kind = request::body_kind(req).inspect_err(|_| {
        let _ = count_only();
    })?;
    let key = request::idempotency_key(req)?;
    let mut claimed = match key {
        Some(key) => {
            let claim = claim
                .as_ref()
                .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("{e:#}")))?;
            let hash = request::request_hash(req);
            if let Some(answer) = leads.claim(&key, &hash, claim, now)? {
                // A replayed answer is a post like any other for the rate limit.
                count_only()?;
                let mut resp = answer_response(req, &ctx, kind, &answer)?;
                resp.set_header("idempotent-replayed", "true");
                return Ok(resp);
            }
            Some(Claimed {
                leads: &leads,
                key,
                claim,
                answered: false,
            })
        }
        None => None,
    };
    let parsed = request::fields(req, kind).and_then(|fields| {
        Submission::parse(&fields)
            .map(|submission| (fields, submission))
            .map_err(|e| ApiError::Unprocessable {
                code: "invalid_field",
                detail: e.to_string(),
            })
    });
    let (fields, submission) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            count_only()?;
            return Err(e);
        }
    };
    // The honeypot, then the tenant's spam rules: a post sent sooner than its minimum fill
    // time is spam like a filled honeypot; a captcha the tenant turned on must pass.
    let lead = match submission {
        Submission::Spam => None,
        Submission::Lead(lead) => {
            let rules = leads.spam_rules()?;
            if rules.filled_too_fast(&fields) {
                None
            } else {
                if !*captcha_passed {
                    if let Err(e) = captcha::check(rules.captcha_token(&fields), &client) {
                        count_only()?;
                        return Err(e);
                    }
                    *captcha_passed = true;
                }
                Some(lead)
            }
        }
    };
    let answer = match lead {
        None => {
            count_only()?;
            leads.count_spam(now)?;
            // Indistinguishable from a new lead, so a bot learns nothing.
            accepted(201, &new_id()?, "created")?
        }
        Some(lead) => {
            let rules = TagRules::defaults().with_overrides(&ctx.tenant().settings.tag_rules);
            let tags = match lead.tags(&ctx.tenant().tag_prefix, &rules) {
                Ok(tags) => tags,
                Err(reserved) => {
                    count_only()?;
                    return Err(ApiError::Unprocessable {
                        code: "reserved_tag",
                        detail: reserved.to_string(),
                    });
                }
            };
            let captured = match leads.capture_within_limit(&client, limit, &lead, &tags, now)? {
                CaptureOutcome::Stored(captured) => captured,
                CaptureOutcome::RateLimited { retry_after_secs } => {
                    return Err(limited(retry_after_secs));
                }
                CaptureOutcome::QuotaFull => return Err(quota_exceeded()),
            };
            if captured.sync_now {
                sync_inline(&leads, &captured.target, now);
            }
            if captured.created {
                accepted(201, captured.id.as_ref(), "created")?
            } else {
                accepted(200, captured.id.as_ref(), "updated")?
            }
        }
    };
    if let Some(claimed) = &mut claimed {
        claimed.remember(&answer)?;
    }
    answer_response(req, &ctx, kind, &answer)
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
