//! Test-only probe: a Spin component that reports what it can observe of its host.
//!
//! The conformance suite (`crates/local-host/tests/conformance.rs`) runs it under the local host,
//! or under real Spin with `SPIN_BIN`, and asserts the same answers from both. Every operation
//! answers JSON; host errors are reported with their `Debug` form (for example `AccessDenied`),
//! never trapped.

// `#[http_component]` expands to the component's exported ABI glue, which is `unsafe`.
#![allow(unsafe_code)]
// Indexing serde_json values yields Null instead of panicking; this is test-only code.
#![allow(clippy::indexing_slicing)]

use serde_json::{Value as Json, json};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;
use spin_sdk::sqlite::{Connection, Value};
use std::sync::atomic::{AtomicU32, Ordering};

fn json_response(status: u16, body: &Json) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build()
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

#[http_component]
async fn handle_probe(req: Request) -> anyhow::Result<Response> {
    let path = req.path().to_string();
    let mut segs = segments(&path);
    // `/locked/...` reaches the same code as component `probe-locked`, which declares nothing.
    if segs.first() == Some(&"locked") {
        segs.remove(0);
    }
    match segs.as_slice() {
        ["probe", "empty"] => Ok(Response::new(200, ())),
        ["probe", "setup"] => Ok(setup_insert_table()),
        ["probe", "insert"] => Ok(insert_one()),
        ["probe", "counter"] => Ok(count()),
        ["probe", "t", "select"] => Ok(select_t()),
        ["probe", "t", "insert"] => Ok(insert_t()),
        #[allow(clippy::panic)] // the point of this route: Spin answers a trap with an empty 500
        ["probe", "panic"] => panic!("probe asked to panic"),
        ["probe", "error"] => Err(anyhow::anyhow!("probe error text")),
        ["kv", store, key] => Ok(key_value(&req, store, key)),
        ["kv-keys", store] => Ok(kv_keys(store)),
        ["sqlite", db] => Ok(sqlite(&req, db)),
        ["vars", name] => Ok(variable(name)),
        ["outbound"] => Ok(outbound(&req).await),
        _ => Ok(echo(&req)),
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Counts calls in memory: with a fresh instance per request it always answers 1.
fn count() -> Response {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst) + 1;
    json_response(200, &json!({ "count": n }))
}

/// Echoes the method, path, query and every header, in order, as the component sees them.
fn echo(req: &Request) -> Response {
    let headers: Vec<Json> = req
        .headers()
        .map(|(k, v)| json!([k, v.as_str().unwrap_or("<binary>")]))
        .collect();
    let last = |name: &str| {
        req.header(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    json_response(
        200,
        &json!({
            "method": format!("{:?}", req.method()),
            "path": req.path(),
            "query": req.query(),
            "headers": headers,
            "spin": {
                "full_url": last("spin-full-url"),
                "path_info": last("spin-path-info"),
                "matched_route": last("spin-matched-route"),
                "component_route": last("spin-component-route"),
                "raw_component_route": last("spin-raw-component-route"),
                "base_path": last("spin-base-path"),
                "client_addr": last("spin-client-addr"),
                "item_id": last("spin-path-match-item-id"),
            },
            "body_len": req.body().len(),
        }),
    )
}

fn key_value(req: &Request, label: &str, key: &str) -> Response {
    let store = match Store::open(label) {
        Ok(store) => store,
        Err(e) => return json_response(200, &json!({ "error": format!("{e:?}") })),
    };
    let result = match req.method() {
        Method::Put => store.set(key, req.body()).map(|()| json!({ "ok": true })),
        Method::Delete => store.delete(key).map(|()| json!({ "ok": true })),
        Method::Head => store.exists(key).map(|b| json!({ "exists": b })),
        _ => store.get(key).map(|v| match v {
            Some(bytes) => json!({ "value": String::from_utf8_lossy(&bytes) }),
            None => json!({ "value": null }),
        }),
    };
    json_response(
        200,
        &result.unwrap_or_else(|e| json!({ "error": format!("{e:?}") })),
    )
}

fn kv_keys(label: &str) -> Response {
    let result = Store::open(label).and_then(|s| s.get_keys());
    json_response(
        200,
        &match result {
            Ok(mut keys) => {
                keys.sort();
                json!({ "keys": keys })
            }
            Err(e) => json!({ "error": format!("{e:?}") }),
        },
    )
}

fn to_value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Integer(i64::from(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().unwrap_or_default()),
        },
        Json::String(s) => Value::Text(s.clone()),
        Json::Array(bytes) => Value::Blob(
            bytes
                .iter()
                .filter_map(|b| b.as_u64())
                .map(|b| b as u8)
                .collect(),
        ),
        Json::Object(_) => Value::Null,
    }
}

fn from_value(v: &Value) -> Json {
    match v {
        Value::Integer(i) => json!({ "Integer": i }),
        Value::Real(f) => json!({ "Real": f }),
        Value::Text(t) => json!({ "Text": t }),
        Value::Blob(b) => json!({ "Blob": b }),
        Value::Null => json!("Null"),
    }
}

/// Body: `{"statements": [{"sql": "...", "params": [...]}, ...]}`, run in order on one
/// connection. Stops at the first error.
fn sqlite(req: &Request, db: &str) -> Response {
    let body: Json = serde_json::from_slice(req.body()).unwrap_or(Json::Null);
    let conn = match Connection::open(db) {
        Ok(conn) => conn,
        Err(e) => return json_response(200, &json!({ "error": format!("{e:?}") })),
    };
    let mut results = Vec::new();
    let statements = body["statements"].as_array().cloned().unwrap_or_default();
    for stmt in &statements {
        let sql = stmt["sql"].as_str().unwrap_or_default();
        let params: Vec<Value> = stmt["params"]
            .as_array()
            .map(|ps| ps.iter().map(to_value).collect())
            .unwrap_or_default();
        match conn.execute(sql, &params) {
            Ok(result) => results.push(json!({
                "columns": result.columns,
                "rows": result.rows.iter().map(|r| r.values.iter().map(from_value).collect::<Vec<_>>()).collect::<Vec<_>>(),
            })),
            Err(e) => {
                results.push(json!({ "error": format!("{e:?}") }));
                break;
            }
        }
    }
    json_response(200, &json!({ "results": results }))
}

fn setup_insert_table() -> Response {
    let result = Connection::open_default().and_then(|c| {
        c.execute(
            "CREATE TABLE IF NOT EXISTS probe_inserts (id INTEGER PRIMARY KEY, at TEXT NOT NULL)",
            &[],
        )
    });
    match result {
        Ok(_) => Response::new(200, ()),
        Err(e) => json_response(500, &json!({ "error": format!("{e:?}") })),
    }
}

/// Exactly one SQLite `INSERT`: the storage ceiling of a write path.
fn insert_one() -> Response {
    let result = Connection::open_default().and_then(|c| {
        c.execute(
            "INSERT INTO probe_inserts (at) VALUES (datetime('now'))",
            &[],
        )
    });
    match result {
        Ok(_) => Response::new(201, ()),
        Err(e) => json_response(500, &json!({ "error": format!("{e:?}") })),
    }
}

/// Exactly one SQLite `SELECT` of one row of table `t` (which the bench creates, with row 1):
/// the storage ceiling of a read path on whatever schema the default database holds.
fn select_t() -> Response {
    let result =
        Connection::open_default().and_then(|c| c.execute("SELECT id, v FROM t WHERE id = 1", &[]));
    match result {
        Ok(result) if result.rows.len() == 1 => Response::new(200, ()),
        Ok(result) => json_response(500, &json!({ "rows": result.rows.len() })),
        Err(e) => json_response(500, &json!({ "error": format!("{e:?}") })),
    }
}

/// Exactly one SQLite `INSERT` of one row into table `t`: the storage ceiling of a write path on
/// whatever schema the default database holds.
fn insert_t() -> Response {
    let result =
        Connection::open_default().and_then(|c| c.execute("INSERT INTO t (v) VALUES ('x')", &[]));
    match result {
        Ok(_) => Response::new(201, ()),
        Err(e) => json_response(500, &json!({ "error": format!("{e:?}") })),
    }
}

fn variable(name: &str) -> Response {
    json_response(
        200,
        &match spin_sdk::variables::get(name) {
            Ok(value) => json!({ "value": value }),
            Err(e) => json!({ "error": format!("{e:?}") }),
        },
    )
}

/// Body: the URL to GET. Reports the status, or the error Spin's outbound HTTP gave.
async fn outbound(req: &Request) -> Response {
    let url = String::from_utf8_lossy(req.body()).to_string();
    let result: Result<Response, _> = spin_sdk::http::send(Request::get(url).build()).await;
    json_response(
        200,
        &match result {
            Ok(resp) => {
                json!({ "status": resp.status(), "body": String::from_utf8_lossy(resp.body()) })
            }
            Err(e) => json!({ "error": format!("{e:?}") }),
        },
    )
}
