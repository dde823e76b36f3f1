//! Cached answers in the shared store (Redis), seen by every instance.
//!
//! Layout, under the store's prefix:
//!
//! - `cache:e:<key digest>`: one entry, a string `OC1` + the body's tag (8 bytes) + `ttl` and
//!   `stale` in milliseconds (8 bytes each) + the body, expiring `ttl + stale` after it was
//!   stored. Its age is read off its remaining time to live (`PTTL`), so no instance's clock is
//!   trusted and clocks that disagree do not change freshness.
//! - `cache:t:<tag>`: a set of the entry keys with that tag, expiring with its longest-lived
//!   member. Invalidating a tag deletes its members and the set in one script.
//!
//! Nothing else is stored: the request an entry answers is only in its digest. Every operation
//! goes through [`RedisStore`] (one connection, a timeout on each operation); an error is
//! returned, and the cache treats it as a miss (a read) or a lost write, never a failed request.
//! Scripts touch keys they compute, so a Redis Cluster is not supported (one server, or a
//! primary with replicas).

use super::{Key, Stored};
use crate::service::CachePolicy;
use crate::store::{RedisStore, Script, StoreError};
use bytes::Bytes;
use std::time::Duration;
use tokio::time::Instant;

const MAGIC: &[u8; 3] = b"OC1";
const HEADER: usize = 3 + 8 + 8 + 8;

/// Stores an entry and adds it to its tags' sets, each kept as long as its longest member.
static PUT: Script = Script::new(
    "cache_put",
    r"
    local px = tonumber(ARGV[2])
    redis.call('SET', KEYS[1], ARGV[1], 'PX', px)
    for i = 2, #KEYS do
        redis.call('SADD', KEYS[i], KEYS[1])
        if redis.call('PTTL', KEYS[i]) < px then redis.call('PEXPIRE', KEYS[i], px) end
    end
    return 1
    ",
);

/// Deletes the entries of every tag given, and the tags' sets; returns how many entries went.
static DROP_TAGS: Script = Script::new(
    "cache_drop_tags",
    r"
    local dropped = 0
    for i = 1, #KEYS do
        for _, entry in ipairs(redis.call('SMEMBERS', KEYS[i])) do
            dropped = dropped + redis.call('DEL', entry)
        end
        redis.call('DEL', KEYS[i])
    end
    return dropped
    ",
);

/// The Redis side of a [`Cache`](super::Cache).
#[derive(Debug, Clone)]
pub(super) struct Shared {
    redis: RedisStore,
}

impl Shared {
    pub(super) fn new(redis: RedisStore) -> Self {
        Self { redis }
    }

    fn entry(&self, key: &Key) -> String {
        self.redis.key(&["cache", "e", &key.hex()])
    }

    fn tag(&self, tag: &str) -> String {
        // A tag is the application's string; hex-free tags keep their shape for an operator's
        // `SCAN`, and `:` inside one cannot clash because the tag is the key's last part.
        self.redis.key(&["cache", "t", tag])
    }

    pub(super) async fn get(&self, key: &Key) -> Result<Option<Stored>, StoreError> {
        let entry = self.entry(key);
        let (value, pttl): (Option<Vec<u8>>, i64) = self.redis.pipeline(redis::pipe().get(&entry).pttl(&entry)).await?;
        let (Some(value), true) = (value, pttl > 0) else { return Ok(None) };
        Ok(decode(&value, Duration::from_millis(pttl.unsigned_abs())))
    }

    pub(super) async fn put(&self, key: &Key, stored: &Stored) -> Result<(), StoreError> {
        let horizon = stored.policy.horizon().as_millis().max(1);
        let mut invocation = PUT.key(self.entry(key));
        for tag in &stored.tags {
            invocation = invocation.key(self.tag(tag));
        }
        let invocation = invocation.arg(encode(stored)).arg(horizon as u64);
        let _: i64 = self.redis.invoke(&invocation).await?;
        Ok(())
    }

    pub(super) async fn remove_tags(&self, tags: &[String]) -> Result<usize, StoreError> {
        if tags.is_empty() {
            return Ok(0);
        }
        let mut invocation = DROP_TAGS.prepare();
        for tag in tags {
            invocation = invocation.key(self.tag(tag));
        }
        let dropped: i64 = self.redis.invoke(&invocation).await?;
        Ok(usize::try_from(dropped).unwrap_or(0))
    }

    pub(super) async fn remove(&self, keys: &[Key]) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut del = redis::cmd("DEL");
        for key in keys {
            del.arg(self.entry(key));
        }
        let dropped: i64 = self.redis.query(&del).await?;
        Ok(usize::try_from(dropped).unwrap_or(0))
    }
}

fn encode(stored: &Stored) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + stored.body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&stored.etag.to_be_bytes());
    out.extend_from_slice(&millis(stored.policy.ttl).to_be_bytes());
    out.extend_from_slice(&millis(stored.policy.stale).to_be_bytes());
    out.extend_from_slice(&stored.body);
    out
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The entry in `value`, `left` before it expires; `None` when it is not one (another writer's
/// key, an older layout): a miss.
fn decode(value: &[u8], left: Duration) -> Option<Stored> {
    if value.len() < HEADER || &value[..3] != MAGIC {
        return None;
    }
    let word = |at: usize| u64::from_be_bytes(value[at..at + 8].try_into().unwrap_or([0; 8]));
    let policy = CachePolicy::new(Duration::from_millis(word(11)), Duration::from_millis(word(19)));
    let age = policy.horizon().saturating_sub(left);
    let now = Instant::now();
    Some(Stored {
        body: Bytes::copy_from_slice(&value[HEADER..]),
        etag: word(3),
        stored: now.checked_sub(age).unwrap_or(now),
        policy,
        tags: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_entry_round_trips_and_its_age_comes_from_its_time_left() {
        let policy = CachePolicy::new(Duration::from_secs(60), Duration::from_secs(30));
        let stored = Stored::new(Bytes::from_static(b"{\"a\":1}"), policy, vec!["user:u1".into()]);
        let value = encode(&stored);
        tokio::time::advance(Duration::from_secs(100)).await;
        let read = decode(&value, Duration::from_secs(20)).unwrap();
        assert_eq!((&read.body, read.etag, read.policy), (&stored.body, stored.etag, policy));
        assert_eq!(read.age(Instant::now()), Duration::from_secs(70));
        assert_eq!(read.freshness(Instant::now()), super::super::Freshness::Stale);
        assert!(decode(b"something else", Duration::from_secs(1)).is_none());
    }
}
