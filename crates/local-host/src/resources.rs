//! The `fermyon:spin` resources a component holds handles to. A leaf module: the generated
//! bindings (`bindings` in lib.rs) name these types, and `state` implements their host traits.

/// An open key-value store: the label is the namespace.
pub struct KvStore {
    pub(crate) label: String,
}

/// An open SQLite connection; dropping it without `COMMIT` rolls back, as in Spin.
pub struct SqliteConnection {
    pub(crate) conn: crate::storage::LazyConnection,
}
