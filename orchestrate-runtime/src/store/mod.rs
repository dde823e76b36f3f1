//! The shared store: the one connection to the state that several instances of an application
//! share, for the features that keep such state (the response cache, rate limits, idempotency
//! records, the saga journal).
//!
//! This module is the connection, not the data: each feature owns its module, its key layout and
//! its in-memory implementation, and reaches Redis only through the [`RedisStore`] it finds in
//! [`Runtime::store`](crate::Runtime::store). None opens a connection of its own.
//!
//! # Two backends
//!
//! - [`Store::Memory`], the default: no Redis; every feature uses its in-memory implementation
//!   (state per instance).
//! - [`Store::Redis`], when a Redis URL is configured (`ORCHESTRATE_REDIS_URL`, `[store] redis_url`
//!   in the configuration file, or [`RuntimeBuilder::redis_url`](crate::RuntimeBuilder::redis_url),
//!   strongest first; see [`config`](crate::config)).
//!
//! ```
//! use orchestrate_runtime::Runtime;
//! use orchestrate_runtime::store::{Backend, Store};
//! let runtime = Runtime::builder(&[]).read_env(false).build().unwrap();
//! assert!(matches!(runtime.store(), Store::Memory));
//! let runtime = Runtime::builder(&[]).read_env(false).redis_url("redis://127.0.0.1:6379/0").build().unwrap();
//! assert_eq!(runtime.store().backend(), Backend::Redis); // nothing connected yet
//! ```
//!
//! A feature picks its implementation once, when it is set up:
//!
//! ```
//! use orchestrate_runtime::store::{RedisStore, Store};
//! enum Counters {
//!     Local(std::sync::Mutex<std::collections::HashMap<String, i64>>),
//!     Shared(RedisStore),
//! }
//! fn counters(store: &Store) -> Counters {
//!     match store {
//!         Store::Redis(redis) => Counters::Shared(redis.clone()),
//!         _ => Counters::Local(Default::default()),
//!     }
//! }
//! # let _ = counters(&Store::Memory);
//! ```
//!
//! # One connection, timeouts everywhere
//!
//! A runtime has one [`redis::aio::ConnectionManager`] (a multiplexed connection that reconnects
//! by itself), made on first use, so building a runtime never connects and never waits: a wrong or
//! unreachable URL makes operations fail, not start-up. Every operation — a command
//! ([`RedisStore::query`]), a pipeline ([`RedisStore::pipeline`]) or a Lua [`Script`]
//! ([`RedisStore::invoke`], loaded once per server by `EVALSHA` with `SCRIPT LOAD` on `NOSCRIPT`)
//! — waits at most the command timeout (`command_timeout`, 50 ms by default), connecting
//! included, and ends in a [`StoreError`] of one of three kinds: timeout, unavailable, reply.
//! redis-rs can hang on a connect (redis-rs#392) and keep a dead connection after an idle period
//! (#1415), so nothing relies on its own timeouts.
//!
//! While the store is down, operations fail at once instead of each waiting: after a failed
//! attempt the next one is made only after a pause (100 ms, doubling up to 2 s), and the
//! operations in between fail with [`StoreError::Unavailable`] without touching the network. A
//! connection that times out three times in a row is presumed dead (a server that vanished
//! without a reset never makes it fail) and replaced. The same handle recovers by itself when the
//! server is back.
//!
//! # Degradation is the feature's choice
//!
//! A store failure is never a 5xx by itself: the feature decides what it means (the cache
//! answers a miss, a rate limit falls back to the local limiter, a journal write is retried). The
//! store tells what happened; [`/health`](crate::ops::health) shows it under `store` and reports
//! the application `degraded`, never unavailable, because of it.
//!
//! The operations take redis-rs's own [`Cmd`](redis::Cmd), [`Pipeline`](redis::Pipeline) and
//! [`FromRedisValue`](redis::FromRedisValue). The crate is not re-exported: its public names
//! (`ValueType::String`, `ValueType::None`, ..) would make rustc spell `std::string::String` and
//! `Option::None` in full in the compile errors of every application. Code outside the runtime
//! that calls a [`RedisStore`] depends on the same `redis` version itself.
//!
//! # What operators see
//!
//! `orchestrate_store_errors_total{operation, kind}` counts failed operations (see
//! [`telemetry::metrics`](crate::telemetry::metrics)); the log has one `warn` line when the
//! store starts failing and one when it answers again, not one per failure; [`Store::health`]
//! (and `/health`) gives the failures in a row and the last error.

mod connection;
mod error;
mod health;
mod script;

pub use connection::RedisStore;
pub use error::{StoreError, StoreErrorKind};
pub use health::{Backend, LastError, StoreHealth};
pub use orchestrate_core::policy::StoreSettings;
pub use script::{Invocation, Script};

/// Where the runtime's shared state lives: cheap to clone.
///
/// ```
/// use orchestrate_runtime::store::Store;
/// assert_eq!(Store::default().backend().as_str(), "memory");
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Store {
    /// In memory: each feature uses its in-memory implementation.
    #[default]
    Memory,
    /// Redis, shared by every instance.
    Redis(RedisStore),
}

impl Store {
    /// The store `settings` describe: Redis when they have a URL (checked by
    /// [`StoreSettings::problems`] first), else memory. Connects nothing.
    pub(crate) fn open(settings: &StoreSettings) -> Result<Self, String> {
        match &settings.redis_url {
            None => Ok(Self::Memory),
            Some(url) => RedisStore::open(settings, url).map(Self::Redis),
        }
    }

    /// Where the state lives.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::store::Store::Memory.backend(), orchestrate_runtime::store::Backend::Memory);
    /// ```
    pub fn backend(&self) -> Backend {
        match self {
            Self::Memory => Backend::Memory,
            Self::Redis(_) => Backend::Redis,
        }
    }

    /// The Redis store, if that is the backend.
    ///
    /// ```
    /// assert!(orchestrate_runtime::store::Store::Memory.redis().is_none());
    /// ```
    pub fn redis(&self) -> Option<&RedisStore> {
        match self {
            Self::Redis(redis) => Some(redis),
            Self::Memory => None,
        }
    }

    /// The store's recent state (always available in memory).
    ///
    /// ```
    /// assert!(orchestrate_runtime::store::Store::Memory.health().available);
    /// ```
    pub fn health(&self) -> StoreHealth {
        match self {
            Self::Memory => StoreHealth::memory(),
            Self::Redis(redis) => redis.health(),
        }
    }

    /// Checks that the store answers (`PING`; nothing to check in memory). Call it at start-up
    /// to connect before the first request and log an unreachable store early; `/health` calls
    /// it on each request.
    ///
    /// # Errors
    ///
    /// As [`RedisStore::ping`].
    ///
    /// ```no_run
    /// # async fn run(runtime: orchestrate_runtime::Runtime) {
    /// if let Err(error) = runtime.store().ping().await {
    ///     tracing::warn!("starting without the shared store: {error}");
    /// }
    /// # }
    /// ```
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Memory => Ok(()),
            Self::Redis(redis) => redis.ping().await,
        }
    }
}
