//! Black-box test harness: spawn the app on a host, talk HTTP to it, fake Systeme.io.
//!
//! Each app gets a fresh state dir, a free port on 127.0.0.1 and its variables through the
//! environment (`SPIN_VARIABLE_*`). It runs on the project's local host by default, or on real
//! Spin when `SPIN_BIN` names a `spin` binary; [`HostKind::command`] is the only place the two
//! differ. Readiness is polled, never slept for; a host that dies early shows its stderr. The
//! host runs in its own process group, which is stopped on drop: `SIGTERM`, a bounded wait,
//! then `SIGKILL` for whatever is left (`spin up` runs its trigger as a child, which a `SIGKILL`
//! of `spin up` alone would orphan).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod systeme;

pub use systeme::{FakeSysteme, Mode};

/// Secrets the test apps run with.
pub const TOKEN_SECRET: &str = "test-token-secret-0123456789abcdef0123456789";
pub const ADMIN_TOKEN_SECRET: &str = "test-admin-token-secret-0123456789abcdef01234";
pub const SIGNUP_SECRET: &str = "whsec_dGVzdC1zaWdudXAtc2VjcmV0LTAxMjM0NTY3ODk=";
pub const SYSTEME_WEBHOOK_SECRET: &str = "test-systeme-webhook-secret";
pub const SYSTEME_API_KEY: &str = "test-systeme-api-key";

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Which host runs the app under test.
#[derive(Debug, Clone)]
pub enum HostKind {
    /// The project's wasmtime host, `target/release/cfe-host`.
    Local(PathBuf),
    /// Real Spin, from `SPIN_BIN`.
    Spin(PathBuf),
}

impl HostKind {
    pub fn from_env() -> Self {
        match std::env::var_os("SPIN_BIN") {
            Some(bin) if !bin.is_empty() => Self::Spin(PathBuf::from(bin)),
            _ => {
                let bin = workspace_root().join("target/release/cfe-host");
                assert!(
                    bin.exists(),
                    "{} is missing: run the README's test command (./scripts/test), which builds \
                     the host and the components first",
                    bin.display()
                );
                Self::Local(bin)
            }
        }
    }

    pub fn is_real_spin(&self) -> bool {
        matches!(self, Self::Spin(_))
    }

    /// How the app is started: the one place where the two hosts differ. Both take
    /// `spin up`'s flags.
    pub fn command(&self, manifest: &Path, port: u16, state_dir: &Path) -> Command {
        let mut cmd = match self {
            Self::Local(bin) => {
                let mut cmd = Command::new(bin);
                // Compiled components are cached across test apps (wasmtime's on-disk cache).
                cmd.env(
                    "CFE_HOST_CACHE_DIR",
                    workspace_root().join("target/cfe-host-cache"),
                );
                cmd
            }
            Self::Spin(bin) => Command::new(bin),
        };
        cmd.arg("up")
            .arg("-f")
            .arg(manifest)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--state-dir")
            .arg(state_dir);
        cmd
    }
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// What to start: a manifest, the variables to pass through the environment, and optionally a
/// runtime-config file (shared backends).
#[derive(Debug, Clone)]
pub struct AppSpec {
    pub manifest: PathBuf,
    pub env: Vec<(String, String)>,
    /// Passed as `--runtime-config-file`.
    pub runtime_config: Option<PathBuf>,
    /// The default SQLite database, when the runtime config puts it outside the state dir.
    pub database: Option<PathBuf>,
}

impl AppSpec {
    /// ClientFlow Edge itself, with test secrets, pointed at the given fake Systeme.io.
    pub fn clientflow(systeme_base: &str) -> Self {
        Self {
            manifest: workspace_root().join("spin.toml"),
            env: vec![
                ("SPIN_VARIABLE_TOKEN_SECRET".into(), TOKEN_SECRET.into()),
                (
                    "SPIN_VARIABLE_ADMIN_TOKEN_SECRET".into(),
                    ADMIN_TOKEN_SECRET.into(),
                ),
                ("SPIN_VARIABLE_SIGNUP_SECRET".into(), SIGNUP_SECRET.into()),
                (
                    "SPIN_VARIABLE_SYSTEME_WEBHOOK_SECRET".into(),
                    SYSTEME_WEBHOOK_SECRET.into(),
                ),
                (
                    "SPIN_VARIABLE_SYSTEME_API_KEY".into(),
                    SYSTEME_API_KEY.into(),
                ),
                ("SPIN_VARIABLE_SYSTEME_API_BASE".into(), systeme_base.into()),
            ],
            runtime_config: None,
            database: None,
        }
    }

    /// The test-only conformance probe.
    pub fn probe() -> Self {
        Self {
            manifest: workspace_root().join("tests/probe/spin.toml"),
            env: vec![(
                "SPIN_VARIABLE_PROBE_REQUIRED".into(),
                "required-value".into(),
            )],
            runtime_config: None,
            database: None,
        }
    }

    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn without_env(mut self, key: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// Runs the app with a runtime-config file; `database` names the default SQLite file it
    /// sets, if any, so [`TestApp::db`] reads the right one.
    pub fn with_runtime_config(mut self, path: &Path, database: Option<&Path>) -> Self {
        self.runtime_config = Some(path.to_path_buf());
        self.database = database.map(Path::to_path_buf);
        self
    }
}

/// A running app. Killed on drop.
pub struct TestApp {
    pub base_url: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub host: HostKind,
    spec: AppSpec,
    state_dir: tempfile::TempDir,
    stderr_path: PathBuf,
    child: Child,
}

/// How a start attempt ended when the host did not become ready.
#[derive(Debug)]
pub struct StartFailure {
    pub status: Option<std::process::ExitStatus>,
    pub stderr: String,
}

fn start(
    spec: &AppSpec,
    state_dir: tempfile::TempDir,
) -> Result<TestApp, (StartFailure, tempfile::TempDir)> {
    let host = HostKind::from_env();
    let port = free_port();
    let stderr_path = state_dir.path().join("host-stderr.log");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut cmd = host.command(&spec.manifest, port, state_dir.path());
    if let Some(config) = &spec.runtime_config {
        cmd.arg("--runtime-config-file").arg(config);
    }
    // Start from a clean slate: only the variables this spec names reach the app.
    for (key, _) in std::env::vars() {
        if key.starts_with("SPIN_VARIABLE_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(state_dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        // Its own process group, so stopping it reaches every process the host started.
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {host:?}: {e}"));
    let base_url = format!("http://127.0.0.1:{port}");
    let ready_url = format!("{base_url}/.well-known/spin/health");
    let deadline = Instant::now() + Duration::from_secs(120);
    let probe = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            return Err((
                StartFailure {
                    status: Some(status),
                    stderr,
                },
                state_dir,
            ));
        }
        if probe
            .get(&ready_url)
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        if Instant::now() > deadline {
            stop(&mut child);
            let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            return Err((
                StartFailure {
                    status: None,
                    stderr,
                },
                state_dir,
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Ok(TestApp {
        base_url,
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        host,
        spec: spec.clone(),
        state_dir,
        stderr_path,
        child,
    })
}

/// Starts an app and waits until it answers; panics with the host's stderr if it dies.
pub fn spawn(spec: &AppSpec) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    match start(spec, dir) {
        Ok(app) => app,
        Err((failure, _)) => panic!(
            "the host did not become ready (exit: {:?}). Its stderr:\n{}",
            failure.status, failure.stderr
        ),
    }
}

/// Starts an app that is expected to fail at start-up, and returns how it failed.
pub fn spawn_expecting_failure(spec: &AppSpec) -> StartFailure {
    let dir = tempfile::tempdir().unwrap();
    match start(spec, dir) {
        Ok(app) => panic!(
            "the app started at {} but was expected to fail",
            app.base_url
        ),
        Err((failure, _)) => failure,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub fn state_dir(&self) -> &Path {
        self.state_dir.path()
    }

    /// The default SQLite database file: the one the runtime config names, or the one Spin
    /// keeps in the state dir.
    pub fn database_path(&self) -> PathBuf {
        match &self.spec.database {
            Some(path) => path.clone(),
            None => self.state_dir().join("sqlite_db.db"),
        }
    }

    /// Everything the host wrote to stderr so far (component logs included).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Stops the host and starts it again on the same state dir.
    pub fn restart(self) -> TestApp {
        self.restart_with(|spec| spec)
    }

    /// Kills the host and its group with `SIGKILL` (no request gets to finish, nothing is
    /// flushed) and starts it again on the same state dir.
    pub fn kill_and_restart(mut self) -> TestApp {
        signal_group(self.child.id(), "-KILL");
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.state_dir, tempfile::tempdir().unwrap());
        match start(&self.spec.clone(), dir) {
            Ok(app) => app,
            Err((failure, _)) => panic!("restart failed: {}", failure.stderr),
        }
    }

    /// Stops the host and starts it again on the same state dir with a changed spec (for
    /// example with fault injection turned on or off).
    pub fn restart_with(mut self, change: impl FnOnce(AppSpec) -> AppSpec) -> TestApp {
        stop(&mut self.child);
        let spec = change(self.spec.clone());
        let dir = std::mem::replace(&mut self.state_dir, tempfile::tempdir().unwrap());
        match start(&spec, dir) {
            Ok(app) => app,
            Err((failure, _)) => panic!("restart failed: {}", failure.stderr),
        }
    }
}

/// How long a host gets to exit after `SIGTERM` before its group is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

fn signal_group(group: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Stops a host started by [`start`] and everything in its process group: `SIGTERM` to the
/// group (`spin up` then stops its trigger child itself), a wait of up to [`STOP_GRACE`] for
/// the leader, then `SIGKILL` to whatever of the group is left.
fn stop(child: &mut Child) {
    let group = child.id();
    if matches!(child.try_wait(), Ok(None)) {
        signal_group(group, "-TERM");
        let deadline = Instant::now() + STOP_GRACE;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    signal_group(group, "-KILL");
    let _ = child.kill();
    let _ = child.wait();
}

/// The processes (pids) whose process group is `group`, read from `/proc/<pid>/stat`.
/// Zombies still count: a process nobody has reaped yet.
pub fn processes_in_group(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
            let rest = &stat[stat.rfind(')')? + 1..];
            let pgrp: u32 = rest.split_whitespace().nth(2)?.parse().ok()?;
            (pgrp == group).then_some(pid)
        })
        .collect()
}

impl TestApp {
    /// The host's process group (its leader is the host process itself).
    pub fn process_group(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        stop(&mut self.child);
        if std::thread::panicking() {
            eprintln!("--- host stderr ---\n{}", self.stderr());
        }
    }
}

/// ClientFlow Edge with a fresh state dir and a fake Systeme.io that records what it receives.
pub struct SpawnedApp {
    pub app: TestApp,
    pub systeme: FakeSysteme,
}

impl std::ops::Deref for SpawnedApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// `spawn_app()` from STYLE.md: the app under test, wired to its own fake Systeme.io.
pub async fn spawn_app() -> SpawnedApp {
    spawn_app_with(|spec| spec).await
}

/// [`spawn_app`] with changes to the spec (variables).
pub async fn spawn_app_with(change: impl FnOnce(AppSpec) -> AppSpec) -> SpawnedApp {
    let systeme = FakeSysteme::start().await;
    let spec = change(AppSpec::clientflow(&systeme.uri()));
    let app = tokio::task::spawn_blocking(move || spawn(&spec))
        .await
        .unwrap();
    SpawnedApp { app, systeme }
}

/// Starts any spec from async code.
pub async fn spawn_spec(spec: AppSpec) -> TestApp {
    tokio::task::spawn_blocking(move || spawn(&spec))
        .await
        .unwrap()
}

/// Reads a JSON body, with the raw text in the panic message if it is not JSON.
pub async fn json_body(resp: reqwest::Response) -> serde_json::Value {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts a problem+json error with the given status and `code`, and returns the body.
pub async fn assert_problem(resp: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(content_type, "application/problem+json");
    let body = json_body(resp).await;
    assert_eq!(body["code"], code, "problem code in {body}");
    assert_eq!(body["status"], status, "problem status in {body}");
    for field in ["type", "title", "detail"] {
        assert!(
            body[field].is_string(),
            "problem+json lacks {field}: {body}"
        );
    }
    body
}

// ---- tenants and tokens ----

/// Unix time now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token_secret() -> domain::secret::TokenSecret {
    domain::secret::TokenSecret::parse(TOKEN_SECRET).unwrap()
}

/// Mints a token with the test `token_secret`.
pub fn mint(claims: &domain::token::Claims) -> String {
    domain::token::mint(&token_secret(), claims)
}

/// Mints a token with the test `admin_token_secret`.
pub fn mint_admin(claims: &domain::token::Claims) -> String {
    domain::token::mint(
        &domain::secret::TokenSecret::parse(ADMIN_TOKEN_SECRET).unwrap(),
        claims,
    )
}

/// Waits for the next clock minute when less than `needed` seconds of this one are left. The
/// capture rate limit counts per clock minute, so a test that fills a client's window and
/// expects the next post refused must not straddle two minutes.
pub async fn within_one_rate_window(needed: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into_minute = Duration::from_secs(now.as_secs() % 60)
        + Duration::from_nanos(u64::from(now.subsec_nanos()));
    if into_minute + Duration::from_secs(needed) >= Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(60) - into_minute + Duration::from_millis(50)).await;
    }
}

/// A valid admin token (signed with `admin_token_secret`), good for ten minutes.
pub fn admin_token() -> String {
    mint_admin(&domain::token::Claims {
        sub: None,
        scope: domain::token::Scope::Admin,
        exp: Some(now() + 600),
        generation: None,
    })
}

/// A valid dashboard token for `tenant`, good for ten minutes.
pub fn dashboard_token(tenant: &str) -> String {
    mint(&domain::token::Claims {
        sub: Some(tenant.into()),
        scope: domain::token::Scope::Dashboard,
        exp: Some(now() + 600),
        generation: None,
    })
}

/// Standard Webhooks headers for a signup body, signed with the test `signup_secret`.
pub fn signup_headers(webhook_id: &str, timestamp: i64, body: &str) -> Vec<(&'static str, String)> {
    let secret = domain::secret::WebhookSecret::parse(SIGNUP_SECRET).unwrap();
    vec![
        ("webhook-id", webhook_id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            domain::signature::sign_standard(&secret, webhook_id, timestamp, body.as_bytes()),
        ),
    ]
}

/// A tenant created through `POST /v1/tenants`.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub id: String,
    pub tag_prefix: String,
    pub capture_token: String,
    pub body: serde_json::Value,
}

impl TestTenant {
    pub fn dashboard_token(&self) -> String {
        dashboard_token(&self.id)
    }
}

impl TestApp {
    /// Sends a signed signup.
    pub async fn post_signup(&self, webhook_id: &str, body: &str) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/v1/tenants"))
            .body(body.to_string());
        for (k, v) in signup_headers(webhook_id, now(), body) {
            req = req.header(k, v);
        }
        req.send().await.unwrap()
    }

    /// Posts a Systeme.io callback signed with the test webhook secret.
    pub async fn post_systeme_event(
        &self,
        event: &str,
        message_id: &str,
        body: &str,
    ) -> reqwest::Response {
        let secret = domain::secret::SystemeSecret::parse(SYSTEME_WEBHOOK_SECRET).unwrap();
        self.client
            .post(self.url("/v1/systeme/events"))
            .header("x-webhook-event", event)
            .header("x-webhook-message-id", message_id)
            .header(
                "x-webhook-signature",
                domain::signature::sign_systeme(&secret, body.as_bytes()),
            )
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Creates a tenant and returns its id, prefix and capture token.
    pub async fn create_tenant(&self, name: &str) -> TestTenant {
        let email = format!("{}@ib.example.com", name.to_lowercase().replace(' ', "-"));
        let body = serde_json::json!({ "name": name, "email": email }).to_string();
        let resp = self.post_signup(&format!("msg_{name}"), &body).await;
        assert_eq!(resp.status(), 201, "creating tenant {name}");
        let body = json_body(resp).await;
        TestTenant {
            id: body["id"].as_str().unwrap().to_string(),
            tag_prefix: body["tag_prefix"].as_str().unwrap().to_string(),
            capture_token: body["capture_token"].as_str().unwrap().to_string(),
            body,
        }
    }

    /// Sets a tenant's budgets on the shared Systeme.io account (`PATCH /v1/admin/tenants/:id`
    /// with `budgets`) and returns the operator's view of it.
    pub async fn set_budgets(
        &self,
        tenant_id: &str,
        budgets: serde_json::Value,
    ) -> serde_json::Value {
        let resp = self
            .client
            .patch(self.url(&format!("/v1/admin/tenants/{tenant_id}")))
            .bearer_auth(admin_token())
            .json(&serde_json::json!({ "budgets": budgets }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "setting budgets");
        json_body(resp).await
    }

    /// Lifts a tenant's Systeme.io call budget, for tests that sync many leads of one tenant
    /// at once and test something else.
    pub async fn unlimited_sync_calls(&self, tenant_id: &str) {
        self.set_budgets(
            tenant_id,
            serde_json::json!({ "sync_calls_per_minute": 1_000_000 }),
        )
        .await;
    }

    /// The operator's view of one tenant (admin list).
    pub async fn admin_view(&self, tenant_id: &str) -> Option<serde_json::Value> {
        let resp = self
            .client
            .get(self.url("/v1/admin/tenants?limit=500"))
            .bearer_auth(admin_token())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body = json_body(resp).await;
        body["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == tenant_id)
            .cloned()
    }
}

// ---- leads ----

impl TestApp {
    /// Posts a JSON lead with a capture token in `Authorization`.
    pub async fn post_lead(&self, token: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/leads"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Posts a urlencoded form the way a plain HTML form does: the key in the query string.
    pub async fn post_form(&self, token: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let body = url_encode_pairs(form);
        self.client
            .post(self.url(&format!("/v1/leads?key={token}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Posts many JSON leads, `(capture token, body)` each, 20 at a time, and asserts each one
    /// is a new lead (`201`). Returns the new lead ids in order.
    pub async fn post_leads(&self, posts: &[(String, serde_json::Value)]) -> Vec<String> {
        let mut ids = Vec::with_capacity(posts.len());
        for chunk in posts.chunks(20) {
            let sends = chunk
                .iter()
                .map(|(token, body)| self.post_lead(token, body));
            for resp in futures::future::join_all(sends).await {
                assert_eq!(resp.status(), 201);
                ids.push(json_body(resp).await["id"].as_str().unwrap().to_string());
            }
        }
        ids
    }

    /// Runs `POST /v1/admin/sync` with the given query and returns the report.
    pub async fn run_sync(&self, query: &str) -> serde_json::Value {
        let resp = self
            .client
            .post(self.url(&format!("/v1/admin/sync{query}")))
            .bearer_auth(admin_token())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "admin sync");
        json_body(resp).await
    }

    /// A read-only look at the app's database, for asserting what was stored.
    pub fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_with_flags(
            self.database_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn
    }

    /// A writable connection, for seeding state a test cannot reach over HTTP in reasonable
    /// time (e.g. a tenant already at its plan's limit).
    pub fn db_rw(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.database_path()).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn
    }

    /// One lead row of `tenant` by email, as JSON-ish columns.
    pub fn lead_row(&self, tenant: &str, email: &str) -> Option<LeadRow> {
        let conn = self.db();
        let mut stmt = conn
            .prepare(
                "SELECT id, sync_status, sync_attempts, tags, systeme_contact_id, utm_source, page_url, name, form
                 FROM leads WHERE tenant_id = ? AND email = ?",
            )
            .unwrap();
        let mut rows = stmt.query(rusqlite::params![tenant, email]).unwrap();
        let row = rows.next().unwrap()?;
        let tags: String = row.get(3).unwrap();
        Some(LeadRow {
            id: row.get(0).unwrap(),
            sync_status: row.get(1).unwrap(),
            sync_attempts: row.get(2).unwrap(),
            tags: serde_json::from_str(&tags).unwrap(),
            systeme_contact_id: row.get(4).unwrap(),
            utm_source: row.get(5).unwrap(),
            page_url: row.get(6).unwrap(),
            name: row.get(7).unwrap(),
            form: row.get(8).unwrap(),
        })
    }

    /// How many leads `tenant` has.
    pub fn lead_count(&self, tenant: &str) -> i64 {
        self.db()
            .query_row(
                "SELECT COUNT(*) FROM leads WHERE tenant_id = ?",
                [tenant],
                |r| r.get(0),
            )
            .unwrap()
    }
}

/// A stored lead, read straight from the database.
#[derive(Debug, Clone)]
pub struct LeadRow {
    pub id: String,
    pub sync_status: String,
    pub sync_attempts: i64,
    pub tags: Vec<String>,
    pub systeme_contact_id: Option<i64>,
    pub utm_source: Option<String>,
    pub page_url: Option<String>,
    pub name: Option<String>,
    pub form: String,
}

/// `application/x-www-form-urlencoded` encoding of pairs.
pub fn url_encode_pairs(form: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(form).unwrap()
}
