//! Sending queued alerts: read what is due, build each body once, sign it (Standard Webhooks),
//! send it, and record the answer; retry with backoff; switch off a rule whose deliveries fail
//! for three days; queue each digest once per tenant-local day.
//!
//! A run reads what is due across tenants (the outbox is one table), then takes one tenant's
//! deliveries at a time: it claims them by moving their `next_attempt_at` past a lease
//! (compare-and-set) in the write that also stores the bodies of first attempts, adds them to
//! the tenant's attempts of the day, sends them, and records the answers. Two runs never send
//! a delivery at once; a run that dies leaves it due again when the lease ends (at least once,
//! the same `webhook-id`). Everything read or written for one delivery goes through its
//! tenant's [`TenantDb`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::{Context, Result};
use domain::alerts::{
    AlertEvent, GIVE_UP_AFTER_SECS, check_destination, last_full_day, limits, local_date,
    retry_after,
};
use domain::secret::WebhookSecret;
use domain::signature::sign_standard;
use domain::tenant::{Plan, TenantId};
use platform::clock::now_unix;
use platform::db::{Db, FromRow, Row};
use platform::outbound::{Post, Timeouts, TransportError, post_all};
use platform::scope::TenantDb;
use platform::tenant::load_tenant;
use platform::tenant_sql;
use serde::Serialize;
use serde_json::{Value as Json, json};
use spin_sdk::sqlite::Value;

use crate::store::{AlertStore, Count, Rule, SecretKey, rfc3339, unix};

/// How long a claimed delivery is held before another run may take it: longer than one
/// tenant's group can take (its sends go out at once, each given at most twice
/// [`ATTEMPT_TIMEOUT`] to connect and to answer).
const LEASE_SECS: i64 = 120;
/// Deliveries of one tenant per batch, so one tenant's backlog cannot hold up the others'.
const PER_TENANT: i64 = 50;
/// Deliveries read per batch.
const CLAIM_BATCH: i64 = 100;
/// How long one attempt may take: connect, first byte, and between bytes.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a run waits after a small batch for more alerts to gather.
const GATHER: Duration = Duration::from_millis(200);
/// How long a run holds `alert_runner` without renewing it.
const RUNNER_HOLD_SECS: i64 = 30;
/// How many [`GATHER`] pauses a run waits, holding the runner, once nothing is due before it
/// lets go. Writes that see the runner held call no run, so a tenant whose captures match no rule
/// (but has one of the kind) starts about one run a second, not one per capture.
const LINGER_POLLS: u32 = 5;

/// The `alerts_dev_origin` variable: the one origin exempt from the destination guard.
pub fn dev_origin() -> Option<String> {
    platform::config::variable("alerts_dev_origin")
        .ok()
        .filter(|o| !o.trim().is_empty())
}

/// A delivery that is due (a run's read), or one claimed to send now (a test, a redelivery).
struct Due {
    tenant_id: String,
    id: String,
    rule_id: String,
    event: String,
    lead_id: Option<String>,
    detail: Option<String>,
    body: Option<String>,
    attempts: i64,
    created_at: String,
}

impl FromRow for Due {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            tenant_id: row.text("tenant_id")?.to_string(),
            id: row.text("id")?.to_string(),
            rule_id: row.text("rule_id")?.to_string(),
            event: row.text("event")?.to_string(),
            lead_id: row.opt_text("lead_id"),
            detail: row.opt_text("detail"),
            body: row.opt_text("body"),
            attempts: row.int("attempts")?,
            created_at: row.text("created_at")?.to_string(),
        })
    }
}

/// What a run did.
#[derive(Debug, Default, Serialize)]
pub struct RunReport {
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dropped: u64,
    pub digests_queued: u64,
    /// Deliveries due and not yet claimed when the run ended.
    pub remaining_due: i64,
}

impl RunReport {
    fn count(&mut self, outcomes: &[Attempted]) {
        for outcome in outcomes {
            match outcome {
                Attempted::Delivered(_) => self.delivered += 1,
                Attempted::Failed { .. } => self.failed_attempts += 1,
                Attempted::Dropped(_) => self.dropped += 1,
            }
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone)]
enum Attempted {
    Delivered(u16),
    Failed { code: Option<u16>, error: String },
    Dropped(&'static str),
}

/// `pending_tenants`, the tenants with pending deliveries, found by stepping through
/// `alert_deliveries_due` (one index search a tenant), and `due_now`, their deliveries due by
/// `?1`, read from the same index: how every statement that looks for due deliveries across
/// tenants begins, so none of them walks a backlog, not even one of retries due days from now.
macro_rules! with_pending_tenants {
    () => {
        "WITH RECURSIVE pending_tenants (tenant_id) AS (
            SELECT min(tenant_id) FROM alert_deliveries WHERE status = 'pending'
            UNION ALL
            SELECT (SELECT min(tenant_id) FROM alert_deliveries
                    WHERE status = 'pending' AND tenant_id > p.tenant_id)
            FROM pending_tenants p WHERE p.tenant_id IS NOT NULL),
         due_now AS (
            SELECT x.tenant_id, x.id FROM pending_tenants t JOIN alert_deliveries x
                ON x.tenant_id = t.tenant_id AND x.status = 'pending' AND x.next_attempt_at <= ?1) "
    };
}

/// Up to `limit` deliveries due by `due_by` (at most [`CLAIM_BATCH`], at most [`PER_TENANT`] of
/// one tenant, oldest first), except those in `tried` (a JSON array of ids): a run tries each
/// delivery once. Each tenant's share is read from `alert_deliveries_due` in its order, so a
/// read costs the same however long a tenant's backlog. A read: each tenant's group is claimed
/// as it is sent ([`deliver_group`]).
fn due(db: &Db, due_by: i64, tried: &str, limit: i64) -> Result<Vec<Due>> {
    db.query(
        concat!(
            with_pending_tenants!(),
            "SELECT d.tenant_id, d.id, d.rule_id, d.event, d.lead_id, d.detail, d.body, d.attempts,
             d.created_at
         FROM pending_tenants t JOIN alert_deliveries d ON d.tenant_id = t.tenant_id
         WHERE d.id IN (
             SELECT x.id FROM alert_deliveries x
             WHERE x.tenant_id = t.tenant_id AND x.status = 'pending' AND x.next_attempt_at <= ?1
                 AND x.id NOT IN (SELECT value FROM json_each(?2))
             ORDER BY x.next_attempt_at, x.created_at LIMIT CAST(?4 AS INTEGER))
         ORDER BY d.next_attempt_at, d.created_at LIMIT CAST(?3 AS INTEGER)"
        ),
        &[
            Value::Integer(due_by),
            Value::Text(tried.to_string()),
            Value::Integer(limit.min(CLAIM_BATCH)),
            Value::Integer(PER_TENANT),
        ],
    )
}

/// What a run sends.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    pub limit: i64,
    pub budget_secs: i64,
    /// Every pending delivery, whatever its next attempt time (the operator's "retry now"; a
    /// delivery another run is sending may then go out twice, with the same `webhook-id`).
    pub ignore_backoff: bool,
}

/// When a run stops taking groups and, for a chained run, the hold on `alert_runner` it keeps.
struct Pace {
    deadline: i64,
    /// The `alert_runner.until` this run holds; `None` when it holds none (the operator's batch).
    /// Every later change to the row requires it, so a run whose hold ran out (and which
    /// another run took over) changes nothing there: it stops instead.
    hold: Option<i64>,
}

impl Pace {
    /// Whether the run may claim another group: only before its deadline, and while it holds
    /// the runner, renewing its hold once a third of it has passed so that a long batch does
    /// not outlive it.
    fn go_on(&mut self, db: &Db) -> Result<bool> {
        let now = now_unix();
        if now >= self.deadline {
            return Ok(false);
        }
        if let Some(hold) = self.hold
            && hold - now <= RUNNER_HOLD_SECS * 2 / 3
        {
            let renewed = db.execute(
                "UPDATE alert_runner SET until = ?1 WHERE id = 1 AND until = ?2 RETURNING until",
                &[Value::Integer(now + RUNNER_HOLD_SECS), Value::Integer(hold)],
            )?;
            if renewed.rows.is_empty() {
                return Ok(false);
            }
            self.hold = Some(now + RUNNER_HOLD_SECS);
        }
        Ok(true)
    }

    /// Lets go of the runner if this run still holds it, so the next write starts a run.
    fn let_go(&self, db: &Db) -> Result<()> {
        if let Some(hold) = self.hold {
            db.execute(
                "UPDATE alert_runner SET until = 0 WHERE id = 1 AND until = ?1",
                &[Value::Integer(hold)],
            )?;
        }
        Ok(())
    }
}

/// Sends what is due, batch after batch, up to the batch's limit and time.
pub fn send_due(db: &Db, batch: Batch, report: &mut RunReport) -> Result<()> {
    let mut pace = Pace {
        deadline: now_unix() + batch.budget_secs,
        hold: None,
    };
    let mut left = batch.limit;
    let mut tried = Vec::new();
    while left > 0 && pace.go_on(db)? {
        let found = send_batch(
            db,
            batch.ignore_backoff,
            left,
            &mut tried,
            &mut pace,
            report,
        )?;
        if found == 0 {
            break;
        }
        left -= i64::try_from(found).unwrap_or(left);
    }
    Ok(())
}

/// Reads one batch of what is due and sends it, tenant by tenant, while `pace` allows; how many
/// deliveries it found (each is then in `tried`; those of groups it did not reach stay due).
fn send_batch(
    db: &Db,
    ignore_backoff: bool,
    limit: i64,
    tried: &mut Vec<String>,
    pace: &mut Pace,
    report: &mut RunReport,
) -> Result<usize> {
    let due_by = if ignore_backoff { i64::MAX } else { now_unix() };
    let found = due(db, due_by, &serde_json::to_string(tried)?, limit)?;
    let n = found.len();
    let mut by_tenant: BTreeMap<String, Vec<Due>> = BTreeMap::new();
    for delivery in found {
        tried.push(delivery.id.clone());
        by_tenant
            .entry(delivery.tenant_id.clone())
            .or_default()
            .push(delivery);
    }
    for (tenant_id, group) in by_tenant {
        if !pace.go_on(db)? {
            break;
        }
        let tenant = TenantId::parse(&tenant_id).context("a delivery's tenant")?;
        let store = AlertStore::new(TenantDb::on(db, tenant.clone()));
        let ids: Vec<String> = group.iter().map(|d| d.id.clone()).collect();
        let sent = match load_tenant(db, &tenant) {
            Ok(Some(t)) => deliver_group(&store, t.plan, group, due_by),
            Ok(None) => {
                let steps = group
                    .iter()
                    .map(|_| Step::Done(Attempted::Dropped("tenant_gone")))
                    .collect();
                settle_group(
                    &store,
                    group,
                    steps,
                    (due_by, i64::MAX),
                    &HashMap::new(),
                    &HashMap::new(),
                )
            }
            Err(e) => Err(e),
        };
        // One tenant's failure (a busy database, a row that does not read) leaves its
        // deliveries to a later run: they are claimed, if they were not yet, so that they are
        // not read again before their lease ends. The others' still go out.
        match sent {
            Ok(outcomes) => report.count(&outcomes),
            Err(e) => {
                eprintln!("alerts: tenant {tenant_id}'s deliveries wait for the next run: {e:#}");
                if let Err(e) = claim(&store, &ids, due_by, &HashMap::new()) {
                    eprintln!("alerts: tenant {tenant_id}'s deliveries stay due: {e:#}");
                }
            }
        }
    }
    Ok(n)
}

pub fn remaining_due(db: &Db) -> Result<i64> {
    Ok(db
        .query::<Count>(
            concat!(with_pending_tenants!(), "SELECT count(*) AS n FROM due_now"),
            &[Value::Integer(now_unix())],
        )?
        .first()
        .map_or(0, |c| c.0))
}

/// The run a chained call starts: takes `alert_runner` (or leaves at once when another run holds
/// it), sends what is due, and lets go only when nothing is due, in one statement, so that a
/// write which saw the runner held is always picked up by it.
pub fn run_while_due(db: &Db, budget_secs: i64) -> Result<RunReport> {
    let mut report = RunReport::default();
    let started = now_unix();
    let hold = started + RUNNER_HOLD_SECS;
    let held = db.execute(
        "UPDATE alert_runner SET until = ?1 WHERE id = 1 AND until <= ?2 RETURNING until",
        &[Value::Integer(hold), Value::Integer(started)],
    )?;
    if held.rows.is_empty() {
        return Ok(report);
    }
    let mut pace = Pace {
        deadline: started + budget_secs,
        hold: Some(hold),
    };
    let ran = send_while_due(db, &mut pace, &mut report);
    if ran.is_err() {
        // Let go at once, so the next write starts a run instead of waiting out the hold.
        let _ = pace.let_go(db);
    }
    ran.map(|()| report)
}

/// [`run_while_due`]'s loop, while it holds the runner. After a small batch it waits
/// [`GATHER`] before reading again, so that alerts arriving one by one go out in batches: each
/// batch costs three writes a tenant, whatever its size, and every write waits for the one lock the
/// captures share. Once nothing is due it lingers [`LINGER_POLLS`] pauses, reading only, then
/// lets go in the statement that finds nothing due. It renews its hold every third of it.
fn send_while_due(db: &Db, pace: &mut Pace, report: &mut RunReport) -> Result<()> {
    let mut idle_polls = 0;
    loop {
        if !pace.go_on(db)? {
            // Out of time (or no longer the runner): let go, so the next write (or the batch)
            // starts a run.
            return pace.let_go(db);
        }
        let found = send_batch(db, false, CLAIM_BATCH, &mut Vec::new(), pace, report)?;
        if found > 0 {
            idle_polls = 0;
            if i64::try_from(found).unwrap_or(0) < CLAIM_BATCH / 2 {
                platform::outbound::pause(GATHER);
            }
            continue;
        }
        if idle_polls < LINGER_POLLS {
            // Nothing due: wait a little, still holding the runner, with reads only.
            idle_polls += 1;
            platform::outbound::pause(GATHER);
            continue;
        }
        // Lets go only if nothing is due, in one statement; holds on otherwise. No row: another
        // run holds the runner now.
        let now = now_unix();
        let still = db.execute(
            concat!(
                "UPDATE alert_runner SET until = CASE WHEN EXISTS (",
                with_pending_tenants!(),
                "SELECT 1 FROM due_now)
                THEN ?2 ELSE 0 END
             WHERE id = 1 AND until = ?3 RETURNING until"
            ),
            &[
                Value::Integer(now),
                Value::Integer(now + RUNNER_HOLD_SECS),
                Value::Integer(pace.hold.unwrap_or_default()),
            ],
        )?;
        match still.rows.first().and_then(|r| r.get::<i64>(0)) {
            None | Some(0) => return Ok(()),
            Some(until) => pace.hold = Some(until),
        }
        idle_polls = 0;
    }
}

/// The end of a lease taken now: a delivery queued to be sent in the request that queued it
/// (a test, a redelivery) is held until then, so no run takes it meanwhile.
pub fn lease_from_now() -> i64 {
    now_unix() + LEASE_SECS
}

/// Sends one of the tenant's deliveries now and records the attempt: a test or a redelivery,
/// queued held until a [`lease_from_now`] so that no run takes it from the request.
pub fn deliver_now(store: &AlertStore, plan: Plan, id: &str) -> Result<()> {
    let found = store.db().query_one::<Due>(
        tenant_sql!(
            "SELECT tenant_id, id, rule_id, event, lead_id, detail, body, attempts, created_at
             FROM alert_deliveries WHERE tenant_id = ?1 AND id = ?2 AND status = 'pending'"
        ),
        &[Value::Text(id.to_string())],
    )?;
    if let Some(delivery) = found {
        deliver_group(store, plan, vec![delivery], lease_from_now())?;
    }
    Ok(())
}

/// What to do with one delivery.
enum Step {
    Send { url: url::Url, body: String },
    Done(Attempted),
}

/// Prepares one tenant's deliveries and settles them ([`settle_group`]). The tenant's rules,
/// leads and attempts of the day are read once per group. A delivery that cannot be prepared
/// (a row that does not read) fails its attempt, with the reason, and is retried like any
/// other, so it cannot hold up the rest of its group.
fn deliver_group(
    store: &AlertStore,
    plan: Plan,
    group: Vec<Due>,
    due_by: i64,
) -> Result<Vec<Attempted>> {
    let daily = i64::try_from(limits(plan).deliveries_per_day).unwrap_or(i64::MAX);
    // Past the limit already: first attempts are dropped without building their bodies.
    let over_limit = store.attempted_today()? >= daily;
    let mut rules: HashMap<String, Option<Rule>> = HashMap::new();
    for d in &group {
        if !rules.contains_key(&d.rule_id) {
            rules.insert(d.rule_id.clone(), store.rule(&d.rule_id)?);
        }
    }
    let leads = leads_of(store, &group)?;
    let mut new_bodies = HashMap::new();
    let steps = group
        .iter()
        .map(|d| {
            let rule = rules.get(&d.rule_id).and_then(Option::as_ref);
            prepare(rule, d, &leads, over_limit, &mut new_bodies).unwrap_or_else(|e| {
                Step::Done(Attempted::Failed {
                    code: None,
                    error: format!("could not be prepared: {e:#}"),
                })
            })
        })
        .collect();
    settle_group(store, group, steps, (due_by, daily), &new_bodies, &rules)
}

/// Claims, sends and records one tenant's deliveries, each with its step; the outcome of each
/// one this run claimed. The claim (a compare-and-set on `next_attempt_at` that only a delivery
/// still pending and due by `due_by` passes, moving it past a lease) stores the bodies built
/// for first attempts in the same write, before anything goes out, and answers the body each
/// delivery has then, which is the one sent: every attempt sends the same bytes. The attempts
/// are then added to the day's count in one statement that answers the new count, so this
/// group's attempts hold the places just below it, whatever other runs do; a first attempt
/// whose place is past `daily` is dropped (`daily_limit`) and its place given back. The
/// outcomes are recorded in one write after. A group costs three writes, however many it
/// holds (four when some are dropped at the limit). A delivery another run claimed first is
/// left to it.
fn settle_group(
    store: &AlertStore,
    group: Vec<Due>,
    steps: Vec<Step>,
    (due_by, daily): (i64, i64),
    new_bodies: &HashMap<String, String>,
    rules: &HashMap<String, Option<Rule>>,
) -> Result<Vec<Attempted>> {
    let ids: Vec<String> = group.iter().map(|d| d.id.clone()).collect();
    let mut claimed = claim(store, &ids, due_by, new_bodies)?;
    let (group, mut steps): (Vec<Due>, Vec<Step>) = group
        .into_iter()
        .zip(steps)
        .filter_map(|(mut d, step)| {
            let now = claimed.remove(&d.id)?;
            // As the claim found it: another run may have attempted it since the read.
            d.attempts = now.attempts;
            let step = match (step, now.body) {
                (Step::Send { url, .. }, Some(body)) => Step::Send { url, body },
                (step, _) => step,
            };
            Some((d, step))
        })
        .unzip();
    if group.is_empty() {
        return Ok(Vec::new());
    }
    let secret = if steps.iter().any(|s| matches!(s, Step::Send { .. })) {
        signing_secret(store)?
    } else {
        None
    };
    let attempting = |step: &Step| match step {
        Step::Send { .. } => secret.is_some(),
        Step::Done(outcome) => matches!(outcome, Attempted::Failed { .. }),
    };
    let attempts = i64::try_from(steps.iter().filter(|s| attempting(s)).count())?;
    if attempts > 0 {
        let day = crate::store::utc_today();
        let mut used = store.count_attempts(&day, attempts)? - attempts;
        let mut given_back = 0;
        for (d, step) in group.iter().zip(steps.iter_mut()) {
            if !attempting(step) {
                continue;
            }
            // Past the day's limit a new delivery is dropped; a retry still goes out.
            if d.attempts == 0 && used >= daily {
                *step = Step::Done(Attempted::Dropped("daily_limit"));
                given_back += 1;
            } else {
                used += 1;
            }
        }
        // A give-back that fails leaves the count high: fewer sends today, never more.
        if given_back > 0
            && let Err(e) = store.give_back_attempts(&day, given_back)
        {
            eprintln!("alerts: {given_back} attempts stay counted for today: {e:#}");
        }
    }
    let outcomes = send_all(secret.as_ref(), &group, steps);
    record_all(store, &group, &outcomes)?;
    rule_health(store, &group, &outcomes, rules)?;
    Ok(outcomes)
}

/// The claim: moves each delivery of `ids` that is still pending and due by `due_by` past a
/// lease, and gives each its body from `new_bodies` unless it has one; each delivery it
/// claimed, by id, with its body and attempts as they are now. Values go in as one JSON object
/// keyed by delivery id (ids are `msg_` and hex, safe in a JSON path), looked up by each row, so
/// the statement finds its rows by primary key and reads the JSON once (the `+` keeps SQLite
/// from walking the tenant's whole backlog in `alert_deliveries_due` instead).
fn claim(
    store: &AlertStore,
    ids: &[String],
    due_by: i64,
    new_bodies: &HashMap<String, String>,
) -> Result<HashMap<String, Claimed>> {
    let items: serde_json::Map<String, Json> = ids
        .iter()
        .map(|id| (id.clone(), json!(new_bodies.get(id))))
        .collect();
    let claimed = store.db().query::<Claimed>(
        tenant_sql!(
            "UPDATE alert_deliveries SET next_attempt_at = ?2,
                body = COALESCE(body, ?4 ->> ('$.\"' || id || '\"'))
             WHERE tenant_id = ?1 AND id IN (SELECT key FROM json_each(?4))
                AND status = 'pending' AND +next_attempt_at <= ?3
             RETURNING id, body, attempts"
        ),
        &[
            Value::Integer(now_unix() + LEASE_SECS),
            Value::Integer(due_by),
            Value::Text(serde_json::to_string(&items)?),
        ],
    )?;
    Ok(claimed.into_iter().map(|c| (c.id.clone(), c)).collect())
}

/// A claimed delivery's id, stored body and attempts.
struct Claimed {
    id: String,
    body: Option<String>,
    attempts: i64,
}

impl FromRow for Claimed {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            id: row.text("id")?.to_string(),
            body: row.opt_text("body"),
            attempts: row.int("attempts")?,
        })
    }
}

/// Checks one delivery against its rule, the daily limit and the destination guard, and gives
/// it its body (built now, and added to `new_bodies`, on its first attempt).
fn prepare(
    rule: Option<&Rule>,
    d: &Due,
    leads: &HashMap<String, Json>,
    over_limit: bool,
    new_bodies: &mut HashMap<String, String>,
) -> Result<Step> {
    let Some(rule) = rule else {
        return Ok(Step::Done(Attempted::Dropped("rule_deleted")));
    };
    let test = d.event == AlertEvent::Test.as_str();
    if !test && (!rule.enabled || rule.status != "active") {
        return Ok(Step::Done(Attempted::Dropped("rule_off")));
    }
    if d.attempts == 0 && over_limit {
        return Ok(Step::Done(Attempted::Dropped("daily_limit")));
    }
    let url = match check_destination(&rule.destination.url, dev_origin().as_deref()) {
        Ok(url) => url::Url::parse(&url).context("a checked destination")?,
        Err(e) => {
            return Ok(Step::Done(Attempted::Failed {
                code: None,
                error: format!("destination refused: {e}"),
            }));
        }
    };
    let body = match &d.body {
        Some(body) => body.clone(),
        None => {
            let body = build_body(rule, d, leads)?;
            new_bodies.insert(d.id.clone(), body.clone());
            body
        }
    };
    Ok(Step::Send { url, body })
}

/// Signs and sends every delivery a step says to send, all at once (a batch takes as long as
/// its slowest destination, at most [`ATTEMPT_TIMEOUT`], however many it holds), and answers
/// each delivery's outcome.
fn send_all(secret: Option<&WebhookSecret>, group: &[Due], steps: Vec<Step>) -> Vec<Attempted> {
    let now = now_unix();
    let stamp = now.to_string();
    let signatures: Vec<Option<String>> = steps
        .iter()
        .zip(group)
        .map(|(step, d)| match (step, secret) {
            (Step::Send { body, .. }, Some(secret)) => {
                Some(sign_standard(secret, &d.id, now, body.as_bytes()))
            }
            _ => None,
        })
        .collect();
    let mut posts = Vec::new();
    let mut sent = Vec::new();
    for (i, ((step, d), signature)) in steps.iter().zip(group).zip(&signatures).enumerate() {
        if let (Step::Send { url, body }, Some(signature)) = (step, signature) {
            posts.push(Post {
                url,
                headers: vec![
                    ("content-type", "application/json"),
                    ("user-agent", "ClientFlow-Edge-Alerts/1"),
                    ("webhook-id", d.id.as_str()),
                    ("webhook-timestamp", stamp.as_str()),
                    ("webhook-signature", signature.as_str()),
                ],
                body: body.as_bytes(),
            });
            sent.push(i);
        }
    }
    let timeouts = Timeouts {
        connect: ATTEMPT_TIMEOUT,
        first_byte: ATTEMPT_TIMEOUT,
        between_bytes: ATTEMPT_TIMEOUT,
    };
    let mut answers: HashMap<usize, Result<u16, TransportError>> =
        sent.into_iter().zip(post_all(&posts, timeouts)).collect();
    steps
        .into_iter()
        .enumerate()
        .map(|(i, step)| match step {
            Step::Done(outcome) => outcome,
            Step::Send { .. } => match answers.remove(&i) {
                Some(Ok(code)) if (200..300).contains(&code) => Attempted::Delivered(code),
                Some(Ok(code)) => Attempted::Failed {
                    code: Some(code),
                    error: format!("answered {code}"),
                },
                Some(Err(e)) => Attempted::Failed {
                    code: None,
                    error: e.to_string(),
                },
                None => Attempted::Dropped("no_secret"),
            },
        })
        .collect()
}

/// The tenant's signing secret; `None` when it has none (the first rule makes one, so only a
/// restored database lacks it): its deliveries are dropped, never signed with a secret the
/// tenant was never shown.
fn signing_secret(store: &AlertStore) -> Result<Option<WebhookSecret>> {
    store
        .secret()?
        .map(|SecretKey(key)| {
            WebhookSecret::parse(&format!("whsec_{key}")).map_err(|e| anyhow::anyhow!("{e}"))
        })
        .transpose()
}

/// A lead as a delivery shows it.
struct LeadJson {
    id: String,
    lead: Json,
}

impl FromRow for LeadJson {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            id: row.text("id")?.to_string(),
            lead: row.json("lead")?,
        })
    }
}

/// The leads that the group's first attempts show, by id, in one read (an erased lead is
/// missing).
fn leads_of(store: &AlertStore, group: &[Due]) -> Result<HashMap<String, Json>> {
    let ids: Vec<&str> = group
        .iter()
        .filter(|d| d.body.is_none())
        .filter_map(|d| d.lead_id.as_deref())
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let leads = store.db().query::<LeadJson>(
        tenant_sql!(
            "SELECT id, json_object('id', id, 'email', email, 'name', name, 'phone', phone,
                'ib_type', ib_type, 'monthly_leads', monthly_leads, 'volume', volume,
                'broker_network', broker_network, 'form', form, 'utm_source', utm_source,
                'utm_medium', utm_medium, 'utm_campaign', utm_campaign, 'tags', json(tags),
                'stage', stage, 'emails_opened', emails_opened, 'sales', sales,
                'revenue_cents', revenue_cents, 'created_at', created_at) AS lead
             FROM leads WHERE tenant_id = ?1 AND id IN (SELECT value FROM json_each(?2))"
        ),
        &[Value::Text(serde_json::to_string(&ids)?)],
    )?;
    Ok(leads.into_iter().map(|l| (l.id, l.lead)).collect())
}

/// The body of a delivery, from the rule, the event and the lead as it is now.
fn build_body(rule: &Rule, d: &Due, leads: &HashMap<String, Json>) -> Result<String> {
    let event = AlertEvent::parse(&d.event).context("a delivery's event")?;
    let mut data = serde_json::Map::new();
    data.insert("rule".into(), json!({"id": rule.id, "name": rule.name}));
    if let Some(lead_id) = &d.lead_id {
        // An erased lead is reported without its data.
        let lead = leads
            .get(lead_id)
            .cloned()
            .unwrap_or_else(|| json!({"id": lead_id, "erased": true}));
        data.insert("lead".into(), lead);
    }
    let detail: Option<Json> = d
        .detail
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    match event {
        AlertEvent::Sale => {
            data.insert("sale".into(), detail.unwrap_or(Json::Null));
        }
        AlertEvent::Digest => {
            data.insert("digest".into(), detail.unwrap_or(Json::Null));
        }
        _ => {}
    }
    let data = Json::Object(data);
    let body = domain::alerts::body(
        rule.destination.format,
        event,
        &rule.name,
        &d.created_at,
        &data,
    );
    Ok(serde_json::to_string(&body)?)
}

/// Records the outcomes of one tenant's batch in one write: a delivered or failed attempt
/// counts, with its time, code and error; a failure is due again after its backoff; a dropped
/// delivery keeps its last attempt and its body. A delivery that stopped being pending
/// meanwhile (its lead erased, its rule deleted) keeps what that recorded.
fn record_all(store: &AlertStore, group: &[Due], outcomes: &[Attempted]) -> Result<()> {
    let now = now_unix();
    let rows: serde_json::Map<String, Json> = group
        .iter()
        .zip(outcomes)
        .map(|(d, outcome)| {
            let row = match outcome {
                Attempted::Delivered(code) => {
                    json!({"s": "delivered", "a": 1, "at": now, "c": code, "e": null, "n": 0})
                }
                Attempted::Failed { code, error } => json!({"s": if gives_up(d, now) {
                        "failed"
                    } else {
                        "pending"
                    }, "a": 1, "at": now, "c": code, "e": error.chars().take(300).collect::<String>(),
                    "n": now + retry_after(d.attempts + 1)}),
                Attempted::Dropped(why) => {
                    json!({"s": "dropped", "a": 0, "at": null, "c": null, "e": why, "n": 0})
                }
            };
            (d.id.clone(), row)
        })
        .collect();
    store.db().execute(
        tenant_sql!(
            "UPDATE alert_deliveries SET (status, attempts, last_attempt_at, last_status_code,
                    last_error, next_attempt_at) = (
                SELECT o ->> 's', attempts + (o ->> 'a'), COALESCE(o ->> 'at', last_attempt_at),
                    CASE o ->> 'a' WHEN 1 THEN o ->> 'c' ELSE last_status_code END,
                    o ->> 'e', o ->> 'n'
                FROM (SELECT ?2 -> ('$.\"' || id || '\"') AS o))
             WHERE tenant_id = ?1 AND id IN (SELECT key FROM json_each(?2))
                AND status = 'pending'"
        ),
        &[Value::Text(serde_json::to_string(&rows)?)],
    )?;
    Ok(())
}

/// Whether a failed attempt is a delivery's last: a test gets one attempt; any other delivery
/// is retried for [`GIVE_UP_AFTER_SECS`] after it was queued.
fn gives_up(d: &Due, now: i64) -> bool {
    let queued = unix(&d.created_at).unwrap_or(now);
    d.event == AlertEvent::Test.as_str() || now - queued >= GIVE_UP_AFTER_SECS
}

/// What a batch means for its rules: a success clears a rule's failing streak; a failure
/// (not of a test) starts one, and one three days old switches the rule off.
fn rule_health(
    store: &AlertStore,
    group: &[Due],
    outcomes: &[Attempted],
    rules: &HashMap<String, Option<Rule>>,
) -> Result<()> {
    let now = now_unix();
    let mut cleared = HashSet::new();
    let mut failed = HashSet::new();
    for (d, outcome) in group.iter().zip(outcomes) {
        let failing = rules
            .get(&d.rule_id)
            .and_then(Option::as_ref)
            .is_some_and(|r| r.failing_since.is_some());
        match outcome {
            Attempted::Delivered(_) if failing && cleared.insert(d.rule_id.as_str()) => {
                store.db().execute(
                    tenant_sql!(
                        "UPDATE alert_rules SET failing_since = NULL
                         WHERE tenant_id = ?1 AND id = ?2"
                    ),
                    &[Value::Text(d.rule_id.clone())],
                )?;
            }
            Attempted::Failed { .. }
                if d.event != AlertEvent::Test.as_str() && failed.insert(d.rule_id.as_str()) =>
            {
                give_up_after_three_days(store, &d.rule_id, now)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Starts the rule's failing streak if none runs; switches the rule off when it is three days
/// old.
fn give_up_after_three_days(store: &AlertStore, rule_id: &str, now: i64) -> Result<()> {
    let rule = Value::Text(rule_id.to_string());
    let disabled = store.db().execute(
        tenant_sql!(
            "UPDATE alert_rules SET failing_since = COALESCE(failing_since, ?3),
                disabled_at = CASE WHEN ?3 - COALESCE(failing_since, ?3) >= ?4
                    THEN COALESCE(disabled_at, ?5) ELSE disabled_at END
             WHERE tenant_id = ?1 AND id = ?2
             RETURNING disabled_at"
        ),
        &[
            rule.clone(),
            Value::Integer(now),
            Value::Integer(GIVE_UP_AFTER_SECS),
            Value::Text(platform::clock::now_rfc3339()?),
        ],
    )?;
    let switched_off = disabled
        .rows
        .first()
        .is_some_and(|r| r.get::<&str>(0).is_some());
    if switched_off {
        store.db().execute(
            tenant_sql!(
                "UPDATE alert_deliveries SET status = 'failed', last_error = 'rule switched off after 3 days of failures'
                 WHERE tenant_id = ?1 AND rule_id = ?2 AND status = 'pending' AND event != 'test'"
            ),
            &[rule],
        )?;
    }
    Ok(())
}

/// Forgets the attempt counts of days before yesterday (UTC): the daily limit reads today's.
pub fn forget_old_attempts(db: &Db) -> Result<()> {
    db.execute(
        "DELETE FROM alert_attempts WHERE day < date('now', '-1 day')",
        &[],
    )?;
    Ok(())
}

/// An active digest rule.
struct DigestRule {
    tenant_id: String,
    id: String,
    timezone: String,
    created_at: String,
}

impl FromRow for DigestRule {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            tenant_id: row.text("tenant_id")?.to_string(),
            id: row.text("id")?.to_string(),
            timezone: row.opt_text("timezone").unwrap_or_else(|| "UTC".into()),
            created_at: row.text("created_at")?.to_string(),
        })
    }
}

/// Queues, for every active digest rule, the digest of the tenant-local day that ended last,
/// once: the unique `(tenant_id, rule_id, day)` makes a second queueing a no-op. A rule reports
/// only days that began after it was made.
pub fn queue_digests(db: &Db, report: &mut RunReport) -> Result<()> {
    let rules = db.query::<DigestRule>(
        "SELECT tenant_id, id, timezone, created_at FROM alert_rules
         WHERE event = 'digest' AND enabled AND disabled_at IS NULL",
        &[],
    )?;
    let now = now_unix();
    for rule in rules {
        let Some((day, start, end)) = last_full_day(&rule.timezone, now) else {
            continue;
        };
        let created = unix(&rule.created_at).unwrap_or(now);
        if local_date(&rule.timezone, created).is_none_or(|first| day < first) {
            continue;
        }
        let tenant = TenantDb::on(
            db,
            TenantId::parse(&rule.tenant_id).context("a rule's tenant")?,
        );
        if queue_digest(&tenant, &rule.id, &day, start, end)? {
            report.digests_queued += 1;
        }
    }
    Ok(())
}

/// A day's figures for a digest.
struct DayFigures {
    leads: i64,
    conversions: i64,
    revenue: Json,
}

impl FromRow for DayFigures {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(Self {
            leads: row.int("leads")?,
            conversions: row.int("conversions")?,
            revenue: row.json("revenue")?,
        })
    }
}

/// Queues one digest unless the rule has it for `day`; whether it was queued.
fn queue_digest(tenant: &TenantDb, rule_id: &str, day: &str, start: i64, end: i64) -> Result<bool> {
    let exists = tenant.execute(
        tenant_sql!(
            "SELECT 1 FROM alert_deliveries WHERE tenant_id = ?1 AND rule_id = ?2 AND day = ?3"
        ),
        &[
            Value::Text(rule_id.to_string()),
            Value::Text(day.to_string()),
        ],
    )?;
    if !exists.rows.is_empty() {
        return Ok(false);
    }
    let stamp = |t: i64| rfc3339(t).context("a day out of range").map(Value::Text);
    let range = [stamp(start)?, stamp(end)?];
    let figures = tenant
        .query_one::<DayFigures>(
            tenant_sql!(
                "SELECT (SELECT count(*) FROM leads WHERE tenant_id = ?1 AND created_at >= ?2
                        AND created_at < ?3) AS leads,
                    (SELECT count(DISTINCT lead_id) FROM lead_events WHERE tenant_id = ?1
                        AND kind = 'sale' AND created_at >= ?2 AND created_at < ?3) AS conversions,
                    (SELECT json_group_object(currency, cents) FROM (
                        SELECT COALESCE(json_extract(detail, '$.currency'), '') AS currency,
                            SUM(CASE kind WHEN 'sale' THEN 1 ELSE -1 END
                                * COALESCE(json_extract(detail, '$.amount_cents'), 0)) AS cents
                        FROM lead_events WHERE tenant_id = ?1 AND kind IN ('sale', 'sale_canceled')
                            AND created_at >= ?2 AND created_at < ?3 GROUP BY 1)) AS revenue"
            ),
            &range,
        )?
        .context("one row of figures")?;
    let detail = json!({"day": day, "leads": figures.leads, "conversions": figures.conversions,
        "revenue": figures.revenue});
    let queued = tenant.execute(
        tenant_sql!(
            "INSERT INTO alert_deliveries (tenant_id, id, rule_id, event, detail, day, created_at)
             VALUES (?1, 'msg_' || lower(hex(randomblob(12))), ?2, 'digest', ?3, ?4, ?5)
             ON CONFLICT DO NOTHING RETURNING id"
        ),
        &[
            Value::Text(rule_id.to_string()),
            Value::Text(detail.to_string()),
            Value::Text(day.to_string()),
            Value::Text(platform::clock::now_rfc3339()?),
        ],
    )?;
    Ok(!queued.rows.is_empty())
}
