//! Several replicas on one shared database: two app processes on one SQLite file
//! (`[sqlite_database.default] type = "spin"`, one `path`), as SpinKube runs `replicas > 1`.
//! Whatever one replica writes, the other sees on its next request: rate limit, idempotency,
//! quota, suspension, key rotation, settings, stats, and the sync batch. The runtime config
//! also names a `redis-server` for key-value, as a deployment that kept an older runtime config
//! would: the app opens no key-value store, so Redis going away changes no answer (on the
//! local host, as under Spin, a call to an unreachable Redis waits until it is back).
//!
//! `redis-server` is Debian's package (`./scripts/test` installs it when missing; `REDIS_SERVER`
//! may name another binary). Each test starts its own on a free port, without persistence.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api_tests::{
    AppSpec, FakeSysteme, Mode, TestApp, admin_token, assert_problem, free_port, json_body,
    spawn_spec, within_one_rate_window,
};
use serde_json::{Value, json};

/// A `redis-server` on 127.0.0.1, without persistence; killed on drop. `upgrade.rs` uses it too.
pub(crate) struct Redis {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

fn redis_server() -> PathBuf {
    if let Some(bin) = std::env::var_os("REDIS_SERVER").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "redis-server not found (set REDIS_SERVER): run ./scripts/test, which installs \
                 Debian's redis-server when it is missing"
            )
        })
}

impl Redis {
    pub(crate) fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        redis.restart();
        redis
    }

    /// Starts (again) on the same port, empty.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let log = std::fs::File::create(self.dir.path().join("redis.log")).unwrap();
        let child = Command::new(redis_server())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting redis-server: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.command(&["PING"]).as_deref() != Some("+PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on port {}: {}",
                self.port,
                std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it at once, as a crash or a lost node would.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends one command (RESP) and returns the first line of the reply, or `None` when Redis
    /// cannot be reached.
    fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut reply = [0u8; 512];
        let n = stream.read(&mut reply).ok()?;
        let text = String::from_utf8_lossy(&reply[..n]).to_string();
        text.lines().next().map(str::to_string)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two replicas of the app on one Redis and one SQLite file, and one fake Systeme.io.
struct Replicas {
    a: TestApp,
    b: TestApp,
    systeme: FakeSysteme,
    redis: Redis,
    _shared: tempfile::TempDir,
}

fn runtime_config(redis_url: &str, database: &Path) -> String {
    format!(
        "[key_value_store.default]\ntype = \"redis\"\nurl = \"{redis_url}\"\n\n\
         [sqlite_database.default]\ntype = \"spin\"\npath = \"{}\"\n",
        database.display()
    )
}

async fn spawn_replicas(change: impl Fn(AppSpec) -> AppSpec) -> Replicas {
    let redis = tokio::task::spawn_blocking(Redis::start).await.unwrap();
    let systeme = FakeSysteme::start().await;
    let shared = tempfile::tempdir().unwrap();
    let database = shared.path().join("sqlite_db.db");
    let config = shared.path().join("runtime-config.toml");
    std::fs::write(&config, runtime_config(&redis.url(), &database)).unwrap();
    let spec =
        change(AppSpec::clientflow(&systeme.uri())).with_runtime_config(&config, Some(&database));
    let a = spawn_spec(spec.clone()).await;
    let b = spawn_spec(spec).await;
    Replicas {
        a,
        b,
        systeme,
        redis,
        _shared: shared,
    }
}

async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    let resp = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    json_body(resp).await
}

async fn set_status(app: &TestApp, tenant: &str, status: &str) {
    let resp = app
        .client
        .patch(app.url(&format!("/v1/admin/tenants/{tenant}")))
        .bearer_auth(admin_token())
        .json(&json!({ "status": status }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "setting status {status}");
}

#[tokio::test]
async fn the_rate_limit_quota_and_stats_hold_across_replicas() {
    let r = spawn_replicas(|spec| spec.with_env("SPIN_VARIABLE_CAPTURE_RATE_LIMIT", "4")).await;
    let t = r.a.create_tenant("Replica Ib").await;
    // The app keeps nothing in key-value: the Redis the runtime config names stays empty.
    assert_eq!(r.redis.command(&["DBSIZE"]).as_deref(), Some(":0"));

    // One client, four posts spread over both replicas: the fifth is refused on either.
    within_one_rate_window(20).await;
    for (i, app) in [&r.a, &r.b, &r.a, &r.b].into_iter().enumerate() {
        let resp = app
            .post_lead(
                &t.capture_token,
                &json!({"email": format!("r{i}@example.com")}),
            )
            .await;
        assert_eq!(resp.status(), 201, "post {i}");
    }
    for app in [&r.a, &r.b] {
        let resp = app
            .post_lead(&t.capture_token, &json!({"email": "over@example.com"}))
            .await;
        assert_problem(resp, 429, "rate_limited").await;
    }

    // Quota: at 999 of 1000 leads, the next lead is the last synced one, whichever replica
    // takes it, and the one after is held.
    let q = r.b.create_tenant("Quota Ib").await;
    r.a.db_rw()
        .execute("UPDATE tenants SET lead_count = 999 WHERE id = ?", [&q.id])
        .unwrap();
    let last =
        r.a.post_lead(&q.capture_token, &json!({"email": "last@example.com"}))
            .await;
    assert_eq!(last.status(), 201);
    let over =
        r.b.post_lead(&q.capture_token, &json!({"email": "held@example.com"}))
            .await;
    assert_eq!(over.status(), 201, "the visitor still gets success");
    assert_eq!(
        r.a.lead_row(&q.id, "last@example.com").unwrap().sync_status,
        "synced"
    );
    assert_eq!(
        r.a.lead_row(&q.id, "held@example.com").unwrap().sync_status,
        "held"
    );

    // Stats: both replicas count the same leads.
    let token = t.dashboard_token();
    let from_a = get_json(&r.a, "/v1/dashboard/stats?days=7", &token).await;
    let from_b = get_json(&r.b, "/v1/dashboard/stats?days=7", &token).await;
    assert_eq!(from_a["leads"]["total"], 4, "{from_a}");
    assert_eq!(from_a, from_b);
}

#[tokio::test]
async fn suspension_key_rotation_and_settings_reach_the_other_replica_at_once() {
    let r = spawn_replicas(|spec| spec).await;
    let t = r.a.create_tenant("Gate Ib").await;
    let lead = |n: u32| json!({"email": format!("g{n}@example.com")});
    // B reads (and caches) the tenant first, so a stale cache on B would show below.
    assert_eq!(
        r.b.post_lead(&t.capture_token, &lead(0)).await.status(),
        201
    );

    set_status(&r.a, &t.id, "suspended").await;
    assert_problem(
        r.b.post_lead(&t.capture_token, &lead(1)).await,
        403,
        "tenant_suspended",
    )
    .await;
    set_status(&r.b, &t.id, "active").await;
    assert_eq!(
        r.a.post_lead(&t.capture_token, &lead(1)).await.status(),
        201
    );

    // A key rotated on A revokes the old key on B; the new one works on B.
    let rotated =
        r.a.client
            .post(r.a.url("/v1/dashboard/capture-key"))
            .bearer_auth(t.dashboard_token())
            .send()
            .await
            .unwrap();
    assert_eq!(rotated.status(), 200);
    let new_token = json_body(rotated).await["capture_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_problem(
        r.b.post_lead(&t.capture_token, &lead(2)).await,
        401,
        "token_revoked",
    )
    .await;
    assert_eq!(r.b.post_lead(&new_token, &lead(2)).await.status(), 201);

    // Settings saved on B are what A's gate applies on the next request.
    let saved =
        r.b.client
            .put(r.b.url("/v1/dashboard/settings"))
            .bearer_auth(t.dashboard_token())
            .json(&json!({"allowed_origins": ["https://lp.example.com"]}))
            .send()
            .await
            .unwrap();
    assert_eq!(saved.status(), 200);
    let from_origin = |origin: &'static str| {
        r.a.client
            .post(r.a.url("/v1/leads"))
            .bearer_auth(&new_token)
            .header("origin", origin)
            .json(&lead(3))
            .send()
    };
    assert_problem(
        from_origin("https://evil.example").await.unwrap(),
        403,
        "origin_not_allowed",
    )
    .await;
    assert_eq!(
        from_origin("https://lp.example.com")
            .await
            .unwrap()
            .status(),
        201
    );
}

#[tokio::test]
async fn an_idempotency_key_is_one_answer_across_replicas_even_when_both_race() {
    let r = spawn_replicas(|spec| spec).await;
    let t = r.a.create_tenant("Idem Ib").await;
    let post = |app: &TestApp, key: &str, email: &str| {
        app.client
            .post(app.url("/v1/leads"))
            .bearer_auth(&t.capture_token)
            .header("idempotency-key", key)
            .json(&json!({"email": email}))
            .send()
    };

    // A replay on the other replica.
    let first = post(&r.a, "order-1", "one@example.com").await.unwrap();
    assert_eq!(first.status(), 201);
    let first = json_body(first).await;
    let replay = post(&r.b, "order-1", "one@example.com").await.unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(json_body(replay).await, first);

    // Two first requests with one key at once, one on each replica: one runs; the other
    // replays its answer or is told the key is in progress (409). Never two answers.
    // The fake Systeme.io is slowed so the first request is still working when the second
    // arrives.
    r.systeme
        .delay("POST", "/api/contacts", Duration::from_millis(300));
    for round in 0..5 {
        let key = format!("race-{round}");
        let email = format!("race{round}@example.com");
        let (x, y) = tokio::join!(post(&r.a, &key, &email), post(&r.b, &key, &email));
        let (x, y) = (x.unwrap(), y.unwrap());
        let mut created = 0;
        let mut replayed_or_busy = 0;
        for resp in [x, y] {
            match resp.status().as_u16() {
                201 if resp.headers().get("idempotent-replayed").is_none() => created += 1,
                201 => replayed_or_busy += 1,
                409 => {
                    assert_problem(resp, 409, "idempotency_key_in_progress").await;
                    replayed_or_busy += 1;
                }
                other => panic!(
                    "round {round}: unexpected {other}: {}",
                    resp.text().await.unwrap()
                ),
            }
        }
        assert_eq!((created, replayed_or_busy), (1, 1), "round {round}");
        // Whatever the loser saw, the key now replays the one answer on both replicas.
        let again_a = post(&r.a, &key, &email).await.unwrap();
        let again_b = post(&r.b, &key, &email).await.unwrap();
        assert_eq!(again_a.headers()["idempotent-replayed"], "true");
        assert_eq!(json_body(again_a).await, json_body(again_b).await);
    }
    let timeline_rows: i64 =
        r.a.db()
            .query_row(
                "SELECT COUNT(*) FROM leads WHERE tenant_id = ? AND email LIKE 'race%'",
                [&t.id],
                |row| row.get(0),
            )
            .unwrap();
    assert_eq!(timeline_rows, 5);
}

#[tokio::test]
async fn two_sync_batches_at_once_on_two_replicas_push_each_lead_exactly_once() {
    let r = spawn_replicas(|spec| spec).await;
    let t = r.a.create_tenant("Batch Ib").await;
    r.a.unlimited_sync_calls(&t.id).await;
    // Systeme.io is down while the leads arrive, so they all wait for the batch.
    r.systeme.set_mode(Mode::Fail(503));
    let posts: Vec<_> = (0..24)
        .map(|i| {
            (
                t.capture_token.clone(),
                json!({"email": format!("b{i}@example.com")}),
            )
        })
        .collect();
    let (first, second) = posts.split_at(12);
    r.a.post_leads(first).await;
    r.b.post_leads(second).await;
    // Due now, as the cron's plain batch (no `ignore_backoff`) finds them after the backoff.
    r.a.db_rw()
        .execute(
            "UPDATE leads SET next_sync_at = 0 WHERE tenant_id = ?",
            [&t.id],
        )
        .unwrap();
    r.systeme.set_mode(Mode::Normal);
    r.systeme.clear_calls();
    // Each contact creation takes a moment, so the two batches overlap.
    r.systeme
        .delay("POST", "/api/contacts", Duration::from_millis(40));

    let (ra, rb) = tokio::join!(r.a.run_sync(""), r.b.run_sync(""));
    let synced = ra["synced"].as_i64().unwrap() + rb["synced"].as_i64().unwrap();
    assert_eq!(synced, 24, "{ra} {rb}");
    assert!(
        ra["synced"].as_i64().unwrap() > 0 && rb["synced"].as_i64().unwrap() > 0,
        "both batches did part of the work: {ra} {rb}"
    );
    let mut created: Vec<String> = r
        .systeme
        .calls_to("POST", "/api/contacts")
        .iter()
        .map(|c| c.body["email"].as_str().unwrap_or_default().to_string())
        .collect();
    created.sort();
    let mut expected: Vec<String> = (0..24).map(|i| format!("b{i}@example.com")).collect();
    expected.sort();
    assert_eq!(created, expected, "each lead pushed exactly once");
    assert_eq!(r.systeme.contact_count(), 24);

    // The same with `ignore_backoff=true` on both (after an outage): the claim is a
    // compare-and-set on what each batch read, so the backoff being ignored does not let the
    // second batch take leads the first has claimed.
    r.systeme.set_mode(Mode::Fail(503));
    let later: Vec<_> = (0..12)
        .map(|i| {
            (
                t.capture_token.clone(),
                json!({"email": format!("c{i}@example.com")}),
            )
        })
        .collect();
    r.a.post_leads(&later).await;
    r.systeme.set_mode(Mode::Normal);
    r.systeme.clear_calls();
    let (ra, rb) = tokio::join!(
        r.a.run_sync("?ignore_backoff=true"),
        r.b.run_sync("?ignore_backoff=true")
    );
    let attempted = ra["attempted"].as_i64().unwrap() + rb["attempted"].as_i64().unwrap();
    assert_eq!(attempted, 12, "{ra} {rb}");
    for i in 0..12 {
        let email = format!("c{i}@example.com");
        let lookups = r
            .systeme
            .calls_to("GET", "/api/contacts")
            .iter()
            .filter(|c| c.param("email") == Some(email.as_str()))
            .count();
        assert_eq!(lookups, 1, "{email} pushed more than once");
    }
}

// Multi-threaded: stopping and starting redis-server blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_gone_captures_callbacks_and_the_dashboard_answer_as_usual() {
    let mut r = spawn_replicas(|spec| spec).await;
    let t = r.a.create_tenant("Outage Ib").await;
    assert_eq!(
        r.b.post_lead(&t.capture_token, &json!({"email": "before@example.com"}))
            .await
            .status(),
        201
    );
    tokio::task::block_in_place(|| r.redis.kill());
    let started = Instant::now();
    let emails: Vec<String> = (0..6).map(|i| format!("during{i}@example.com")).collect();
    let bodies: Vec<Value> = emails
        .iter()
        .map(|email| json!({ "email": email }))
        .collect();
    let posts = bodies.iter().enumerate().map(|(i, body)| {
        let app = if i % 2 == 0 { &r.a } else { &r.b };
        app.post_lead(&t.capture_token, body)
    });
    for (resp, email) in futures::future::join_all(posts)
        .await
        .into_iter()
        .zip(&emails)
    {
        assert_eq!(resp.status(), 201, "{email}");
        assert!(r.a.lead_row(&t.id, email).is_some(), "{email} got a 2xx");
    }
    let tag = format!("{}email-opened", t.tag_prefix);
    let body = json!({"contact": {"email": "before@example.com", "tags": [{"id": 1, "name": tag}]},
                      "tag": {"id": 1, "name": tag}})
    .to_string();
    let callback =
        r.b.post_systeme_event("CONTACT_TAG_ADDED", "outage-1", &body)
            .await;
    assert_eq!(json_body(callback).await["status"], "applied");
    let stats = get_json(&r.a, "/v1/dashboard/stats", &t.dashboard_token()).await;
    assert_eq!(stats["leads"]["total"], 7, "{stats}");
    for app in [&r.a, &r.b] {
        let health = app.client.get(app.url("/v1/health")).send().await.unwrap();
        assert_eq!(health.status(), 200, "readiness does not depend on Redis");
    }
    // Nothing waited on Redis: every answer came within the usual latency of this suite.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    tokio::task::block_in_place(|| r.redis.restart());
    assert_eq!(r.a.lead_count(&t.id), 7);
}
