//! Response caches: the answers of calls that declare `cache(..)` and the assembled answers of
//! endpoints that do, with stale-while-revalidate, stale-if-error, single-flight fills and
//! invalidation by key and by tag.
//!
//! - **Fresh** (younger than `ttl`): the stored answer, no request.
//! - **Stale** (within `stale` after that): the stored answer at once, and one refresh in the
//!   background (a task of its own, so it outlives the request that started it). When the refresh
//!   fails — an error, a timeout, an open breaker — the stored answer keeps answering until `stale`
//!   ends.
//! - **Missing**: one fill per key at a time (*single-flight*): concurrent identical calls wait for
//!   the same request, a task of its own too, so that the first caller going away strands nobody.
//!   Only successful answers are stored.
//!
//! Entries live in memory (moka, bounded by `capacity` bytes) by default, and in the shared
//! store when one is configured (`[store]`, `ORCHESTRATE_REDIS_URL`; see [`crate::store`]): then
//! an entry one instance filled is a hit on every other, and an invalidation reaches them all
//! (layout and clock handling in the `shared` module). `[cache] shared = false` keeps entries
//! in each instance's memory even so. Keys are digests (see [`Key`]); tags are the strings the
//! code gives. [`Cache::invalidate_tags`] and [`Cache::invalidate_keys`] drop entries, from code
//! or through `POST /_orchestrate/cache/invalidate` on the operations router.
//!
//! A store that fails or is slow (each operation has the store's timeout) makes a lookup a miss
//! (`result="error"` in `orchestrate_cache_requests_total`, and the store's own error metric) and
//! a write a lost write: never a failed request. Only invalidation reports the failure, so that
//! whoever asked for it can ask again.
//!
//! Single-flight holds within one instance: concurrent identical calls of one instance make one
//! request; instances sharing a store may each make theirs once when an entry is missing.

mod key;
mod memory;
mod shared;

pub use key::Key;
pub use orchestrate_core::policy::CacheSettings;

use crate::error::{CallError, CallErrorKind};
use crate::service::CachePolicy;
use crate::store::{Store, StoreError};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use memory::Memory;
use shared::Shared;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Default capacity of the in-memory cache: 64 MiB of answers.
pub const DEFAULT_CAPACITY: u64 = orchestrate_core::policy::cache::DEFAULT_CAPACITY;

/// A stored answer.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    /// The answer's body (JSON).
    pub(crate) body: Bytes,
    /// A digest of the body, for `ETag`.
    pub(crate) etag: u64,
    /// When it was stored, on tokio's clock.
    pub(crate) stored: Instant,
    pub(crate) policy: CachePolicy,
    pub(crate) tags: Vec<String>,
}

/// How fresh a stored answer is at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    Fresh,
    Stale,
    Expired,
}

impl Stored {
    pub(crate) fn new(body: Bytes, policy: CachePolicy, tags: Vec<String>) -> Self {
        let etag = etag_of(&body);
        Self { body, etag, stored: Instant::now(), policy, tags }
    }

    pub(crate) fn freshness(&self, now: Instant) -> Freshness {
        let age = now.saturating_duration_since(self.stored);
        if age < self.policy.ttl {
            Freshness::Fresh
        } else if age < self.policy.horizon() {
            Freshness::Stale
        } else {
            Freshness::Expired
        }
    }

    /// Seconds since it was stored, for `Age`.
    pub(crate) fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.stored)
    }

    /// The quoted strong entity tag of the body.
    pub(crate) fn etag_header(&self) -> HeaderValue {
        etag_value(self.etag)
    }
}

/// A 64-bit digest of a body (the first bytes of its SHA-256).
pub(crate) fn etag_of(body: &[u8]) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(body);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// `"<16 hex digits>"`.
pub(crate) fn etag_value(etag: u64) -> HeaderValue {
    // Hex digits and quotes are always a valid header value.
    HeaderValue::from_str(&format!("\"{etag:016x}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// How a call's fill ended, as every caller waiting for it sees it.
#[derive(Debug, Clone)]
pub(crate) enum Filled {
    /// The service answered: the body and how many attempts it took.
    Answered { body: Bytes, attempts: u32, status: Option<u16> },
    /// It failed.
    Failed { kind: CallErrorKind, status: Option<StatusCode>, retry_after: Option<HeaderValue>, attempts: u32 },
}

impl Filled {
    /// The failure again, for one more caller.
    pub(crate) fn error(
        kind: CallErrorKind,
        status: Option<StatusCode>,
        retry_after: &Option<HeaderValue>,
    ) -> CallError {
        match status {
            Some(status) => CallError::status(status, retry_after.clone()),
            None => CallError::new(kind),
        }
    }
}

/// Taking part in the fill of a key.
pub(crate) enum Flight {
    /// Nobody was filling it: the caller must, and report through the sender.
    Lead(watch::Sender<Option<Filled>>),
    /// Someone is: wait for the answer.
    Follow(watch::Receiver<Option<Filled>>),
}

/// The response cache of a runtime. Cheap to clone.
///
/// ```
/// # async fn run() {
/// use orchestrate_runtime::{Runtime, ServiceSpec};
/// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("profile", "http://127.0.0.1:9")];
/// let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
/// // A "user updated" webhook drops that user's entries.
/// let dropped = runtime.cache().invalidate_tags(&["user:u1"]).await;
/// assert_eq!(dropped.unwrap(), 0);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    flights: Mutex<HashMap<Key, watch::Receiver<Option<Filled>>>>,
}

#[derive(Debug)]
enum Backend {
    Memory(Memory),
    Shared(Shared),
}

impl Default for Cache {
    fn default() -> Self {
        Self::in_memory(DEFAULT_CAPACITY)
    }
}

impl Cache {
    /// A cache in memory, holding at most `capacity` bytes of answers.
    ///
    /// ```
    /// let cache = orchestrate_runtime::cache::Cache::in_memory(8 << 20);
    /// assert_eq!(cache.memory_bytes(), 0);
    /// ```
    pub fn in_memory(capacity: u64) -> Self {
        Self::with(Backend::Memory(Memory::new(capacity)))
    }

    /// The cache `settings` ask for over `store`: in the shared store when it is Redis and the
    /// settings share, else in memory.
    ///
    /// ```
    /// use orchestrate_runtime::cache::{Cache, CacheSettings};
    /// use orchestrate_runtime::store::Store;
    /// let cache = Cache::new(CacheSettings::DEFAULT, &Store::Memory);
    /// assert!(!cache.is_shared());
    /// ```
    pub fn new(settings: CacheSettings, store: &Store) -> Self {
        match store {
            Store::Redis(redis) if settings.shared => Self::with(Backend::Shared(Shared::new(redis.clone()))),
            _ => Self::in_memory(settings.capacity),
        }
    }

    fn with(backend: Backend) -> Self {
        Self { inner: Arc::new(Inner { backend, flights: Mutex::default() }) }
    }

    /// Whether entries live in the shared store (every instance sees them).
    ///
    /// ```
    /// assert!(!orchestrate_runtime::cache::Cache::in_memory(1 << 20).is_shared());
    /// ```
    pub fn is_shared(&self) -> bool {
        matches!(self.inner.backend, Backend::Shared(_))
    }

    fn flights(&self) -> MutexGuard<'_, HashMap<Key, watch::Receiver<Option<Filled>>>> {
        self.inner.flights.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The entry stored under `key`, if any.
    pub(crate) async fn get(&self, key: &Key) -> Result<Option<Arc<Stored>>, StoreError> {
        match &self.inner.backend {
            Backend::Memory(memory) => Ok(memory.get(key)),
            Backend::Shared(shared) => Ok(shared.get(key).await?.map(Arc::new)),
        }
    }

    /// Stores `stored` under `key`; a store that fails loses the write (logged; the store counts
    /// it).
    pub(crate) async fn put(&self, key: Key, stored: Stored) {
        match &self.inner.backend {
            Backend::Memory(memory) => memory.put(key, stored),
            Backend::Shared(shared) => {
                if let Err(error) = shared.put(&key, &stored).await {
                    tracing::debug!(%error, "cache write lost");
                }
            }
        }
    }

    /// Joins the fill of `key`, or leads it.
    pub(crate) fn flight(&self, key: Key) -> Flight {
        let mut flights = self.flights();
        if let Some(rx) = flights.get(&key) {
            return Flight::Follow(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        flights.insert(key, rx);
        Flight::Lead(tx)
    }

    /// Ends the fill of `key` with `filled` (after storing its answer, if any).
    pub(crate) fn land(&self, key: &Key, tx: &watch::Sender<Option<Filled>>, filled: Filled) {
        self.flights().remove(key);
        let _ = tx.send(Some(filled));
    }

    /// Drops every entry tagged with one of `tags`; returns how many were dropped.
    ///
    /// # Errors
    ///
    /// The shared store's error when it could not be reached: nothing is known to be dropped,
    /// ask again.
    ///
    /// # Examples
    ///
    /// See [`Cache`].
    pub async fn invalidate_tags<S: AsRef<str>>(&self, tags: &[S]) -> Result<usize, StoreError> {
        let tags: Vec<String> = tags.iter().map(|t| t.as_ref().to_owned()).collect();
        match &self.inner.backend {
            Backend::Memory(memory) => Ok(memory.remove_tags(&tags)),
            Backend::Shared(shared) => shared.remove_tags(&tags).await,
        }
    }

    /// Drops the entries stored under `keys`: each `"<scope>:<key>"`, where scope is the service
    /// of a call with `cache(key = ..)` or the endpoint (its struct's name) of an endpoint with
    /// one, and key the string that expression gave. Returns how many were dropped.
    ///
    /// # Errors
    ///
    /// As [`invalidate_tags`](Self::invalidate_tags).
    ///
    /// ```
    /// # async fn run(runtime: orchestrate_runtime::Runtime) -> Result<(), orchestrate_runtime::store::StoreError> {
    /// runtime.cache().invalidate_keys(&["catalog:all"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn invalidate_keys<S: AsRef<str>>(&self, keys: &[S]) -> Result<usize, StoreError> {
        let digests: Vec<Key> =
            keys.iter().filter_map(|k| k.as_ref().split_once(':')).map(|(scope, key)| Key::named(scope, key)).collect();
        match &self.inner.backend {
            Backend::Memory(memory) => Ok(memory.remove(&digests)),
            Backend::Shared(shared) => shared.remove(&digests).await,
        }
    }

    /// Bytes of answers held in this instance's memory now (0 when they live in the shared
    /// store).
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::cache::Cache::default().memory_bytes(), 0);
    /// ```
    pub fn memory_bytes(&self) -> u64 {
        match &self.inner.backend {
            Backend::Memory(memory) => memory.weighted_size(),
            Backend::Shared(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ttl: u64, stale: u64) -> CachePolicy {
        CachePolicy::new(Duration::from_secs(ttl), Duration::from_secs(stale))
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_is_fresh_then_stale_then_gone_on_tokios_clock() {
        let stored = Stored::new(Bytes::from_static(b"{}"), policy(60, 30), Vec::new());
        let start = Instant::now();
        assert_eq!(stored.freshness(start + Duration::from_secs(59)), Freshness::Fresh);
        assert_eq!(stored.freshness(start + Duration::from_secs(60)), Freshness::Stale);
        assert_eq!(stored.freshness(start + Duration::from_secs(89)), Freshness::Stale);
        assert_eq!(stored.freshness(start + Duration::from_secs(90)), Freshness::Expired);
    }

    #[tokio::test]
    async fn tags_and_keys_drop_their_entries_only() {
        let cache = Cache::in_memory(1 << 20);
        let user = Key::named("profile", "u1");
        let other = Key::named("profile", "u2");
        let catalog = Key::named("catalog", "all");
        cache.put(user, Stored::new(Bytes::from_static(b"1"), policy(60, 0), vec!["user:u1".into()])).await;
        cache.put(other, Stored::new(Bytes::from_static(b"2"), policy(60, 0), vec!["user:u2".into()])).await;
        cache.put(catalog, Stored::new(Bytes::from_static(b"3"), policy(60, 0), Vec::new())).await;
        assert_eq!(cache.invalidate_tags(&["user:u1"]).await.unwrap(), 1);
        assert!(cache.get(&user).await.unwrap().is_none());
        assert!(cache.get(&other).await.unwrap().is_some());
        assert_eq!(cache.invalidate_keys(&["catalog:all"]).await.unwrap(), 1);
        assert!(cache.get(&catalog).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn memory_is_bounded_by_the_capacity() {
        let cache = Cache::in_memory(64 * 1024);
        for i in 0..1000 {
            let body = Bytes::from(vec![b'x'; 1024]);
            cache.put(Key::named("s", &i.to_string()), Stored::new(body, policy(60, 0), Vec::new())).await;
        }
        assert!(cache.memory_bytes() <= 64 * 1024, "{}", cache.memory_bytes());
    }

    #[tokio::test]
    async fn a_second_caller_follows_the_first_fill() {
        let cache = Cache::in_memory(1 << 20);
        let key = Key::named("s", "k");
        let Flight::Lead(tx) = cache.flight(key) else { panic!("the first leads") };
        let Flight::Follow(mut rx) = cache.flight(key) else { panic!("the second follows") };
        cache.land(&key, &tx, Filled::Answered { body: Bytes::from_static(b"{}"), attempts: 1, status: Some(200) });
        let filled = rx.wait_for(Option::is_some).await.unwrap().clone();
        assert!(matches!(filled, Some(Filled::Answered { attempts: 1, .. })));
        assert!(matches!(cache.flight(key), Flight::Lead(_)), "a landed fill is over");
    }
}
