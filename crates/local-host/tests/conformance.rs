//! Host conformance: what a component can observe must match real Spin (docs/spin-behaviour.md).
//! Every test here runs the probe component (`tests/probe`) through the black-box harness and
//! passes unchanged under `SPIN_BIN`. They test the local host, not the product, so they live
//! with it and run with `cargo test -p local-host`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use api_tests::{AppSpec, TestApp, json_body, spawn_expecting_failure, spawn_spec};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn probe() -> TestApp {
    spawn_spec(AppSpec::probe()).await
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let resp = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    json_body(resp).await
}

async fn sql(app: &TestApp, route: &str, statements: Value) -> Vec<Value> {
    let resp = app
        .client
        .post(app.url(route))
        .json(&json!({ "statements": statements }))
        .send()
        .await
        .unwrap();
    let body = json_body(resp).await;
    match body.get("results") {
        Some(results) => results.as_array().unwrap().clone(),
        None => vec![body],
    }
}

// ---- routes ----

#[tokio::test]
async fn exact_route_beats_wildcards_whatever_the_manifest_order() {
    let app = probe().await;
    let body = get_json(&app, "/precedence/exact").await;
    assert_eq!(body["spin"]["matched_route"], "/precedence/exact");
    assert_eq!(body["spin"]["path_info"], "");
}

#[tokio::test]
async fn the_most_specific_wildcard_wins() {
    let app = probe().await;
    let deeper = get_json(&app, "/precedence/deeper/x/y").await;
    assert_eq!(deeper["spin"]["matched_route"], "/precedence/deeper/...");
    assert_eq!(deeper["spin"]["path_info"], "/x/y");
    let shallow = get_json(&app, "/precedence/other").await;
    assert_eq!(shallow["spin"]["matched_route"], "/precedence/...");
    let root = get_json(&app, "/anything/else").await;
    assert_eq!(root["spin"]["matched_route"], "/...");
    assert_eq!(root["spin"]["component_route"], "");
    assert_eq!(root["spin"]["path_info"], "/anything/else");
}

#[tokio::test]
async fn a_wildcard_route_also_matches_its_own_prefix() {
    let app = probe().await;
    let body = get_json(&app, "/precedence").await;
    assert_eq!(body["spin"]["matched_route"], "/precedence/...");
    assert_eq!(body["spin"]["path_info"], "");
}

#[tokio::test]
async fn a_parameter_segment_beats_a_trailing_wildcard() {
    let app = probe().await;
    let exact = get_json(&app, "/items/abc").await;
    assert_eq!(exact["spin"]["matched_route"], "/items/:item_id");
    assert_eq!(exact["spin"]["item_id"], "abc");
    let wild = get_json(&app, "/items/abc/rest").await;
    assert_eq!(wild["spin"]["matched_route"], "/items/:item_id/...");
}

#[tokio::test]
async fn the_host_answers_its_own_readiness_probe() {
    let app = probe().await;
    let resp = app
        .client
        .get(app.url("/.well-known/spin/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

// ---- headers ----

#[tokio::test]
async fn spin_headers_match_what_spin_sends_for_a_parameter_route() {
    let app = probe().await;
    let resp = app
        .client
        .get(app.url("/items/abc/rest/of/path?q=2"))
        .header("host", "example.test")
        .send()
        .await
        .unwrap();
    let body = json_body(resp).await;
    let spin = &body["spin"];
    assert_eq!(
        spin["full_url"],
        "http://example.test/items/abc/rest/of/path?q=2"
    );
    assert_eq!(spin["path_info"], "/rest/of/path");
    assert_eq!(spin["matched_route"], "/items/:item_id/...");
    assert_eq!(spin["raw_component_route"], "/items/:item_id/...");
    assert_eq!(spin["component_route"], "/items/:item_id");
    assert_eq!(spin["base_path"], "/");
    assert_eq!(spin["item_id"], "abc");
    assert_eq!(body["query"], "q=2");
    let client = spin["client_addr"].as_str().unwrap();
    assert!(client.starts_with("127.0.0.1:"), "client addr {client}");
}

#[tokio::test]
async fn a_client_cannot_forge_the_headers_the_host_sets() {
    let app = probe().await;
    let resp = app
        .client
        .get(app.url("/items/abc"))
        .header("spin-client-addr", "6.6.6.6:1")
        .header("spin-path-match-item-id", "forged")
        .send()
        .await
        .unwrap();
    let body = json_body(resp).await;
    assert!(
        body["spin"]["client_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(body["spin"]["item_id"], "abc");
}

#[tokio::test]
async fn an_exact_route_has_empty_path_info() {
    let app = probe().await;
    let body = get_json(&app, "/items/xyz").await;
    assert_eq!(body["spin"]["path_info"], "");
    assert_eq!(body["spin"]["component_route"], "/items/:item_id");
}

// ---- instances and traps ----

#[tokio::test]
async fn every_request_gets_a_fresh_instance() {
    let app = probe().await;
    for _ in 0..3 {
        assert_eq!(get_json(&app, "/probe/counter").await["count"], 1);
    }
}

#[tokio::test]
async fn a_panic_is_a_500_with_an_empty_body() {
    let app = probe().await;
    let resp = app
        .client
        .get(app.url("/probe/panic"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.text().await.unwrap(), "");
}

#[tokio::test]
async fn a_handler_error_is_a_500_whose_body_is_the_error_text() {
    let app = probe().await;
    let resp = app
        .client
        .get(app.url("/probe/error"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert!(resp.text().await.unwrap().contains("probe error text"));
}

#[tokio::test]
async fn component_output_reaches_the_host_log_with_its_id() {
    let app = probe().await;
    let resp = app
        .client
        .get(app.url("/probe/error"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    // The SDK writes a handler's error to the component's stderr. Both hosts copy component
    // output to their own stderr (`spin up` follows every component unless `--quiet`).
    let line = host_log_line_containing(&app, "probe error text").await;
    if !app.host.is_real_spin() {
        // The local host names the component on every line; Spin names it in the log file.
        assert!(line.starts_with("[probe] "), "log line: {line}");
    }
}

/// The first line of the host's stderr that contains `needle`, polled for until it appears:
/// the host may copy component output after the response has gone out.
async fn host_log_line_containing(app: &TestApp, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stderr = app.stderr();
        if let Some(line) = stderr.lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{needle:?} never reached the host's stderr: {stderr}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

// ---- key-value ----

#[tokio::test]
async fn key_value_round_trips_and_a_missing_key_is_none() {
    let app = probe().await;
    let put = app
        .client
        .put(app.url("/kv/default/greeting"))
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(put).await, json!({ "ok": true }));
    assert_eq!(
        get_json(&app, "/kv/default/greeting").await,
        json!({ "value": "hi" })
    );
    assert_eq!(
        get_json(&app, "/kv/default/absent").await,
        json!({ "value": null })
    );
    let del = app
        .client
        .delete(app.url("/kv/default/greeting"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(del).await, json!({ "ok": true }));
    assert_eq!(
        get_json(&app, "/kv/default/greeting").await,
        json!({ "value": null })
    );
}

#[tokio::test]
async fn get_keys_returns_every_key_of_the_store() {
    let app = probe().await;
    for key in ["b", "a"] {
        app.client
            .put(app.url(&format!("/kv/default/{key}")))
            .body("v")
            .send()
            .await
            .unwrap();
    }
    assert_eq!(
        get_json(&app, "/kv-keys/default").await,
        json!({ "keys": ["a", "b"] })
    );
}

#[tokio::test]
async fn an_undeclared_store_is_access_denied() {
    let app = probe().await;
    assert_eq!(
        get_json(&app, "/kv/other/x").await,
        json!({ "error": "Error::AccessDenied" })
    );
    assert_eq!(
        get_json(&app, "/locked/kv/default/x").await,
        json!({ "error": "Error::AccessDenied" }),
        "a component that declares no store cannot open the default one"
    );
}

// ---- key-value on Redis ----

/// A `redis-server` on 127.0.0.1 (Debian's package: `./scripts/test` installs it when
/// missing; `REDIS_SERVER` may name another binary), without persistence; killed on drop.
struct Redis {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

fn redis_server() -> std::path::PathBuf {
    use std::path::PathBuf;
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
    fn start() -> Self {
        let port = api_tests::free_port();
        let dir = std::env::temp_dir().join(format!(
            "cfe-conformance-redis-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self {
            port,
            dir,
            child: None,
        };
        redis.restart();
        redis
    }

    /// Starts (again) on the same port, empty, and waits until it answers.
    fn restart(&mut self) {
        use std::process::{Command, Stdio};
        assert!(self.child.is_none(), "redis-server is already running");
        let child = Command::new(redis_server())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting redis-server: {e}"));
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !self.answers_ping() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not answer PING on port {}",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn answers_ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        let mut reply = [0u8; 16];
        stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
            && stream
                .read(&mut reply)
                .is_ok_and(|n| reply[..n].starts_with(b"+PONG"))
    }

    /// Kills it at once, as a crash or a lost node would.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Spin's Redis store is a connection manager without timeouts: while Redis is down, opening
/// the store and every call wait for it to come back, and no error reaches the component. A
/// guest cannot time out a host call, so the client's own timeout is all that ends such a
/// request; a route that touches no store is not held up.
// Multi-threaded: stopping and starting redis-server blocks.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_redis_stalls_key_value_calls_until_it_is_back() {
    use std::time::Duration;
    let mut redis = tokio::task::spawn_blocking(Redis::start).await.unwrap();
    let config = redis.dir.join("runtime-config.toml");
    std::fs::write(
        &config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
            redis.url()
        ),
    )
    .unwrap();
    let app = spawn_spec(AppSpec::probe().with_runtime_config(&config, None)).await;
    let put = app
        .client
        .put(app.url("/kv/default/greeting"))
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(json_body(put).await, json!({ "ok": true }));
    assert_eq!(
        get_json(&app, "/kv/default/greeting").await,
        json!({ "value": "hi" })
    );

    tokio::task::block_in_place(|| redis.kill());
    let kv_call = app
        .client
        .get(app.url("/kv/default/greeting"))
        .timeout(Duration::from_secs(5))
        .send();
    let no_store = async {
        // Sent while the key-value call is waiting.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = std::time::Instant::now();
        let resp = app
            .client
            .get(app.url("/probe/empty"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        (resp, started.elapsed())
    };
    let (stalled, (empty, empty_took)) = tokio::join!(kv_call, no_store);
    match stalled {
        Err(e) if e.is_timeout() => {}
        other => panic!("a key-value call answered while Redis was down: {other:?}"),
    }
    assert_eq!(empty.unwrap().status(), 200, "took {empty_took:?}");

    tokio::task::block_in_place(|| redis.restart());
    let back = app
        .client
        .get(app.url("/kv/default/greeting"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("a key-value call completes once Redis is back");
    assert_eq!(back.status(), 200);
    // The restarted Redis is empty.
    assert_eq!(json_body(back).await, json!({ "value": null }));
}

// ---- SQLite ----

#[tokio::test]
async fn sqlite_values_map_like_spin() {
    let app = probe().await;
    let results = sql(
        &app,
        "/sqlite/default",
        json!([{ "sql": "SELECT 1 AS i, 1.5 AS f, 'txt' AS t, x'0102' AS b, NULL AS n, ? AS p", "params": [42] }]),
    )
    .await;
    assert_eq!(
        results[0],
        json!({
            "columns": ["i", "f", "t", "b", "n", "p"],
            "rows": [[{"Integer": 1}, {"Real": 1.5}, {"Text": "txt"}, {"Blob": [1, 2]}, "Null", {"Integer": 42}]],
        })
    );
}

#[tokio::test]
async fn a_multi_statement_string_runs_only_its_first_statement() {
    let app = probe().await;
    let results = sql(
        &app,
        "/sqlite/default",
        json!([
            { "sql": "CREATE TABLE a (x INTEGER); CREATE TABLE b (y INTEGER)" },
            { "sql": "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('a', 'b') ORDER BY name" },
        ]),
    )
    .await;
    assert_eq!(results[1]["rows"], json!([[{"Text": "a"}]]));
}

#[tokio::test]
async fn sqlite_errors_carry_sqlites_message() {
    let app = probe().await;
    let syntax = sql(
        &app,
        "/sqlite/default",
        json!([{ "sql": "SELEC nonsense" }]),
    )
    .await;
    assert_eq!(
        syntax[0]["error"],
        "Error::Io(\"near \\\"SELEC\\\": syntax error in SELEC nonsense at offset 0\")"
    );
    let unique = sql(
        &app,
        "/sqlite/default",
        json!([
            { "sql": "CREATE TABLE u (k TEXT PRIMARY KEY)" },
            { "sql": "INSERT INTO u VALUES ('x')" },
            { "sql": "INSERT INTO u VALUES ('x')" },
        ]),
    )
    .await;
    assert_eq!(
        unique[2]["error"],
        "Error::Io(\"UNIQUE constraint failed: u.k\")"
    );
}

#[tokio::test]
async fn sqlite_pragmas_are_spins() {
    let app = probe().await;
    let results = sql(
        &app,
        "/sqlite/default",
        json!([
            { "sql": "PRAGMA journal_mode" },
            { "sql": "PRAGMA busy_timeout" },
            { "sql": "PRAGMA foreign_keys" },
        ]),
    )
    .await;
    assert_eq!(results[0]["rows"], json!([[{"Text": "delete"}]]));
    assert_eq!(results[1]["rows"], json!([[{"Integer": 5000}]]));
    assert_eq!(results[2]["rows"], json!([[{"Integer": 1}]]));
}

#[tokio::test]
async fn a_transaction_commits_across_execute_calls_and_rolls_back_if_never_committed() {
    let app = probe().await;
    sql(
        &app,
        "/sqlite/default",
        json!([{ "sql": "CREATE TABLE t (v INTEGER)" }]),
    )
    .await;
    let committed = sql(
        &app,
        "/sqlite/default",
        json!([
            { "sql": "BEGIN IMMEDIATE" },
            { "sql": "INSERT INTO t VALUES (1)" },
            { "sql": "COMMIT" },
        ]),
    )
    .await;
    assert!(
        committed.iter().all(|r| r.get("error").is_none()),
        "{committed:?}"
    );
    sql(
        &app,
        "/sqlite/default",
        json!([{ "sql": "BEGIN IMMEDIATE" }, { "sql": "INSERT INTO t VALUES (2)" }]),
    )
    .await;
    let rows = sql(
        &app,
        "/sqlite/default",
        json!([{ "sql": "SELECT v FROM t ORDER BY v" }]),
    )
    .await;
    assert_eq!(rows[0]["rows"], json!([[{"Integer": 1}]]));
}

#[tokio::test]
async fn an_undeclared_database_is_access_denied() {
    let app = probe().await;
    let other = sql(&app, "/sqlite/other", json!([])).await;
    assert_eq!(other[0]["error"], "Error::AccessDenied");
    let locked = sql(&app, "/locked/sqlite/default", json!([])).await;
    assert_eq!(locked[0]["error"], "Error::AccessDenied");
}

// ---- variables ----

#[tokio::test]
async fn variables_resolve_from_defaults_templates_and_the_environment() {
    let app =
        spawn_spec(AppSpec::probe().with_env("SPIN_VARIABLE_PROBE_GREETING", "from-env")).await;
    assert_eq!(
        get_json(&app, "/vars/greeting").await,
        json!({ "value": "from-env" })
    );
    assert_eq!(
        get_json(&app, "/vars/composed").await,
        json!({ "value": "prefix-from-env-suffix" })
    );
    assert_eq!(
        get_json(&app, "/vars/required_one").await,
        json!({ "value": "required-value" })
    );
    let default = probe().await;
    assert_eq!(
        get_json(&default, "/vars/greeting").await,
        json!({ "value": "hello" })
    );
}

#[tokio::test]
async fn an_undeclared_variable_is_undefined_and_a_bad_name_is_invalid() {
    let app = probe().await;
    assert_eq!(
        get_json(&app, "/vars/not_declared").await["error"],
        "Error::Undefined(\"no variable for \\\"probe\\\".\\\"not_declared\\\"\")"
    );
    assert_eq!(
        get_json(&app, "/locked/vars/greeting").await["error"],
        "Error::Undefined(\"no variable for \\\"probe-locked\\\".\\\"greeting\\\"\")"
    );
    let bad = get_json(&app, "/vars/Bad-Name").await;
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .starts_with("Error::InvalidName("),
        "{bad}"
    );
}

#[tokio::test]
async fn a_missing_required_variable_stops_the_app_at_start_up() {
    let spec = AppSpec::probe().without_env("SPIN_VARIABLE_PROBE_REQUIRED");
    let failure = tokio::task::spawn_blocking(move || spawn_expecting_failure(&spec))
        .await
        .unwrap();
    assert!(failure.status.is_some_and(|s| !s.success()), "{failure:?}");
    assert!(
        failure.stderr.contains("probe_required"),
        "stderr: {}",
        failure.stderr
    );
}

// ---- outbound HTTP ----

#[tokio::test]
async fn outbound_http_reaches_allowed_hosts_only() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ping"))
        .respond_with(ResponseTemplate::new(200).set_body_string("pong"))
        .mount(&upstream)
        .await;
    let app =
        spawn_spec(AppSpec::probe().with_env("SPIN_VARIABLE_PROBE_UPSTREAM", &upstream.uri()))
            .await;
    let call = |url: String| {
        let app = &app;
        async move {
            let resp = app
                .client
                .post(app.url("/outbound"))
                .body(url)
                .send()
                .await
                .unwrap();
            json_body(resp).await
        }
    };
    assert_eq!(
        call(format!("{}/ping", upstream.uri())).await,
        json!({ "status": 200, "body": "pong" })
    );
    let port = upstream.address().port();
    let denied = call(format!("http://localhost:{port}/ping")).await;
    assert!(
        denied["error"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{denied}"
    );
    let other_port = call(format!("http://127.0.0.1:{}/ping", port.wrapping_add(1))).await;
    assert!(
        other_port["error"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{other_port}"
    );
    assert_eq!(upstream.received_requests().await.unwrap().len(), 1);
}

/// SQLite compiles a statement again on its first step when a bound value shaped its plan
/// (here a parameter in `LIMIT`). Both hosts answer the same; the local host also says so in
/// its log, once per statement text, which `tests/api/statements.rs` relies on.
#[tokio::test]
async fn a_statement_compiled_twice_is_reported_by_the_local_host() {
    let app = probe().await;
    let results = sql(
        &app,
        "/sqlite/default",
        json!([
            { "sql": "SELECT 1 AS a LIMIT ?", "params": [1] },
            { "sql": "SELECT 2 AS b LIMIT CAST(? AS INTEGER)", "params": [1] },
        ]),
    )
    .await;
    assert_eq!(results[0]["rows"], json!([[{"Integer": 1}]]));
    assert_eq!(results[1]["rows"], json!([[{"Integer": 2}]]));
    if app.host.is_real_spin() {
        return;
    }
    let line = host_log_line_containing(&app, "re-prepared").await;
    assert!(line.contains("SELECT 1 AS a LIMIT ?"), "{line}");
    assert!(
        !app.stderr().contains("SELECT 2 AS b"),
        "a CAST keeps the plan independent of the value"
    );
}

// ---- service chaining and private routes ----

/// A test-only app of three probe components, written to a temporary directory (removed on
/// drop): `caller` at `/outbound` with the given `allowed_outbound_hosts`, `hidden` on a private
/// route, `locked` (no outbound hosts) at `/locked/...`. No catch-all route, so an unrouted path
/// is a 404.
struct ChainingApp {
    dir: std::path::PathBuf,
    spec: AppSpec,
}

impl ChainingApp {
    fn new(name: &str, caller_hosts: &[&str], runtime_config: Option<&str>) -> Self {
        Self::with_hidden_route(name, caller_hosts, runtime_config, "{ private = true }")
    }

    fn with_hidden_route(
        name: &str,
        caller_hosts: &[&str],
        runtime_config: Option<&str>,
        hidden_route: &str,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "cfe-conformance-chaining-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let wasm = api_tests::workspace_root().join("target/wasm32-wasip2/release/probe.wasm");
        let source = toml_string(&wasm.display().to_string());
        let hosts = caller_hosts
            .iter()
            .map(|h| toml_string(h))
            .collect::<Vec<_>>()
            .join(", ");
        let manifest = format!(
            "spin_manifest_version = 2\n\
             [application]\nname = \"cfe-chaining-probe\"\nversion = \"0.1.0\"\n\
             [[trigger.http]]\nroute = \"/outbound\"\ncomponent = \"caller\"\n\
             [[trigger.http]]\nroute = {hidden_route}\ncomponent = \"hidden\"\n\
             [[trigger.http]]\nroute = \"/locked/...\"\ncomponent = \"locked\"\n\
             [component.caller]\nsource = {source}\nallowed_outbound_hosts = [{hosts}]\n\
             [component.hidden]\nsource = {source}\n\
             [component.locked]\nsource = {source}\n"
        );
        let manifest_path = dir.join("spin.toml");
        std::fs::write(&manifest_path, manifest).unwrap();
        let mut spec = AppSpec {
            manifest: manifest_path,
            env: Vec::new(),
            runtime_config: None,
            database: None,
        };
        if let Some(config) = runtime_config {
            let path = dir.join("runtime-config.toml");
            std::fs::write(&path, config).unwrap();
            spec = spec.with_runtime_config(&path, None);
        }
        Self { dir, spec }
    }
}

impl Drop for ChainingApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The probe's `/outbound` (or `/locked/outbound`): GETs `url` and reports the status and body,
/// or the error the host gave.
async fn outbound_from(app: &TestApp, route: &str, url: &str) -> Value {
    let resp = app
        .client
        .post(app.url(route))
        .body(url.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "POST {route} {url}");
    json_body(resp).await
}

#[tokio::test]
async fn chaining_reaches_the_target_in_process_with_a_synthetic_wildcard_match() {
    let chaining = ChainingApp::new("reach", &["http://hidden.spin.internal"], None);
    let app = spawn_spec(chaining.spec.clone()).await;
    let answer = outbound_from(
        &app,
        "/outbound",
        "http://hidden.spin.internal/items/abc/rest?q=2",
    )
    .await;
    assert_eq!(answer["status"], 200, "{answer}");
    let echo: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(echo["method"], "Method::Get");
    assert_eq!(echo["path"], "/items/abc/rest");
    assert_eq!(echo["query"], "q=2");
    let spin = &echo["spin"];
    // Whatever the target's routes: the match is `/...` and the path is all path info.
    assert_eq!(spin["matched_route"], "/...");
    assert_eq!(spin["raw_component_route"], "/...");
    assert_eq!(spin["component_route"], "");
    assert_eq!(spin["path_info"], "/items/abc/rest");
    assert_eq!(spin["base_path"], "/");
    assert_eq!(spin["item_id"], Value::Null);
    assert_eq!(spin["client_addr"], "0.0.0.0:0");
    // The outgoing Host header is dropped, so the URL is built on `localhost`.
    assert_eq!(spin["full_url"], "http://localhost/items/abc/rest?q=2");
    // The target's trap is its own empty 500, which the caller receives as a response.
    let trapped = outbound_from(&app, "/outbound", "http://hidden.spin.internal/probe/panic").await;
    assert_eq!(trapped, json!({ "status": 500, "body": "" }));
}

#[tokio::test]
async fn chaining_needs_the_target_in_allowed_outbound_hosts() {
    let chaining = ChainingApp::new("deny", &["http://hidden.spin.internal"], None);
    let app = spawn_spec(chaining.spec.clone()).await;
    // `locked` declares no outbound hosts at all.
    let locked = outbound_from(&app, "/locked/outbound", "http://hidden.spin.internal/x").await;
    assert!(
        locked["error"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{locked}"
    );
    // `caller` may reach `hidden`, not `locked`.
    let other = outbound_from(&app, "/outbound", "http://locked.spin.internal/locked/x").await;
    assert!(
        other["error"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{other}"
    );
}

#[tokio::test]
async fn a_wildcard_allows_chaining_to_any_component_even_one_with_a_public_route() {
    let chaining = ChainingApp::new("wildcard", &["http://*.spin.internal"], None);
    let app = spawn_spec(chaining.spec.clone()).await;
    // `locked`'s public route is `/locked/...`; chaining gives it the path as sent.
    let answer = outbound_from(&app, "/outbound", "http://locked.spin.internal/vars/x").await;
    assert_eq!(answer["status"], 200, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("Undefined"),
        "{body}"
    );
}

#[tokio::test]
async fn a_private_route_is_not_public_but_chaining_reaches_it() {
    let chaining = ChainingApp::new("private", &["http://hidden.spin.internal"], None);
    let app = spawn_spec(chaining.spec.clone()).await;
    for path in ["/", "/items/abc", "/hidden"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "GET {path}");
        assert_eq!(resp.text().await.unwrap(), "");
    }
    let answer = outbound_from(&app, "/outbound", "http://hidden.spin.internal/probe/empty").await;
    assert_eq!(answer, json!({ "status": 200, "body": "" }));
}

#[tokio::test]
async fn a_route_of_private_false_stops_the_app_at_start_up() {
    let chaining =
        ChainingApp::with_hidden_route("private-false", &[], None, "{ private = false }");
    let failure = spawn_expecting_failure(&chaining.spec);
    assert!(
        failure.stderr.contains("private = false"),
        "stderr: {}",
        failure.stderr
    );
}

/// `[outbound_networking] block_networks = ["private"]`: a host that resolves only to a
/// blocked address is refused before any connection (`DestinationIpProhibited`); chaining does
/// not touch the network, so it still works.
#[tokio::test]
async fn a_blocked_network_is_refused_and_chaining_is_not() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ping"))
        .respond_with(ResponseTemplate::new(200).set_body_string("pong"))
        .mount(&upstream)
        .await;
    let chaining = ChainingApp::new(
        "blocked",
        &["http://hidden.spin.internal", "http://127.0.0.1:*"],
        Some("[outbound_networking]\nblock_networks = [\"private\"]\n"),
    );
    let app = spawn_spec(chaining.spec.clone()).await;
    let refused = outbound_from(&app, "/outbound", &format!("{}/ping", upstream.uri())).await;
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("DestinationIpProhibited"),
        "{refused}"
    );
    assert_eq!(upstream.received_requests().await.unwrap().len(), 0);
    let chained = outbound_from(&app, "/outbound", "http://hidden.spin.internal/probe/empty").await;
    assert_eq!(chained, json!({ "status": 200, "body": "" }));
}

#[tokio::test]
async fn a_cidr_blocks_only_its_own_addresses() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ping"))
        .respond_with(ResponseTemplate::new(200).set_body_string("pong"))
        .mount(&upstream)
        .await;
    let chaining = ChainingApp::new(
        "cidr",
        &["http://127.0.0.1:*", "http://127.0.0.2:*"],
        Some("[outbound_networking]\nblock_networks = [\"10.0.0.0/8\", \"127.0.0.2/32\"]\n"),
    );
    let app = spawn_spec(chaining.spec.clone()).await;
    let port = upstream.address().port();
    let allowed = outbound_from(&app, "/outbound", &format!("http://127.0.0.1:{port}/ping")).await;
    assert_eq!(allowed, json!({ "status": 200, "body": "pong" }));
    let refused = outbound_from(&app, "/outbound", &format!("http://127.0.0.2:{port}/ping")).await;
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("DestinationIpProhibited"),
        "{refused}"
    );
}

// ---- outbound connection pooling ----

/// An HTTP/1.1 upstream on 127.0.0.1 that answers every `GET` with `pong`, keeps connections
/// open, and counts the connections it accepted.
async fn counting_upstream() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\npong";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (port, accepted)
}

/// Spin pools outbound connections across instances (`[outbound_http] connection_pooling`, on
/// when the table is absent): five requests, each from a new instance, reuse a connection (a
/// request that starts while the last one's connection is still on its way back to the pool may
/// open a second); with pooling off, or an `[outbound_http]` table that does not turn it on,
/// each opens its own.
#[tokio::test]
async fn outbound_connections_are_pooled_across_instances_unless_turned_off() {
    for (name, config, pooled) in [
        ("pooled", None, true),
        (
            "unpooled",
            Some("[outbound_http]\nconnection_pooling = false\n"),
            false,
        ),
        (
            "table-without-key",
            Some("[outbound_http]\nmax_connections = 10\n"),
            false,
        ),
    ] {
        let (port, accepted) = counting_upstream().await;
        let chaining = ChainingApp::new(name, &["http://127.0.0.1:*"], config);
        let app = spawn_spec(chaining.spec.clone()).await;
        for _ in 0..5 {
            let answer =
                outbound_from(&app, "/outbound", &format!("http://127.0.0.1:{port}/ping")).await;
            assert_eq!(answer, json!({ "status": 200, "body": "pong" }), "{name}");
        }
        let connections = accepted.load(std::sync::atomic::Ordering::SeqCst);
        if pooled {
            assert!(
                connections <= 2,
                "{name}: {connections} connections for 5 requests"
            );
        } else {
            assert_eq!(connections, 5, "{name}: connections the upstream accepted");
        }
    }
}
