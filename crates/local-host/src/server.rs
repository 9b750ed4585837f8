//! Loads an application from `spin.toml` and serves it over HTTP/1.1, like `spin up`.
//!
//! Components are compiled once at start-up (with wasmtime's on-disk cache) and pre-linked;
//! every request gets a fresh instance, as in Spin for WASI 0.2 components. A component reaches
//! another one of the app in-process through service chaining (`http://<id>.spin.internal`,
//! see [`Components::chain`]).

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use tokio::net::TcpListener;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::http_client::OutboundClient;
use crate::kv_redis::RedisStore;
use crate::manifest::{Manifest, RouteSpec};
use crate::outbound::{AllowedHost, BlockedNetworks, OutboundPolicy};
use crate::routes::{Route, RouteMatch, Router};
use crate::state::{AppLinks, Chained, ComponentAccess, HostState};
use crate::storage::{self, KeyValueBackend, SqliteBackend};
use crate::variables::AppVariables;

/// What `cfe-host up` was asked to run.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub manifest: PathBuf,
    pub state_dir: PathBuf,
    pub runtime_config: Option<PathBuf>,
    pub variables: Vec<(String, String)>,
    pub cache_dir: Option<PathBuf>,
}

struct LoadedComponent {
    pre: ProxyPre<HostState>,
    access: Arc<ComponentAccess>,
}

/// A loaded application, ready to serve.
pub struct App {
    router: Router,
    components: Arc<Components>,
}

/// The app's compiled components and what their instances share. Every request's outbound
/// hooks hold it, so a component can call another one in-process (service chaining).
pub struct Components {
    engine: Engine,
    loaded: Vec<LoadedComponent>,
    kv: KeyValueBackend,
    sqlite: SqliteBackend,
    outbound: Arc<OutboundClient>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct RuntimeConfig {
    #[serde(default)]
    key_value_store: HashMap<String, StoreConfig>,
    #[serde(default)]
    sqlite_database: HashMap<String, StoreConfig>,
    outbound_networking: Option<OutboundNetworkingConfig>,
    outbound_http: Option<OutboundHttpConfig>,
}

/// `[outbound_http]`, with the keys Spin accepts (and refuses any other, as Spin does). As in
/// Spin, pooling is on when the table is absent, and off in a table that does not turn it on.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboundHttpConfig {
    /// Reuse connections to a destination across requests and instances.
    #[serde(default)]
    connection_pooling: bool,
    /// Spin's cap on concurrent outbound connections (and its older name); accepted, not
    /// enforced locally.
    #[serde(default, rename = "max_connections")]
    _max_connections: Option<usize>,
    #[serde(default, rename = "max_concurrent_requests")]
    _max_concurrent_requests: Option<usize>,
}

/// `[outbound_networking]`, with the keys Spin accepts (and refuses any other, as Spin does).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboundNetworkingConfig {
    #[serde(default)]
    block_networks: Vec<String>,
    /// Spin's caps on concurrent outbound connections; accepted, not enforced locally.
    #[serde(default, rename = "max_socket_connections")]
    _max_socket_connections: Option<usize>,
    #[serde(default, rename = "max_total_connections")]
    _max_total_connections: Option<usize>,
}

#[derive(Debug, serde::Deserialize)]
struct StoreConfig {
    #[serde(rename = "type")]
    kind: String,
    path: Option<PathBuf>,
    url: Option<String>,
}

fn engine(cache_dir: Option<&Path>) -> Result<Engine> {
    let mut config = Config::new();
    if let Some(dir) = cache_dir {
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(Cache::new(cache).map_err(|e| anyhow!("{e}"))?));
    }
    Engine::new(&config).map_err(|e| anyhow!("{e:?}"))
}

/// The key-value labels a component may declare, and the Redis client of each label the runtime
/// config puts on Redis (the rest are local SQLite files).
fn key_value_stores(runtime: &RuntimeConfig) -> Result<(Vec<String>, HashMap<String, RedisStore>)> {
    let mut labels = vec!["default".to_string()];
    let mut redis_stores = HashMap::new();
    for (label, store) in &runtime.key_value_store {
        match store.kind.as_str() {
            "spin" => {}
            // As in Spin: each label gets its own client, and labels on one Redis share its key
            // space (the label is not part of the key).
            "redis" => {
                let url = store.url.as_deref().ok_or_else(|| {
                    anyhow!("key_value_store.{label}: type \"redis\" needs a url")
                })?;
                let redis =
                    RedisStore::new(url).with_context(|| format!("key_value_store.{label}"))?;
                redis_stores.insert(label.clone(), redis);
            }
            other => anyhow::bail!(
                "key_value_store.{label}: type {other:?} is not supported by the local host \
                 (only \"spin\" and \"redis\"); run other backends under real Spin"
            ),
        }
        labels.push(label.clone());
    }
    Ok((labels, redis_stores))
}

/// The file of each SQLite label the runtime config names, under the state directory.
fn sqlite_paths(runtime: &RuntimeConfig, state_dir: &Path) -> Result<HashMap<String, PathBuf>> {
    let mut paths = HashMap::new();
    for (label, db) in &runtime.sqlite_database {
        if db.kind != "spin" {
            anyhow::bail!(
                "sqlite_database.{label}: type {:?} is not supported by the local host \
                 (only \"spin\"); run production backends under real Spin",
                db.kind
            );
        }
        let path = db
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{label}.db")));
        paths.insert(label.clone(), state_dir.join(path));
    }
    Ok(paths)
}

fn read_runtime_config(path: Option<&Path>) -> Result<RuntimeConfig> {
    let Some(path) = path else {
        return Ok(RuntimeConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading runtime config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// WASI, WASI HTTP and the Spin interfaces, as a component sees them under Spin.
fn linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker: Linker<HostState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| anyhow!("{e:?}"))?;
    crate::bindings::Host_::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)
        .map_err(|e| anyhow!("{e:?}"))?;
    Ok(linker)
}

/// The manifest's routes, each pointing at its component's index in the returned ids (each
/// component once, in the order the triggers first name it). A `{ private = true }` trigger
/// adds its component without a route: only service chaining reaches it.
fn routes(manifest: &Manifest) -> Result<(Vec<&String>, Vec<Route>)> {
    let mut ids: Vec<&String> = Vec::new();
    let mut routes = Vec::new();
    for trigger in &manifest.trigger.http {
        let index = match ids.iter().position(|id| **id == trigger.component) {
            Some(i) => i,
            None => {
                ids.push(&trigger.component);
                ids.len() - 1
            }
        };
        match &trigger.route {
            RouteSpec::Path(path) => routes.push(Route::parse(path, index)?),
            RouteSpec::Private(_) => {}
        }
    }
    Ok((ids, routes))
}

/// What the app's components share while one is compiled and linked.
struct Loader<'a> {
    manifest: &'a Manifest,
    vars: &'a AppVariables,
    kv_labels: &'a [String],
    sqlite: &'a SqliteBackend,
    engine: &'a Engine,
    linker: &'a Linker<HostState>,
}

impl Loader<'_> {
    /// Checks what component `id` declares against the runtime config, then compiles and links
    /// it.
    fn component(&self, id: &str) -> Result<LoadedComponent> {
        let spec = self
            .manifest
            .component
            .get(id)
            .ok_or_else(|| anyhow!("no [component.{id}] table"))?;
        let source = self.manifest.source_path(spec);
        if !source.exists() {
            anyhow::bail!(
                "component {id:?}: {} does not exist. Run the build first: \
                 `cargo build --target wasm32-wasip2 --release` (or ./scripts/build)",
                source.display()
            );
        }
        storage::check_labels("key-value store", &spec.key_value_stores, &|l| {
            self.kv_labels.iter().any(|k| k == l)
        })?;
        storage::check_labels("sqlite database", &spec.sqlite_databases, &|l| {
            self.sqlite.knows(l)
        })?;
        let allowed = spec
            .allowed_outbound_hosts
            .iter()
            .map(|entry| {
                let expanded = self.vars.expand(entry)?;
                AllowedHost::parse(&expanded)
                    .with_context(|| format!("component {id:?}: allowed_outbound_hosts"))
            })
            .collect::<Result<Vec<_>>>()?;
        let access = ComponentAccess {
            id: id.to_string(),
            key_value_stores: spec.key_value_stores.iter().cloned().collect(),
            sqlite_databases: spec.sqlite_databases.iter().cloned().collect(),
            variables: self
                .vars
                .component_values(&spec.variables)
                .with_context(|| format!("component {id:?}: variables"))?,
            outbound: OutboundPolicy::new(allowed),
        };
        let started = std::time::Instant::now();
        let component = Component::from_file(self.engine, &source)
            .map_err(|e| anyhow!("{e:?}"))
            .with_context(|| format!("compiling component {id:?} from {}", source.display()))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow!("{e:?}"))
            .with_context(|| {
                format!(
                    "linking component {id:?}: it imports something the local host does not provide"
                )
            })?;
        let pre = ProxyPre::new(pre)
            .map_err(|e| anyhow!("{e:?}"))
            .with_context(|| {
                format!("component {id:?} does not export wasi:http/incoming-handler")
            })?;
        eprintln!("cfe-host: component {id} ready in {:?}", started.elapsed());
        Ok(LoadedComponent {
            pre,
            access: Arc::new(access),
        })
    }
}

impl App {
    /// Reads the manifest, resolves variables, compiles and links every component.
    pub fn load(config: &HostConfig) -> Result<Self> {
        let manifest = Manifest::load(&config.manifest)?;
        let env = |k: &str| std::env::var(k).ok();
        let vars = AppVariables::resolve(&manifest, &config.variables, &env)?;
        let runtime = read_runtime_config(config.runtime_config.as_deref())?;
        let (kv_labels, redis_stores) = key_value_stores(&runtime)?;
        let db_paths = sqlite_paths(&runtime, &config.state_dir)?;
        let blocked_networks = BlockedNetworks::parse(
            &runtime
                .outbound_networking
                .as_ref()
                .map(|o| o.block_networks.clone())
                .unwrap_or_default(),
        )?;

        std::fs::create_dir_all(&config.state_dir)
            .with_context(|| format!("creating state dir {}", config.state_dir.display()))?;
        let kv = KeyValueBackend::open(&config.state_dir, redis_stores)?;
        let sqlite = SqliteBackend::new(&config.state_dir, db_paths);

        let engine = engine(config.cache_dir.as_deref())?;
        let linker = linker(&engine)?;
        let (ids, routes) = routes(&manifest)?;
        let loader = Loader {
            manifest: &manifest,
            vars: &vars,
            kv_labels: &kv_labels,
            sqlite: &sqlite,
            engine: &engine,
            linker: &linker,
        };
        let loaded = ids
            .into_iter()
            .map(|id| loader.component(id))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            router: Router::new(routes),
            components: Arc::new(Components {
                engine,
                loaded,
                kv,
                sqlite,
                outbound: Arc::new(OutboundClient::new(
                    Arc::new(blocked_networks),
                    runtime
                        .outbound_http
                        .as_ref()
                        .is_none_or(|o| o.connection_pooling),
                )),
            }),
        })
    }

    /// Serves requests until the listener fails.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> Result<()> {
        loop {
            let (stream, client) = listener.accept().await?;
            // As Spin's HTTP trigger does: a small answer goes out at once instead of waiting
            // for the client's delayed ACK (Nagle), about 40 ms on a lone request.
            if let Err(e) = stream.set_nodelay(true) {
                eprintln!("cfe-host: connection from {client}: TCP_NODELAY: {e}");
            }
            let app = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, std::convert::Infallible>(app.handle(req, client).await) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    eprintln!("cfe-host: connection from {client}: {e}");
                }
            });
        }
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let path = req.uri().path().to_string();
        if path == "/.well-known/spin/health" {
            return plain(StatusCode::OK, "OK");
        }
        let Some(matched) = self.router.route(&path) else {
            return plain(StatusCode::NOT_FOUND, "");
        };
        let req = req.map(|body| body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync());
        let req = with_spin_headers(req, &matched, client, true);
        self.components.respond(matched.target, req).await
    }
}

/// The client address Spin gives a chained request (`spin-client-addr`).
const CHAINED_CLIENT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

impl AppLinks for Components {
    fn chain(
        self: Arc<Self>,
        caller: String,
        target: String,
        request: Request<WasiBody>,
    ) -> Chained {
        Box::pin(async move { self.chain_to(&caller, &target, request).await })
    }

    fn outbound_client(&self) -> Arc<OutboundClient> {
        self.outbound.clone()
    }
}

impl Components {
    /// Service chaining: hands an allowed outbound request to `http://<target>.spin.internal` to
    /// component `target`, in-process, as Spin does: whatever the target's routes (a private one
    /// included), with the path as given and the headers of a synthetic `/...` match. The
    /// target's failures are its own `500`, as for a public request; an id the app does not
    /// route to is an error for the caller.
    async fn chain_to(
        self: Arc<Self>,
        caller: &str,
        target: &str,
        mut req: Request<WasiBody>,
    ) -> Result<Response<WasiBody>, wasmtime_wasi_http::Error> {
        let Some(index) = self.loaded.iter().position(|c| c.access.id == target) else {
            eprintln!(
                "[{caller}] outbound request to {}: no component {target:?} with an HTTP trigger \
                 in this app",
                req.uri()
            );
            return Err(wasmtime_wasi_http::Error::InternalError(Some(format!(
                "unknown routing destination '{target}'"
            ))));
        };
        // Spin drops the outgoing Host header before chaining, so the target builds
        // `spin-full-url` from `localhost`.
        req.headers_mut().remove(http::header::HOST);
        let matched = RouteMatch {
            target: index,
            raw_route: "/...".into(),
            component_route: String::new(),
            path_info: req.uri().path().to_string(),
            params: Vec::new(),
        };
        let req = with_spin_headers(req, &matched, CHAINED_CLIENT_ADDR, false);
        Ok(self.respond(index, req).await)
    }

    /// Runs component `index` on a request that already carries its `spin-*` headers; a
    /// failure is an empty `500`, as Spin answers.
    async fn respond(
        self: &Arc<Self>,
        index: usize,
        req: Request<WasiBody>,
    ) -> Response<HyperOutgoingBody> {
        let Some(component) = self.loaded.get(index) else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "");
        };
        match self.call(component, req).await {
            Ok(resp) => resp,
            Err(e) => {
                eprintln!("[{}] request failed: {e:#}", component.access.id);
                plain(StatusCode::INTERNAL_SERVER_ERROR, "")
            }
        }
    }

    /// A fresh instance of `component` handles `req`. Returns as soon as the component sets
    /// its response; the instance keeps running (streaming the body, or finishing its work)
    /// on its own task.
    async fn call(
        self: &Arc<Self>,
        component: &LoadedComponent,
        req: Request<WasiBody>,
    ) -> Result<Response<HyperOutgoingBody>> {
        let id = component.access.id.clone();
        let wasi = WasiCtx::builder()
            .stdout(LogStream::new(&id))
            .stderr(LogStream::new(&id))
            .build();
        let state = HostState::new(
            wasi,
            component.access.clone(),
            self.kv.clone(),
            self.sqlite.clone(),
            self.clone(),
        );
        let mut store = Store::new(&self.engine, state);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
            .map_err(|e| anyhow!("{e:?}"))?;
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(|e| anyhow!("{e:?}"))?;
        let pre = component.pre.clone();
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        });
        match receiver.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => Err(anyhow!("component answered with error code {code:?}")),
            Err(_) => {
                let why = match task.await {
                    Ok(Ok(())) => anyhow!("component never set a response"),
                    Ok(Err(e)) => anyhow!("component trapped: {e:?}"),
                    Err(e) => anyhow!("component task failed: {e}"),
                };
                Err(why)
            }
        }
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<HyperOutgoingBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp
}

/// Appends Spin's `spin-*` headers after whatever the client sent, as Spin does: spin-sdk keeps
/// the last value, so a component sees the host's. `add_host` gives a request without a `Host`
/// header one (public requests); a chained request has none, as under Spin.
fn with_spin_headers<B>(
    mut req: Request<B>,
    matched: &RouteMatch,
    client: SocketAddr,
    add_host: bool,
) -> Request<B> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let has_host = req.headers().contains_key(http::header::HOST);
    let mut add = |name: String, value: String| {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name),
            HeaderValue::try_from(value),
        ) {
            req.headers_mut().append(name, value);
        }
    };
    add(
        "spin-full-url".into(),
        format!("http://{host}{path_and_query}"),
    );
    add("spin-path-info".into(), matched.path_info.clone());
    add("spin-matched-route".into(), matched.raw_route.clone());
    add("spin-raw-component-route".into(), matched.raw_route.clone());
    add(
        "spin-component-route".into(),
        matched.component_route.clone(),
    );
    add("spin-base-path".into(), "/".into());
    add("spin-client-addr".into(), client.to_string());
    for (name, value) in &matched.params {
        add(
            format!("spin-path-match-{}", name.replace('_', "-")),
            value.clone(),
        );
    }
    if add_host && !has_host {
        add("host".into(), host);
    }
    req
}

/// Component stdout/stderr, written to the host's stderr a line at a time, prefixed with the
/// component id.
#[derive(Clone)]
struct LogStream {
    prefix: Arc<str>,
}

impl LogStream {
    fn new(id: &str) -> Self {
        Self {
            prefix: Arc::from(format!("[{id}] ")),
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            prefix: self.prefix.clone(),
            buf: Vec::new(),
        })
    }
}

struct LineWriter {
    prefix: Arc<str>,
    buf: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self, all: bool) {
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            eprint!("{}{}", self.prefix, String::from_utf8_lossy(&line));
        }
        if all && !self.buf.is_empty() {
            eprintln!("{}{}", self.prefix, String::from_utf8_lossy(&self.buf));
            self.buf.clear();
        }
    }
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.buf.extend_from_slice(data);
        self.emit(false);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.emit(false);
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.emit(true);
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.emit(true);
    }
}
