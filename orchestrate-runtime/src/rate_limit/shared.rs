//! Limits shared by every instance through the store (see [`gcra`](super::gcra) for the script).
//!
//! Layout, under the store's prefix: `rl:<scope>:<count>:<period in seconds>:<digest>`, a string
//! holding the key's theoretical arrival time (microseconds of Redis `TIME`), expiring when the
//! state is as good as new. `<digest>` is 32 hex digits of the SHA-256 of who is counted (the
//! user's header, the address, the endpoint), so no credential is stored.

use super::gcra::{GCRA, script_args};
use crate::store::{RedisStore, StoreError};
use orchestrate_core::policy::Rate;
use std::time::Duration;

/// One limit in the store.
#[derive(Debug)]
pub(crate) struct SharedLimit {
    redis: RedisStore,
    prefix: String,
    interval: u64,
    burst: u64,
}

impl SharedLimit {
    pub(crate) fn new(redis: RedisStore, scope: &str, rate: Rate) -> Self {
        let (interval, burst) = script_args(rate);
        let prefix = redis.key(&["rl", scope, &rate.count.to_string(), &rate.per.as_secs().to_string()]);
        Self { redis, prefix, interval, burst }
    }

    /// Counts a request of the key whose digest is `digest`: `None` admitted, `Some(wait)`
    /// refused.
    pub(crate) async fn check(&self, digest: &str) -> Result<Option<Duration>, StoreError> {
        let key = format!("{}:{digest}", self.prefix);
        let (admitted, wait): (u8, u64) = self.redis.invoke(&GCRA.key(key).arg(self.interval).arg(self.burst)).await?;
        Ok((admitted == 0).then(|| Duration::from_micros(wait)))
    }
}
