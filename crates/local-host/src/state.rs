//! Per-request store data: WASI, WASI HTTP, and the `fermyon:spin` host interfaces.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::fermyon::spin::{key_value, sqlite, variables};
use crate::http_client::OutboundClient;
use crate::outbound::{OutboundPolicy, service_chaining_target};
use crate::resources::{KvStore, SqliteConnection};
use crate::storage::{self, KeyValueBackend, SqliteBackend};

/// An outbound request's answer, to come (from another component, or over the network).
pub type Chained = std::pin::Pin<
    Box<
        dyn Future<
                Output = Result<
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    >,
>;

/// What a request's outbound HTTP needs of the app it runs in: the other components, for
/// service chaining, and the app's pooled client for everything else. The server implements
/// it, so this module does not depend on the server's.
pub trait AppLinks: Send + Sync {
    /// Hands `request`, sent by component `caller`, to component `target` in-process.
    fn chain(
        self: Arc<Self>,
        caller: String,
        target: String,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
    ) -> Chained;

    /// The app's outbound HTTP client: pooled connections, and the runtime config's
    /// `[outbound_networking] block_networks`.
    fn outbound_client(&self) -> Arc<OutboundClient>;
}

/// What one component may reach; built once at start-up.
#[derive(Debug)]
pub struct ComponentAccess {
    pub id: String,
    pub key_value_stores: HashSet<String>,
    pub sqlite_databases: HashSet<String>,
    pub variables: HashMap<String, String>,
    pub outbound: OutboundPolicy,
}

/// Outbound HTTP hooks, in Spin's order: `allowed_outbound_hosts` first; then a request to
/// `<id>.spin.internal` goes to component `<id>` in-process (service chaining); anything else
/// leaves over the network through the app's pooled client (`http_client`), which refuses a host
/// whose every address is in the runtime config's `block_networks`.
pub struct OutboundHooks {
    access: Arc<ComponentAccess>,
    app: Arc<dyn AppLinks>,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                ),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

impl wasmtime_wasi_http::WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendFuture {
        _ = fut;
        if !self.access.outbound.allows(request.uri()) {
            eprintln!(
                "[{}] outbound request to {} denied: not in allowed_outbound_hosts",
                self.access.id,
                request.uri()
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let caller = self.access.id.clone();
        let response: Chained = match service_chaining_target(request.uri()) {
            Some(target) => {
                let target = target.to_string();
                self.app.clone().chain(caller, target, request)
            }
            None => {
                let client = self.app.outbound_client();
                Box::pin(async move { client.send(caller, request, options).await })
            }
        };
        Box::new(async move {
            // Connection errors surface through the response and its body, as in Spin.
            let done: Box<dyn Future<Output = _> + Send> = Box::new(async { Ok(()) });
            Ok((response.await?, done))
        })
    }
}

/// The `T` of `Store<T>` for one request.
pub struct HostState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub hooks: OutboundHooks,
    pub access: Arc<ComponentAccess>,
    pub kv: KeyValueBackend,
    pub sqlite: SqliteBackend,
}

impl HostState {
    pub fn new(
        wasi: WasiCtx,
        access: Arc<ComponentAccess>,
        kv: KeyValueBackend,
        sqlite: SqliteBackend,
        app: Arc<dyn AppLinks>,
    ) -> Self {
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks {
                access: access.clone(),
                app,
            },
            access,
            kv,
            sqlite,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl key_value::Host for HostState {}

impl key_value::HostStore for HostState {
    fn open(&mut self, label: String) -> Result<Resource<KvStore>, key_value::Error> {
        if !self.access.key_value_stores.contains(&label) {
            return Err(key_value::Error::AccessDenied);
        }
        self.kv.open_store(&label)?;
        self.table
            .push(KvStore { label })
            .map_err(|_| key_value::Error::StoreTableFull)
    }

    fn get(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> Result<Option<Vec<u8>>, key_value::Error> {
        let label = self.kv_label(&store)?;
        self.kv.get(&label, &key)
    }

    fn set(
        &mut self,
        store: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), key_value::Error> {
        let label = self.kv_label(&store)?;
        self.kv.set(&label, &key, &value)
    }

    fn delete(&mut self, store: Resource<KvStore>, key: String) -> Result<(), key_value::Error> {
        let label = self.kv_label(&store)?;
        self.kv.delete(&label, &key)
    }

    fn exists(&mut self, store: Resource<KvStore>, key: String) -> Result<bool, key_value::Error> {
        let label = self.kv_label(&store)?;
        self.kv.exists(&label, &key)
    }

    fn get_keys(&mut self, store: Resource<KvStore>) -> Result<Vec<String>, key_value::Error> {
        let label = self.kv_label(&store)?;
        self.kv.get_keys(&label)
    }

    fn drop(&mut self, store: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl HostState {
    fn kv_label(&self, store: &Resource<KvStore>) -> Result<String, key_value::Error> {
        self.table
            .get(store)
            .map(|s| s.label.clone())
            .map_err(|e| key_value::Error::Other(e.to_string()))
    }
}

impl sqlite::Host for HostState {}

impl sqlite::HostConnection for HostState {
    async fn open(
        &mut self,
        database: String,
    ) -> Result<Resource<SqliteConnection>, sqlite::Error> {
        if !self.access.sqlite_databases.contains(&database) {
            return Err(sqlite::Error::AccessDenied);
        }
        let conn = self.sqlite.open(&database).await?;
        self.table
            .push(conn)
            .map_err(|e| sqlite::Error::Io(e.to_string()))
    }

    async fn execute(
        &mut self,
        conn: Resource<SqliteConnection>,
        statement: String,
        parameters: Vec<sqlite::Value>,
    ) -> Result<sqlite::QueryResult, sqlite::Error> {
        let conn = self
            .table
            .get_mut(&conn)
            .map_err(|_| sqlite::Error::InvalidConnection)?;
        storage::execute_on(conn, statement, parameters).await
    }

    async fn drop(&mut self, conn: Resource<SqliteConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl variables::Host for HostState {
    fn get(&mut self, name: String) -> Result<String, variables::Error> {
        if let Err(e) = crate::manifest::check_name(&name) {
            return Err(variables::Error::InvalidName(e.to_string()));
        }
        self.access.variables.get(&name).cloned().ok_or_else(|| {
            variables::Error::Undefined(format!("no variable for {:?}.{:?}", self.access.id, name))
        })
    }
}
