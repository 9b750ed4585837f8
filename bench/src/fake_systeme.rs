//! A fast fake Systeme.io for the "capture with sync" scenario: answers every call at once,
//! keeps no state beyond an id counter (the tests' wiremock fake records everything and is far
//! slower). It also stands in for an IB's alert endpoint (`POST /alert-hook`), counting posts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Posts to `/alert-hook` so far.
static ALERTS: AtomicU64 = AtomicU64::new(0);

/// How many alert deliveries the fake received.
pub fn alerts_received() -> u64 {
    ALERTS.load(Ordering::Relaxed)
}

fn respond(req: &Request<hyper::body::Incoming>, ids: &AtomicU64) -> Response<Full<Bytes>> {
    let json = |status: u16, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    let path = req.uri().path();
    match (req.method().as_str(), path) {
        ("GET", "/api/contacts") => json(200, r#"{"items":[],"hasMore":false}"#.into()),
        ("POST", "/api/contacts") => {
            let id = ids.fetch_add(1, Ordering::Relaxed);
            json(201, format!(r#"{{"id":{id}}}"#))
        }
        ("GET", "/api/tags") => {
            let name = req
                .uri()
                .query()
                .and_then(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == "query")
                        .map(|(_, v)| v.into_owned())
                })
                .unwrap_or_default();
            json(
                200,
                serde_json::json!({"items": [{"id": 7, "name": name}]}).to_string(),
            )
        }
        ("POST", p) if p.ends_with("/tags") => json(204, String::new()),
        ("POST", "/alert-hook") => {
            ALERTS.fetch_add(1, Ordering::Relaxed);
            json(200, "{}".into())
        }
        _ => json(404, "{}".into()),
    }
}

/// Starts the fake on a free port of 127.0.0.1; it runs until the process ends.
pub async fn start() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let ids = Arc::new(AtomicU64::new(1));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let ids = ids.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let resp = respond(&req, &ids);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}
