//! The other origins a landing page lives on: a plain HTTP server on its own 127.0.0.1 port
//! (another origin than the app's; it can also play a capture endpoint that fails), and an
//! HTTPS server for the thank-you page (thank-you URLs must be https), reached through a test
//! host name Chromium maps to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Pages by path, and canned failures; every request's head is recorded.
#[derive(Clone, Default)]
pub struct Site {
    pages: Arc<Mutex<HashMap<String, String>>>,
    failures: Arc<Mutex<HashMap<String, u16>>>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Site {
    pub fn page(&self, path: &str, html: String) {
        self.pages.lock().unwrap().insert(path.to_string(), html);
    }

    /// Every request to `path` gets `status` with a problem+json body (and CORS headers).
    pub fn fail(&self, path: &str, status: u16) {
        self.failures
            .lock()
            .unwrap()
            .insert(path.to_string(), status);
    }

    /// The request lines received so far (`GET /thanks HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.heads
            .lock()
            .unwrap()
            .iter()
            .map(|h| h.lines().next().unwrap_or_default().to_string())
            .collect()
    }

    /// The value of header `name` on each request whose line starts with `start`.
    pub fn header_values(&self, start: &str, name: &str) -> Vec<Option<String>> {
        self.heads
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.starts_with(start))
            .map(|h| header(h, name))
            .collect()
    }

    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(&self, mut stream: S) {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let end = head
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(head.len(), |i| i + 4);
        let text = String::from_utf8_lossy(&head[..end]).into_owned();
        // Read the whole body before answering: closing on unread bytes resets the connection.
        let length: usize = header(&text, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut read = head.len() - end;
        while read < length {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
        self.heads.lock().unwrap().push(text.clone());
        let line = text.lines().next().unwrap_or_default();
        let method = line.split(' ').next().unwrap_or_default();
        let path = line.split(' ').nth(1).unwrap_or("/");
        let path = path.split('?').next().unwrap_or("/");
        let failure = self.failures.lock().unwrap().get(path).copied();
        let page = self.pages.lock().unwrap().get(path).cloned();
        let response = match (failure, page) {
            (Some(_), _) if method == "OPTIONS" => {
                let origin = header(&text, "origin").unwrap_or_default();
                format!(
                    "HTTP/1.1 204 No Content\r\naccess-control-allow-origin: {origin}\r\n\
                     access-control-allow-methods: POST\r\n\
                     access-control-allow-headers: content-type, idempotency-key\r\n\
                     connection: close\r\n\r\n"
                )
            }
            (Some(status), _) => {
                let origin = header(&text, "origin").unwrap_or_default();
                let body = format!(
                    r#"{{"type":"urn:test","title":"Unavailable","status":{status},"detail":"try again","code":"storage_unavailable"}}"#
                );
                format!(
                    "HTTP/1.1 {status} Service Unavailable\r\ncontent-type: application/problem+json\r\n\
                     access-control-allow-origin: {origin}\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                )
            }
            (None, Some(html)) => format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
                 cache-control: no-store\r\nconnection: close\r\n\r\n{html}",
                html.len()
            ),
            (None, None) => {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot found"
                    .to_string()
            }
        };
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}

/// The value of header `name` (case-insensitive) in a request head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

/// A landing-page server on `http://127.0.0.1:<port>`; it stops with the test's runtime.
pub async fn serve_http(site: Site) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let site = site.clone();
            tokio::spawn(async move { site.answer(stream).await });
        }
    });
    origin
}

/// An HTTPS server with a fresh self-signed certificate for `host`; returns its port.
pub async fn serve_https(site: Site, host: &str) -> u16 {
    let certified = rcgen::generate_simple_self_signed(vec![host.to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let site = site.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    site.answer(tls).await;
                }
            });
        }
    });
    port
}
