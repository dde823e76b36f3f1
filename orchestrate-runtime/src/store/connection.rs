//! The Redis backend: one connection manager, every command under a timeout.

use super::error::StoreError;
use super::health::{StoreHealth, Tracker, Verdict};
use super::script::Invocation;
use orchestrate_core::policy::StoreSettings;
use orchestrate_core::policy::store::redact;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, Pipeline, RedisError};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// A handle on the Redis store of a runtime: cheap to clone, every clone on the same connection.
///
/// Get it from [`Runtime::store`](crate::Runtime::store) (`Store::Redis(redis)`). Each
/// operation waits at most the command timeout (`[store] command_timeout`, 50 ms by default),
/// connecting included, and fails with a [`StoreError`]; none panics, none waits longer.
/// Operations run inside the application's tokio runtime: the connection, made by the first
/// one, keeps its tasks there.
///
/// ```no_run
/// use orchestrate_runtime::Runtime;
/// use orchestrate_runtime::store::Store;
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = Runtime::builder(&[]).redis_url("redis://127.0.0.1:6379/0").build()?;
/// let Store::Redis(redis) = runtime.store() else { return Ok(()) };
/// let key = redis.key(&["cache", "cart", "c1"]); // "orchestrate:cache:cart:c1"
/// redis.query::<()>(redis::cmd("SET").arg(&key).arg("{}").arg("PX").arg(60_000)).await?;
/// let cached: Option<String> = redis.query(redis::cmd("GET").arg(&key)).await?;
/// # let _ = cached; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
    timeout: Duration,
}

struct Shared {
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// Made on first use (it needs the tokio runtime), dropped when presumed dead.
    manager: RwLock<Option<ConnectionManager>>,
    prefix: Box<str>,
    tracker: Tracker,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target())
            .field("prefix", &self.prefix())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `settings` (whose `redis_url` is set and checked). Connects nothing yet.
    pub(crate) fn open(settings: &StoreSettings, url: &str) -> Result<Self, String> {
        if url.starts_with("rediss://") || url.starts_with("valkeys://") {
            return Err("needs TLS to the store, which this build of orchestrate does not include; use `redis://` \
                 (on a trusted network or through a TLS sidecar)"
                .to_owned());
        }
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let config = ConnectionManagerConfig::new()
            // One connection attempt per reconnection: the store paces its attempts itself
            // (`Tracker::admit`), and redis-rs's own retries would hold every command waiting.
            .set_number_of_retries(0)
            .set_connection_timeout(Some(settings.connect_timeout))
            // Every command is bounded by the store's own timeout, which may differ per handle.
            .set_response_timeout(None);
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                config,
                manager: RwLock::new(None),
                prefix: settings.key_prefix.clone().into_boxed_str(),
                tracker: Tracker::new(redact(url)),
            }),
            timeout: settings.command_timeout,
        })
    }

    /// `parts` joined by `:` after the key prefix: the one way features name their keys, so every
    /// key of an application is under its prefix.
    ///
    /// By convention the first part is the feature's name (`cache`, `rate`, `idempotency`,
    /// `saga`), so features never collide and an operator can `SCAN` one feature's keys. The parts
    /// are written as given: a part that may contain `:` (a value from a request) should be
    /// encoded or hashed by the feature so two different part lists cannot give one key.
    ///
    /// ```no_run
    /// # fn show(redis: &orchestrate_runtime::store::RedisStore) {
    /// assert_eq!(redis.key(&["rate", "user", "u1"]), "orchestrate:rate:user:u1");
    /// # }
    /// ```
    pub fn key(&self, parts: &[&str]) -> String {
        let len = self.shared.prefix.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>();
        let mut key = String::with_capacity(len);
        key.push_str(&self.shared.prefix);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                key.push(':');
            }
            key.push_str(part);
        }
        key
    }

    /// The key prefix (`orchestrate:` by default).
    ///
    /// ```no_run
    /// # fn show(redis: &orchestrate_runtime::store::RedisStore) {
    /// assert!(redis.key(&["x"]).starts_with(redis.prefix()));
    /// # }
    /// ```
    pub fn prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// The server, password hidden.
    ///
    /// ```no_run
    /// # fn show(redis: &orchestrate_runtime::store::RedisStore) {
    /// println!("shared state in {}", redis.target());
    /// # }
    /// ```
    pub fn target(&self) -> &str {
        self.shared.tracker.target()
    }

    /// How long each operation of this handle may take.
    ///
    /// ```no_run
    /// # fn show(redis: &orchestrate_runtime::store::RedisStore) {
    /// assert_eq!(redis.command_timeout(), std::time::Duration::from_millis(50));
    /// # }
    /// ```
    pub fn command_timeout(&self) -> Duration {
        self.timeout
    }

    /// A handle on the same connection whose operations may take `timeout` (at least 1 ms):
    /// for the rare operation a feature can afford to wait longer for (a journal write off the
    /// request's path).
    ///
    /// ```no_run
    /// # fn show(redis: &orchestrate_runtime::store::RedisStore) {
    /// let patient = redis.with_timeout(std::time::Duration::from_millis(500));
    /// assert_eq!(patient.command_timeout().as_millis(), 500);
    /// # }
    /// ```
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self { shared: Arc::clone(&self.shared), timeout: timeout.max(Duration::from_millis(1)) }
    }

    /// Runs one command and converts its answer to `T`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Timeout`] past the command timeout, [`StoreError::Unavailable`] when the
    /// store cannot be reached, [`StoreError::Reply`] when it answers an error or a value that is
    /// not a `T`.
    ///
    /// ```no_run
    /// # async fn run(redis: orchestrate_runtime::store::RedisStore) -> Result<(), orchestrate_runtime::store::StoreError> {
    /// let hits: i64 = redis.query(redis::cmd("INCR").arg(redis.key(&["hits"]))).await?;
    /// # let _ = hits; Ok(()) }
    /// ```
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.run(|| command_name(cmd), |mut manager| async move { cmd.query_async(&mut manager).await }).await
    }

    /// Runs a pipeline (or, with [`Pipeline::atomic`], a `MULTI`/`EXEC` transaction) in one round
    /// trip and converts its answers to `T` (a tuple, one element per command not ignored).
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query); the operation is called `pipeline`.
    ///
    /// ```no_run
    /// # async fn run(redis: orchestrate_runtime::store::RedisStore) -> Result<(), orchestrate_runtime::store::StoreError> {
    /// let key = redis.key(&["hits"]);
    /// let (hits,): (i64,) = redis.pipeline(redis::pipe().incr(&key, 1).pexpire(&key, 60_000).ignore()).await?;
    /// # let _ = hits; Ok(()) }
    /// ```
    pub async fn pipeline<T: FromRedisValue>(&self, pipeline: &Pipeline) -> Result<T, StoreError> {
        self.run(|| "pipeline".to_owned(), |mut manager| async move { pipeline.query_async(&mut manager).await }).await
    }

    /// Runs a [`Script`](super::Script): `EVALSHA`, and on `NOSCRIPT` `SCRIPT LOAD` and `EVALSHA`
    /// again, all within the command timeout.
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query); the operation is called `script:<name>`. An error the script
    /// raises is a [`StoreError::Reply`].
    ///
    /// ```no_run
    /// use orchestrate_runtime::store::Script;
    /// static INCR_TO: Script = Script::new("incr_to", "local n = redis.call('INCR', KEYS[1]) \
    ///     if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n");
    /// # async fn run(redis: orchestrate_runtime::store::RedisStore) -> Result<(), orchestrate_runtime::store::StoreError> {
    /// let n: i64 = redis.invoke(&INCR_TO.key(redis.key(&["hits"])).arg(60_000)).await?;
    /// # let _ = n; Ok(()) }
    /// ```
    pub async fn invoke<T: FromRedisValue>(&self, invocation: &Invocation<'_>) -> Result<T, StoreError> {
        self.run(
            || format!("script:{}", invocation.name()),
            |mut manager| async move { invocation.redis().invoke_async(&mut manager).await },
        )
        .await
    }

    /// `PING`: connects if not connected yet, and tells whether the store answers.
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query).
    ///
    /// ```no_run
    /// # async fn run(redis: orchestrate_runtime::store::RedisStore) {
    /// if let Err(error) = redis.ping().await {
    ///     eprintln!("the shared store is not there yet: {error}");
    /// }
    /// # }
    /// ```
    pub async fn ping(&self) -> Result<(), StoreError> {
        let answer: String = self.query(&redis::cmd("PING")).await?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Reply { operation: "PING".to_owned(), code: None, message: format!("answered `{answer}`") })
        }
    }

    /// The connection's recent state.
    ///
    /// ```no_run
    /// # fn show(redis: &orchestrate_runtime::store::RedisStore) {
    /// let health = redis.health();
    /// println!("{}: {} failures in a row", health.status(), health.consecutive_failures);
    /// # }
    /// ```
    pub fn health(&self) -> StoreHealth {
        self.shared.tracker.health()
    }

    /// Runs `attempt` on the connection under the timeout, with the health bookkeeping.
    async fn run<T, F, Fut>(&self, operation: impl Fn() -> String, attempt: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let tracker = &self.shared.tracker;
        tracker.admit(&operation)?;
        let answer = tokio::time::timeout(self.timeout, async {
            let manager = self.manager()?;
            match attempt(manager.clone()).await {
                // Nothing was sent: the connection redis-rs kept had failed to connect. It has just
                // started a new connection; this waits for that one instead of the next attempt.
                Err(error) if error.is_connection_refusal() => attempt(manager).await,
                other => other,
            }
        })
        .await;
        let error = match answer {
            Ok(Ok(value)) => {
                tracker.succeeded();
                return Ok(value);
            }
            Ok(Err(error)) => StoreError::from_redis(operation(), &error),
            Err(_elapsed) => StoreError::Timeout { operation: operation(), after: self.timeout },
        };
        if tracker.failed(&error) == Verdict::Replace {
            *self.shared.manager.write().unwrap_or_else(PoisonError::into_inner) = None;
        }
        Err(error)
    }

    /// The connection manager, made on first use.
    fn manager(&self) -> Result<ConnectionManager, RedisError> {
        if let Some(manager) = &*self.shared.manager.read().unwrap_or_else(PoisonError::into_inner) {
            return Ok(manager.clone());
        }
        let mut slot = self.shared.manager.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(manager) = &*slot {
            return Ok(manager.clone());
        }
        let manager = ConnectionManager::new_lazy_with_config(self.shared.client.clone(), self.shared.config.clone())?;
        *slot = Some(manager.clone());
        Ok(manager)
    }
}

/// The command's name (its first argument), upper-cased, for metrics and messages.
fn command_name(cmd: &Cmd) -> String {
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) if name.len() <= 32 && name.iter().all(u8::is_ascii_alphabetic) => {
            String::from_utf8_lossy(name).to_ascii_uppercase()
        }
        _ => "command".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(prefix: &str) -> RedisStore {
        let settings = StoreSettings::default().with_key_prefix(prefix);
        RedisStore::open(&settings, "redis://:secret@127.0.0.1:1/0").unwrap()
    }

    #[test]
    fn keys_are_under_the_prefix() {
        assert_eq!(store("orchestrate:").key(&["cache", "cart", "c1"]), "orchestrate:cache:cart:c1");
        assert_eq!(store("").key(&["a"]), "a");
        assert_eq!(store("app:").key(&[]), "app:");
    }

    #[test]
    fn opening_connects_nothing_and_shows_no_password() {
        let redis = store("orchestrate:");
        assert_eq!(redis.target(), "redis://:***@127.0.0.1:1/0");
        assert!(!format!("{redis:?}").contains("secret"));
        assert!(redis.health().available);
    }

    #[test]
    fn tls_urls_are_refused_without_tls() {
        let error = RedisStore::open(&StoreSettings::default(), "rediss://cache:6380").unwrap_err();
        assert!(error.starts_with("needs TLS to the store"), "{error}");
    }

    #[test]
    fn handles_and_their_operations_can_cross_threads() {
        // Handlers served by axum need `Send` futures; features keep handles in shared state.
        fn shared<T: Send + Sync + Clone>(_: &T) {}
        fn sendable<F: std::future::Future + Send>(_: F) {}
        let redis = store("orchestrate:");
        shared(&redis);
        shared(&super::super::Store::Redis(redis.clone()));
        let get = redis::cmd("GET");
        sendable(redis.query::<Option<String>>(&get));
        sendable(redis.pipeline::<()>(&redis::pipe()));
        static NOOP: super::super::Script = super::super::Script::new("noop", "return 0");
        let call = NOOP.prepare();
        sendable(redis.invoke::<i64>(&call));
        sendable(redis.ping());
    }

    #[test]
    fn commands_are_named_by_their_first_word() {
        assert_eq!(command_name(redis::cmd("get").arg("k")), "GET");
        assert_eq!(command_name(&redis::cmd("\u{1}")), "command");
    }
}
