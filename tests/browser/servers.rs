//! The other origins a landing page lives on: a plain HTTP server on its own 127.0.0.1 port
//! (another origin than the app's), and an HTTPS server for the thank-you page (thank-you URLs
//! must be https), reached through a test host name Chromium maps to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Pages by path; every request's path is recorded.
#[derive(Clone, Default)]
pub struct Site {
    pages: Arc<Mutex<HashMap<String, String>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Site {
    pub fn page(&self, path: &str, html: String) {
        self.pages.lock().unwrap().insert(path.to_string(), html);
    }

    /// The request lines received so far (`GET /thanks HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
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
        let head = String::from_utf8_lossy(&head);
        let line = head.lines().next().unwrap_or_default().to_string();
        self.requests.lock().unwrap().push(line.clone());
        let path = line.split(' ').nth(1).unwrap_or("/");
        let path = path.split('?').next().unwrap_or("/");
        let page = self.pages.lock().unwrap().get(path).cloned();
        let (status, body) = match page {
            Some(html) => ("200 OK", html),
            None => ("404 Not Found", "not found".to_string()),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
             cache-control: no-store\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
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
