//! `type = "redis"` key-value stores, with the semantics of Spin's own Redis backend
//! (`spin-key-value-redis`, a `redis::aio::ConnectionManager` made without timeouts):
//!
//! - the store label plays no part in the key: every label on one Redis shares its key space,
//!   which is why the app namespaces its keys itself;
//! - opening a store pings Redis; `get_keys` is `KEYS *`;
//! - **a Redis that cannot be reached stalls the caller, it never fails it**: while Redis is
//!   down (refused, reset, unreachable), `open` and every call wait while the connection is
//!   made again in the background, and complete once Redis answers. A guest cannot put a
//!   timeout on a host call, so under Spin a Redis outage holds every request that opens the
//!   store until Redis is back; the local host does the same so that tests see it;
//! - an error Redis itself answers (a wrong type, a refused command) is `Error::Other(message)`.
//!
//! Reconnecting backs off from 100 ms to 2 s between attempts, and each attempt gives up on a
//! silent address after 1 s, so a call completes within about 2 s of Redis coming back. A
//! Redis that accepts commands and never answers them stalls its callers, as under Spin (no
//! reply timeout).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::bindings::fermyon::spin::key_value::Error;

/// First and longest wait between attempts while Redis cannot be reached.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One `[key_value_store.<label>] type = "redis"` store.
pub struct RedisStore {
    client: redis::Client,
    /// `host:port` (or the socket path), for the log: never the password.
    address: String,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    /// Whether the last attempt found Redis unreachable (logged once per outage).
    down: AtomicBool,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn config() -> ConnectionManagerConfig {
    // One connection attempt per command; the backoff between attempts is `RedisStore::run`'s.
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(None)
        .set_number_of_retries(0)
}

/// Runs a Redis future from the synchronous host bindings on the host's multi-threaded runtime.
fn block<F: Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

/// Whether `error` means Redis could not be reached (so the call waits and tries again), as
/// opposed to an answer from Redis.
fn unreachable(error: &redis::RedisError) -> bool {
    error.is_io_error() || error.is_connection_dropped() || error.is_unrecoverable_error()
}

fn address(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if u.scheme().contains("unix") => u.path().to_string(),
        Ok(u) => format!(
            "{}:{}",
            u.host_str().unwrap_or_default(),
            u.port().unwrap_or(6379)
        ),
        Err(_) => "?".to_string(),
    }
}

impl RedisStore {
    /// Parses the URL (`redis://`, `rediss://`, `redis+unix://`); connects nothing yet.
    pub fn new(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).context("invalid Redis URL")?;
        Ok(Self {
            client,
            address: address(url),
            connection: tokio::sync::OnceCell::new(),
            down: AtomicBool::new(false),
        })
    }

    /// What a component's `open` does: pings Redis, waiting until it answers.
    pub fn open(&self) -> Result<(), Error> {
        self.run::<String>(&redis::cmd("PING")).map(drop)
    }

    /// The connection manager, made on first use; it connects on its first command.
    fn manager(&self) -> Result<ConnectionManager, Error> {
        block(self.connection.get_or_try_init(|| async {
            ConnectionManager::new_lazy_with_config(self.client.clone(), config())
        }))
        .cloned()
        .map_err(|e| Error::Other(e.to_string()))
    }

    /// Runs `cmd`, waiting with a backoff for as long as Redis cannot be reached. Every
    /// command the stores send (`PING`, `GET`, `SET`, `DEL`, `EXISTS`, `KEYS`) gives the same
    /// result when sent again, so one that was cut off with its connection is simply resent.
    fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Error> {
        let mut conn = self.manager()?;
        block(async {
            let mut backoff = MIN_BACKOFF;
            loop {
                match cmd.query_async(&mut conn).await {
                    Ok(value) => {
                        if self.down.swap(false, Ordering::Relaxed) {
                            eprintln!("cfe-host: Redis at {} answers again", self.address);
                        }
                        return Ok(value);
                    }
                    Err(e) if unreachable(&e) => {
                        if !self.down.swap(true, Ordering::Relaxed) {
                            eprintln!(
                                "cfe-host: Redis at {} cannot be reached ({e}); key-value \
                                 calls wait until it is back, as under Spin",
                                self.address
                            );
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                    Err(e) => return Err(Error::Other(e.to_string())),
                }
            }
        })
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.run(redis::cmd("GET").arg(key))
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.run(redis::cmd("SET").arg(key).arg(value))
    }

    pub fn delete(&self, key: &str) -> Result<(), Error> {
        self.run(redis::cmd("DEL").arg(key))
    }

    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        self.run(redis::cmd("EXISTS").arg(key))
    }

    pub fn get_keys(&self) -> Result<Vec<String>, Error> {
        self.run(redis::cmd("KEYS").arg("*"))
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

    #[test]
    fn the_logged_address_never_holds_the_password() {
        let store =
            RedisStore::new("redis://:secret@10.0.0.1:6380/0").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.address, "10.0.0.1:6380");
        assert!(!format!("{store:?}").contains("secret"));
    }

    #[test]
    fn an_unreachable_redis_stalls_open_and_every_call() {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let url = format!("redis://127.0.0.1:{port}");
        for call in ["open", "get", "set"] {
            let (tx, rx) = std::sync::mpsc::channel();
            let url = url.clone();
            // A runtime of its own on a thread that is never joined: the calls never return
            // while nothing listens, and the test process ends with them still waiting.
            std::thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Runtime::new() else {
                    return;
                };
                let answer = runtime.block_on(runtime.spawn(async move {
                    let store = RedisStore::new(&url).map_err(|e| Error::Other(e.to_string()))?;
                    match call {
                        "open" => store.open(),
                        "get" => store.get("k").map(drop),
                        _ => store.set("k", b"v"),
                    }
                }));
                let _ = tx.send(format!("{answer:?}"));
            });
            let waited = rx.recv_timeout(Duration::from_millis(1500));
            assert!(
                waited.is_err(),
                "{call} answered while Redis was unreachable: {waited:?}"
            );
        }
    }
}
