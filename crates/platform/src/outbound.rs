//! Outbound HTTP over `wasi:http/outgoing-handler` with explicit timeouts.
//!
//! spin-sdk's `send` offers no request options, and Spin's default connect and first-byte
//! timeouts are 600 s (docs/spin-behaviour.md), far too long for a visitor waiting on a form post. This
//! module sets connect, first-byte and between-bytes timeouts through `wasi:http` request
//! options, which both Spin and the local host honour, and blocks on the host's pollables: a
//! component instance serves one request, so there is nothing else to run meanwhile.
//!
//! A request with a body carries `Content-Length` (the body is known up front), so it is never
//! sent chunked: some front ends answer a chunked request with `411 Length Required`.

use std::time::Duration;

use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingResponse, Method, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::streams::StreamError;

/// A buffered response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why no response came back.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("denied by allowed_outbound_hosts")]
    Denied,
    #[error("transport: {0}")]
    Other(String),
}

fn from_code(code: &ErrorCode) -> TransportError {
    match code {
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout => {
            TransportError::Timeout(format!("{code:?}"))
        }
        ErrorCode::HttpRequestDenied => TransportError::Denied,
        other => TransportError::Other(format!("{other:?}")),
    }
}

/// Timeouts for one request.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
}

/// The largest response body read; more is an error, never a trap or an unbounded buffer.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn invalid(what: &str) -> TransportError {
    TransportError::Invalid(what.to_string())
}

/// Blocks this instance for `duration` (e.g. before looking again for something a concurrent
/// request is creating); an instance serves one request, so nothing else waits on it.
pub fn pause(duration: Duration) {
    wasi::clocks::monotonic_clock::subscribe_duration(nanos(duration)).block();
}

/// Sends one request and reads the whole response. `headers` must not name `content-length`:
/// it is set here from `body`.
pub fn send(
    method: &http::Method,
    url: &url::Url,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeouts: Timeouts,
) -> Result<HttpResponse, TransportError> {
    let future = start(method, url, headers, body, timeouts)?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(from_code(&code)),
        Some(Err(())) | None => return Err(TransportError::Other("no response".into())),
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let body = read_body(&response)?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// One `POST` of [`post_all`].
#[derive(Debug)]
pub struct Post<'a> {
    pub url: &'a url::Url,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

/// Sends several `POST`s at once and answers each one's status, in order: they take as long as
/// the slowest, not as long as all of them in turn. Of each body only what has already arrived
/// is read, never waited for (see [`drain_arrived`]).
pub fn post_all(posts: &[Post<'_>], timeouts: Timeouts) -> Vec<Result<u16, TransportError>> {
    let started: Vec<Result<FutureIncomingResponse, TransportError>> = posts
        .iter()
        .map(|p| {
            start(
                &http::Method::POST,
                p.url,
                &p.headers,
                Some(p.body),
                timeouts,
            )
        })
        .collect();
    let mut waiting: Vec<&FutureIncomingResponse> =
        started.iter().filter_map(|s| s.as_ref().ok()).collect();
    while !waiting.is_empty() {
        let pollables: Vec<_> = waiting.iter().map(|f| f.subscribe()).collect();
        let ready = wasi::io::poll::poll(&pollables.iter().collect::<Vec<_>>());
        drop(pollables);
        let mut index: u32 = 0;
        waiting.retain(|_| {
            let keep = !ready.contains(&index);
            index += 1;
            keep
        });
    }
    started
        .into_iter()
        .map(|s| match s?.get() {
            Some(Ok(Ok(response))) => {
                drain_arrived(&response);
                Ok(response.status())
            }
            Some(Ok(Err(code))) => Err(from_code(&code)),
            Some(Err(())) | None => Err(TransportError::Other("no response".into())),
        })
        .collect()
}

/// Reads, without waiting, what has arrived of a response body (at most 16 KiB) and drops the
/// rest. A short answer that came with its head is then read to its end, which lets the host
/// keep the connection for the next request to that destination (Spin pools connections); a
/// slow or long body costs no wait and only its connection.
fn drain_arrived(response: &IncomingResponse) {
    const MOST: usize = 16 * 1024;
    let Ok(incoming) = response.consume() else {
        return;
    };
    let Ok(stream) = incoming.stream() else {
        return;
    };
    let mut read = 0;
    while read < MOST {
        match stream.read((MOST - read) as u64) {
            Ok(bytes) if !bytes.is_empty() => read += bytes.len(),
            _ => return,
        }
    }
}

/// Starts a request: sends its head and body, and answers the response to come.
fn start(
    method: &http::Method,
    url: &url::Url,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeouts: Timeouts,
) -> Result<FutureIncomingResponse, TransportError> {
    let request = outgoing_request(method, url, headers, body.map(<[u8]>::len))?;
    let outgoing_body = request.body().map_err(|()| invalid("body"))?;

    let options = RequestOptions::new();
    // A host that does not support an option refuses it; the request still goes out.
    let _ = options.set_connect_timeout(Some(nanos(timeouts.connect)));
    let _ = options.set_first_byte_timeout(Some(nanos(timeouts.first_byte)));
    let _ = options.set_between_bytes_timeout(Some(nanos(timeouts.between_bytes)));

    let future = outgoing_handler::handle(request, Some(options)).map_err(|e| from_code(&e))?;
    {
        let stream = outgoing_body.write().map_err(|()| invalid("body stream"))?;
        // `blocking-write-and-flush` accepts at most 4096 bytes per call.
        for chunk in body.unwrap_or_default().chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| TransportError::Other(format!("writing the body: {e:?}")))?;
        }
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|e| from_code(&e))?;
    Ok(future)
}

/// The request's method, URL and headers, with `content-length` set from `body_len` (the host
/// then streams exactly that many bytes, with no chunked transfer encoding).
fn outgoing_request(
    method: &http::Method,
    url: &url::Url,
    headers: &[(&str, &str)],
    body_len: Option<usize>,
) -> Result<OutgoingRequest, TransportError> {
    let mut fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
        .map(|(k, v)| ((*k).to_string(), v.as_bytes().to_vec()))
        .collect();
    if let Some(len) = body_len {
        fields.push(("content-length".to_string(), len.to_string().into_bytes()));
    }
    let fields =
        Fields::from_list(&fields).map_err(|e| TransportError::Invalid(format!("{e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let method = match *method {
        http::Method::GET => Method::Get,
        http::Method::POST => Method::Post,
        http::Method::PUT => Method::Put,
        http::Method::DELETE => Method::Delete,
        http::Method::PATCH => Method::Patch,
        _ => return Err(invalid("unsupported method")),
    };
    request
        .set_method(&method)
        .map_err(|()| invalid("method"))?;
    let scheme = match url.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(invalid("scheme")),
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    let authority = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => return Err(invalid("host")),
    };
    request
        .set_authority(Some(&authority))
        .map_err(|()| invalid("authority"))?;
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    request
        .set_path_with_query(Some(&path))
        .map_err(|()| invalid("path"))?;
    Ok(request)
}

/// The whole response body, up to [`MAX_RESPONSE_BYTES`]; a stalled body is a timeout.
fn read_body(response: &IncomingResponse) -> Result<Vec<u8>, TransportError> {
    let incoming = response
        .consume()
        .map_err(|()| TransportError::Other("response body taken".into()))?;
    let stream = incoming
        .stream()
        .map_err(|()| TransportError::Other("response body stream".into()))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(bytes) => {
                body.extend_from_slice(&bytes);
                if body.len() > MAX_RESPONSE_BYTES {
                    return Err(TransportError::Other(format!(
                        "response body over {MAX_RESPONSE_BYTES} bytes"
                    )));
                }
            }
            Err(StreamError::Closed) => return Ok(body),
            Err(StreamError::LastOperationFailed(e)) => {
                let detail = wasi::http::types::http_error_code(&e)
                    .map_or_else(|| e.to_debug_string(), |code| format!("{code:?}"));
                return Err(if detail.contains("Timeout") {
                    TransportError::Timeout(detail)
                } else {
                    TransportError::Other(format!("reading the response: {detail}"))
                });
            }
        }
    }
}
