//! The `fermyon:spin` resources a component holds handles to. A leaf module: the generated
//! bindings (`bindings` in lib.rs) name these types, and `state` implements their host traits.

/// An open key-value store: the label is the namespace.
pub struct KvStore {
    pub(crate) label: String,
}

/// One component's connection to one database, as Spin's in-process SQLite has it: the
/// database's file, and a new `rusqlite::Connection` opened at the first statement (see
/// `storage::execute`) and closed when the component drops the handle (at the latest with the
/// instance, after one request), behind a mutex so its statements can run on tokio's blocking
/// pool. Dropping it without `COMMIT` rolls back, as in Spin.
pub struct SqliteConnection {
    pub(crate) path: std::path::PathBuf,
    pub(crate) conn: Option<std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>>,
}
