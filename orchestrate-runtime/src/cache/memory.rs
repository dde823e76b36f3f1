//! The in-memory backend: moka, bounded by the bytes it holds, with a tag index beside it.
//!
//! moka evicts by size (each entry weighs its body) and by age (an entry lives `ttl + stale`).
//! Freshness itself is judged on tokio's clock from the time each entry was stored, not by moka's
//! expiry, so it is exact under `tokio::time::pause`. The tag index maps each tag to the keys
//! tagged with it; moka's eviction listener keeps it in step, so it never outgrows the cache.

use super::{Key, Stored};
use moka::notification::RemovalCause;
use moka::sync::Cache as Moka;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant as StdInstant};

type Tags = Arc<Mutex<HashMap<String, HashSet<Key>>>>;

/// Entries in memory, at most `capacity` bytes of them.
#[derive(Clone)]
pub(crate) struct Memory {
    entries: Moka<Key, Arc<Stored>>,
    tags: Tags,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory").field("entries", &self.entries.entry_count()).finish()
    }
}

/// An entry's lifetime in moka: its horizon (`ttl + stale`) from when it was stored.
struct Horizon;

impl moka::Expiry<Key, Arc<Stored>> for Horizon {
    fn expire_after_create(&self, _key: &Key, value: &Arc<Stored>, _created: StdInstant) -> Option<Duration> {
        Some(value.policy.horizon())
    }

    fn expire_after_update(
        &self,
        _key: &Key,
        value: &Arc<Stored>,
        _updated: StdInstant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.policy.horizon())
    }
}

fn lock(tags: &Mutex<HashMap<String, HashSet<Key>>>) -> MutexGuard<'_, HashMap<String, HashSet<Key>>> {
    tags.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn untag(tags: &Tags, key: &Key, of: &[String]) {
    let mut index = lock(tags);
    for tag in of {
        if let Some(keys) = index.get_mut(tag) {
            keys.remove(key);
            if keys.is_empty() {
                index.remove(tag);
            }
        }
    }
}

impl Memory {
    /// A cache holding at most `capacity` bytes of answers.
    pub(crate) fn new(capacity: u64) -> Self {
        let tags: Tags = Arc::default();
        let listener_tags = tags.clone();
        let entries = Moka::builder()
            .max_capacity(capacity)
            .weigher(|_key: &Key, value: &Arc<Stored>| {
                // The body, the entry's own size and its tags.
                let tags: usize = value.tags.iter().map(String::len).sum();
                u32::try_from(value.body.len() + tags + 128).unwrap_or(u32::MAX)
            })
            .expire_after(Horizon)
            .eviction_listener(move |key: Arc<Key>, value: Arc<Stored>, cause| {
                // A replaced entry's tags were updated by `put` itself.
                if cause != RemovalCause::Replaced {
                    untag(&listener_tags, &key, &value.tags);
                }
            })
            .build();
        Self { entries, tags }
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Arc<Stored>> {
        self.entries.get(key)
    }

    pub(crate) fn put(&self, key: Key, stored: Stored) {
        let stored = Arc::new(stored);
        let old = self.entries.get(&key);
        {
            let mut index = lock(&self.tags);
            if let Some(old) = &old {
                for tag in &old.tags {
                    if let Some(keys) = index.get_mut(tag) {
                        keys.remove(&key);
                    }
                }
            }
            for tag in &stored.tags {
                index.entry(tag.clone()).or_default().insert(key);
            }
        }
        self.entries.insert(key, stored);
    }

    pub(crate) fn remove(&self, keys: &[Key]) -> usize {
        keys.iter().filter(|key| self.entries.remove(*key).is_some()).count()
    }

    pub(crate) fn remove_tags(&self, tags: &[String]) -> usize {
        let keys: Vec<Key> = {
            let mut index = lock(&self.tags);
            tags.iter().filter_map(|tag| index.remove(tag)).flatten().collect()
        };
        self.remove(&keys)
    }

    /// Bytes held now (after moka's pending maintenance).
    pub(crate) fn weighted_size(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.weighted_size()
    }
}
