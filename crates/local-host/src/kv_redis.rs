//! `type = "redis"` key-value stores, with the semantics of Spin's own Redis backend
//! (spin-factor-key-value-redis):
//!
//! - the store label plays no part in the key: every label on one Redis shares its key space,
//!   which is why the app namespaces its keys itself;
//! - the connection is made when a component first opens the store, through a connection
//!   manager that reconnects in the background after a failure;
//! - every Redis failure (unreachable, refused, reset, timed out) is `Error::Other(message)`,
//!   on `open` as on each call; `get_keys` is `KEYS *`.
//!
//! The one deliberate difference is timing: connects and replies are bounded (1 s to connect,
//! one quick reconnect attempt, 2 s per reply) so a component sees a dead Redis in about a
//! second instead of after the client's default backoff of several seconds.

use std::time::Duration;

use anyhow::{Context, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::bindings::fermyon::spin::key_value::Error;

/// One `[key_value_store.<label>] type = "redis"` store.
pub struct RedisStore {
    client: redis::Client,
    connection: tokio::sync::OnceCell<ConnectionManager>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(200))
}

/// Runs a Redis future from the synchronous host bindings on the host's multi-threaded runtime.
fn block<F: Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

fn other(error: &redis::RedisError) -> Error {
    Error::Other(error.to_string())
}

impl RedisStore {
    /// Parses the URL (`redis://`, `rediss://`, `redis+unix://`); connects nothing yet.
    pub fn new(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).context("invalid Redis URL")?;
        Ok(Self {
            client,
            connection: tokio::sync::OnceCell::new(),
        })
    }

    /// The shared connection, made on first use; `Err` while Redis cannot be reached, and
    /// tried again on the next call, as Spin does when a store is opened.
    pub fn connect(&self) -> Result<ConnectionManager, Error> {
        block(
            self.connection
                .get_or_try_init(|| self.client.get_connection_manager_with_config(config())),
        )
        .cloned()
        .map_err(|e| other(&e))
    }

    fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Error> {
        let mut conn = self.connect()?;
        block(cmd.query_async(&mut conn)).map_err(|e| other(&e))
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.query(redis::cmd("GET").arg(key))
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.query(redis::cmd("SET").arg(key).arg(value))
    }

    pub fn delete(&self, key: &str) -> Result<(), Error> {
        self.query(redis::cmd("DEL").arg(key))
    }

    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        self.query(redis::cmd("EXISTS").arg(key))
    }

    pub fn get_keys(&self) -> Result<Vec<String>, Error> {
        self.query(redis::cmd("KEYS").arg("*"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_that_is_not_redis_is_refused_at_start_up() {
        assert!(RedisStore::new("http://127.0.0.1:6379").is_err());
        assert!(RedisStore::new("redis://127.0.0.1:6379").is_ok());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_unreachable_redis_is_other_on_open_and_on_every_call() {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let store =
            RedisStore::new(&format!("redis://127.0.0.1:{port}")).unwrap_or_else(|e| panic!("{e}"));
        let started = std::time::Instant::now();
        assert!(matches!(store.connect(), Err(Error::Other(_))));
        assert!(matches!(store.get("k"), Err(Error::Other(_))));
        assert!(matches!(store.set("k", b"v"), Err(Error::Other(_))));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "failures are quick: {:?}",
            started.elapsed()
        );
    }
}
