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
//! Entries live in memory (moka, bounded by `capacity` bytes) by default. Keys are digests (see
//! [`Key`]); tags are the strings the code gives. [`Cache::invalidate_tags`] and
//! [`Cache::invalidate_keys`] drop entries, from code or through
//! `POST /_orchestrate/cache/invalidate` on the operations router.

mod key;
mod memory;

pub use key::Key;

use crate::error::{CallError, CallErrorKind};
use crate::service::CachePolicy;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use memory::Memory;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Default capacity of the in-memory cache: 64 MiB of answers.
pub const DEFAULT_CAPACITY: u64 = 64 * 1024 * 1024;

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
/// let dropped = runtime.cache().invalidate_tags(&["user:u1".to_owned()]).await;
/// assert_eq!(dropped, 0);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    memory: Memory,
    flights: Mutex<HashMap<Key, watch::Receiver<Option<Filled>>>>,
}

impl Default for Cache {
    fn default() -> Self {
        Self::in_memory(DEFAULT_CAPACITY)
    }
}

impl Cache {
    /// A cache in memory, holding at most `capacity` bytes of answers.
    pub fn in_memory(capacity: u64) -> Self {
        Self { inner: Arc::new(Inner { memory: Memory::new(capacity), flights: Mutex::default() }) }
    }

    fn flights(&self) -> MutexGuard<'_, HashMap<Key, watch::Receiver<Option<Filled>>>> {
        self.inner.flights.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The entry stored under `key`, if any.
    pub(crate) async fn get(&self, key: &Key) -> Result<Option<Arc<Stored>>, CallError> {
        Ok(self.inner.memory.get(key))
    }

    /// Stores `stored` under `key`.
    pub(crate) async fn put(&self, key: Key, stored: Stored) {
        self.inner.memory.put(key, stored);
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
    /// # Examples
    ///
    /// See [`Cache`].
    pub async fn invalidate_tags(&self, tags: &[String]) -> usize {
        self.inner.memory.remove_tags(tags)
    }

    /// Drops the entries stored under `keys`: each `"<scope>:<key>"`, where scope is the service
    /// of a call with `cache(key = ..)` or the endpoint (its struct's name) of an endpoint with
    /// one, and key the string that expression gave. Returns how many were dropped.
    ///
    /// ```
    /// # async fn run(runtime: orchestrate_runtime::Runtime) {
    /// runtime.cache().invalidate_keys(&["catalog:all".to_owned()]).await;
    /// # }
    /// ```
    pub async fn invalidate_keys(&self, keys: &[String]) -> usize {
        let digests: Vec<Key> =
            keys.iter().filter_map(|k| k.split_once(':')).map(|(scope, key)| Key::named(scope, key)).collect();
        self.inner.memory.remove(&digests)
    }

    /// Bytes of answers held in memory now.
    pub fn memory_bytes(&self) -> u64 {
        self.inner.memory.weighted_size()
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
        assert_eq!(cache.invalidate_tags(&["user:u1".into()]).await, 1);
        assert!(cache.get(&user).await.unwrap().is_none());
        assert!(cache.get(&other).await.unwrap().is_some());
        assert_eq!(cache.invalidate_keys(&["catalog:all".into()]).await, 1);
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
