//! Outbound HTTP as Spin sends it: one pooled client per app, shared by every instance, so a
//! keep-alive connection to a destination serves the requests that follow (Spin's
//! `[outbound_http] connection_pooling`: on without the table, off in a table that omits it).
//!
//! As in Spin, connecting resolves the host, drops the addresses the runtime config's
//! `[outbound_networking] block_networks` lists (and refuses the request when none is left),
//! then connects within the request's `connect_timeout` (TCP only; the TLS handshake is not
//! timed on its own); a request waits at most its `first_byte_timeout` for the response head,
//! which covers connecting when no pooled connection is free, and its body at most
//! `between_bytes_timeout` between frames. A pooled connection is reused without resolving or
//! checking again. Local difference: TLS offers only HTTP/1.1 (Spin also offers h2).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use crate::outbound::BlockedNetworks;

/// wasi-http's default for a timeout the guest leaves unset, as in Spin.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The app's outbound HTTP client.
pub struct OutboundClient {
    client: Client<Connector, WasiBody>,
    blocked: Arc<BlockedNetworks>,
}

/// What the connector needs of the request that opens a connection; a task-local, because the
/// pooled client calls the connector with the URI only (Spin does the same).
#[derive(Clone)]
struct ConnectOptions {
    blocked: Arc<BlockedNetworks>,
    connect_timeout: Duration,
    caller: String,
}

tokio::task_local! {
    static CONNECT: ConnectOptions;
}

impl OutboundClient {
    pub fn new(blocked: Arc<BlockedNetworks>, pooling: bool) -> Self {
        let mut builder = Client::builder(TokioExecutor::new());
        if !pooling {
            builder.pool_max_idle_per_host(0);
        }
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let mut tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = Connector {
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        };
        Self {
            client: builder.build(connector),
            blocked,
        }
    }

    /// Sends `request` for component `caller`, reusing an idle connection to its destination
    /// when the pool holds one.
    pub async fn send(
        &self,
        caller: String,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, Error> {
        let timeout = |pick: fn(&RequestOptions) -> Option<Duration>| {
            options.as_ref().and_then(pick).unwrap_or(DEFAULT_TIMEOUT)
        };
        let connect = ConnectOptions {
            blocked: self.blocked.clone(),
            connect_timeout: timeout(|o| o.connect_timeout),
            caller,
        };
        let between_bytes = timeout(|o| o.between_bytes_timeout).max(Duration::from_nanos(1));
        let response = CONNECT.scope(connect, self.client.request(request));
        let response = tokio::time::timeout(timeout(|o| o.first_byte_timeout), response)
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(|e| request_error(&e))?;
        Ok(response.map(|body| {
            BetweenBytes {
                body,
                timeout: between_bytes,
                sleep: None,
            }
            .boxed_unsync()
        }))
    }
}

/// Why a connection could not be opened; kept `Copy` so it survives the pool's error wrapping.
#[derive(Debug, Clone, Copy, thiserror::Error)]
enum ConnectFailure {
    #[error("every destination address is blocked")]
    Prohibited,
    #[error("the host did not resolve")]
    Dns,
    #[error("connect timed out")]
    Timeout,
    #[error("connection refused")]
    Refused,
    #[error("TLS handshake failed")]
    Tls,
}

impl From<ConnectFailure> for Error {
    fn from(failure: ConnectFailure) -> Self {
        match failure {
            ConnectFailure::Prohibited => Error::DestinationIpProhibited,
            ConnectFailure::Dns => Error::DnsError {
                rcode: Some("address not available".into()),
                info_code: Some(0),
            },
            ConnectFailure::Timeout => Error::ConnectionTimeout,
            ConnectFailure::Refused => Error::ConnectionRefused,
            ConnectFailure::Tls => Error::TlsProtocolError,
        }
    }
}

/// The wasi-http error of a failed request: the connector's reason when there is one.
fn request_error(err: &hyper_util::client::legacy::Error) -> Error {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(failure) = cause.downcast_ref::<ConnectFailure>() {
            return (*failure).into();
        }
        source = cause.source();
    }
    if err.is_connect() {
        Error::ConnectionRefused
    } else {
        Error::HttpProtocolError
    }
}

#[derive(Clone)]
struct Connector {
    tls: tokio_rustls::TlsConnector,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = ConnectFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectFailure>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectFailure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        let options = CONNECT.try_with(ConnectOptions::clone).ok();
        Box::pin(async move {
            let options = options.ok_or(ConnectFailure::Refused)?;
            let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
            let tcp = options
                .connect_tcp(&uri, if https { 443 } else { 80 })
                .await?;
            if !https {
                return Ok(TokioIo::new(Stream::Plain(tcp)));
            }
            let host = uri.host().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let name = rustls::pki_types::ServerName::try_from(host.to_string())
                .map_err(|_| ConnectFailure::Dns)?;
            // As in Spin, `connect_timeout` covers the TCP connect only; the handshake is
            // bounded by the request's `first_byte_timeout`.
            let stream = tls
                .connect(name, tcp)
                .await
                .map_err(|_| ConnectFailure::Tls)?;
            Ok(TokioIo::new(Stream::Tls(Box::new(stream))))
        })
    }
}

impl ConnectOptions {
    async fn connect_tcp(&self, uri: &Uri, default_port: u16) -> Result<TcpStream, ConnectFailure> {
        let host = uri.host().ok_or(ConnectFailure::Dns)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(default_port);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| ConnectFailure::Dns)?
            .collect();
        let (blocked, allowed): (Vec<_>, Vec<_>) = addrs
            .into_iter()
            .partition(|a| self.blocked.is_blocked(a.ip()));
        if allowed.is_empty() && !blocked.is_empty() {
            eprintln!(
                "[{}] outbound request to {uri} refused: every destination IP is prohibited by \
                 the runtime config's block_networks ({blocked:?})",
                self.caller
            );
            return Err(ConnectFailure::Prohibited);
        }
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&*allowed))
            .await
            .map_err(|_| ConnectFailure::Timeout)?
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AddrNotAvailable => ConnectFailure::Dns,
                _ => ConnectFailure::Refused,
            })?;
        // As for inbound connections: a small request goes out at once (no Nagle delay).
        _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// A connection, plain or over TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Plain(tcp) => tcp.connected(),
            Stream::Tls(tls) => tls.get_ref().0.connected(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A response body that fails with `ConnectionReadTimeout` when no frame comes within
/// `timeout`, as wasi-http's `between_bytes_timeout` asks.
struct BetweenBytes {
    body: hyper::body::Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for BetweenBytes {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(Error::from)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
