//! Limits kept in this instance's memory: governor's GCRA over a clock that follows tokio's (so
//! limits are exact under `tokio::time::pause`) and a keyed state bounded in size.
//!
//! governor's keyed state keeps every key it has seen until `retain_recent` runs (governor#171),
//! so a flood of distinct addresses or users would grow it without end. [`Bounded`] holds at most
//! `max_keys` keys; past that, new keys share one overflow state (the flood is limited together,
//! the keys already known keep their own budgets), and idle keys — whose state is
//! indistinguishable from a fresh one — are forgotten every ten seconds, every second while the
//! overflow is in use.
//!
//! A key is already a seeded SipHash of who the request is (`RateLimiter` makes it), so the map
//! takes it as its own hash ([`Prehashed`]) instead of hashing it a second time, and a known key
//! costs one lock and one lookup.

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::{HashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::{InMemoryState, NotKeyed, StateStore};
use governor::{Quota, RateLimiter};
use orchestrate_core::policy::Rate;
use std::hash::{BuildHasherDefault, Hasher};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// governor's clock on tokio's: nanoseconds since the limiter was made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokioClock {
    base: tokio::time::Instant,
}

impl TokioClock {
    pub(crate) fn new() -> Self {
        Self { base: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(tokio::time::Instant::now().saturating_duration_since(self.base))
    }
}

/// governor's quota of `rate`: `count` at once, then one every `per / count`.
pub(crate) fn quota(rate: Rate) -> Quota {
    let burst = NonZeroU32::new(rate.count).unwrap_or(NonZeroU32::MIN);
    let interval = rate.interval().max(Duration::from_nanos(1));
    Quota::with_period(interval).map_or_else(|| Quota::per_second(burst), |q| q.allow_burst(burst))
}

/// The map's hasher: a key is its own hash (it is one already, seeded per process).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed; this keeps any other input well mixed all the same.
        for byte in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*byte)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A keyed state of at most `cap` keys; the others share `overflow`.
#[derive(Debug)]
pub(crate) struct Bounded {
    keys: HashMapStateStore<u64, BuildHasherDefault<Prehashed>>,
    overflow: InMemoryState,
    cap: usize,
    /// Set when a key went to the overflow; shared with the [`Keyed`] that sweeps.
    saturated: Arc<AtomicBool>,
}

impl Bounded {
    fn new(cap: usize, saturated: Arc<AtomicBool>) -> Self {
        Self { keys: HashMapStateStore::default(), overflow: InMemoryState::default(), cap, saturated }
    }
}

impl StateStore for Bounded {
    type Key = u64;

    fn measure_and_replace<T, F, E>(&self, key: &u64, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let keys = self.keys.lock();
        // The common case, a known key: one lock, one lookup.
        if let Some(state) = keys.get(key) {
            return state.measure_and_replace(&NotKeyed::NonKey, f);
        }
        let full = keys.len() >= self.cap;
        drop(keys);
        if full {
            self.saturated.store(true, Ordering::Relaxed);
            return self.overflow.measure_and_replace(&NotKeyed::NonKey, f);
        }
        self.keys.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<u64> for Bounded {
    fn retain_recent(&self, drop_below: Nanos) {
        self.keys.retain_recent(drop_below);
    }

    fn shrink_to_fit(&self) {
        self.keys.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// How long a request must wait before the limit admits it, or `None`: admitted (and counted).
pub(crate) type Verdict = Option<Duration>;

const SWEEP_EVERY: Duration = Duration::from_secs(10);
const SWEEP_SATURATED_EVERY: Duration = Duration::from_secs(1);

/// One limit of one rate, per key.
#[derive(Debug)]
pub(crate) struct Keyed {
    limiter: RateLimiter<u64, Bounded, TokioClock, NoOpMiddleware<Nanos>>,
    clock: TokioClock,
    last_sweep: AtomicU64,
    saturated: Arc<AtomicBool>,
}

impl Keyed {
    pub(crate) fn new(rate: Rate, max_keys: usize) -> Self {
        let clock = TokioClock::new();
        let saturated = Arc::new(AtomicBool::new(false));
        let store = Bounded::new(max_keys, Arc::clone(&saturated));
        Self { limiter: RateLimiter::new(quota(rate), store, clock), clock, last_sweep: AtomicU64::new(0), saturated }
    }

    /// Counts a request of `key`.
    pub(crate) fn check(&self, key: u64) -> Verdict {
        let verdict = match self.limiter.check_key(&key) {
            Ok(()) => None,
            Err(not_until) => Some(not_until.wait_time_from(self.clock.now())),
        };
        self.sweep();
        verdict
    }

    /// Forgets idle keys when it is time.
    fn sweep(&self) {
        let now = self.clock.now().as_u64();
        let last = self.last_sweep.load(Ordering::Relaxed);
        let every = if self.saturated.load(Ordering::Relaxed) { SWEEP_SATURATED_EVERY } else { SWEEP_EVERY };
        if now.saturating_sub(last) < every.as_nanos() as u64 {
            return;
        }
        if self.last_sweep.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.saturated.store(false, Ordering::Relaxed);
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }

    /// How many keys are remembered now.
    pub(crate) fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// One limit of one rate for everyone together.
#[derive(Debug)]
pub(crate) struct Direct {
    limiter: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>,
    clock: TokioClock,
}

impl Direct {
    pub(crate) fn new(rate: Rate) -> Self {
        let clock = TokioClock::new();
        Self { limiter: RateLimiter::new(quota(rate), InMemoryState::default(), clock), clock }
    }

    /// Counts a request.
    pub(crate) fn check(&self) -> Verdict {
        match self.limiter.check() {
            Ok(()) => None,
            Err(not_until) => Some(not_until.wait_time_from(self.clock.now())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_distinct_keys_stays_bounded_and_known_keys_keep_their_budget() {
        let keyed = Keyed::new(Rate::new(2, MINUTE), 1_000);
        let known = u64::MAX;
        assert_eq!(keyed.check(known), None);
        for key in 0..50_000 {
            keyed.check(key);
        }
        assert_eq!(keyed.len(), 1_000, "at most `max_keys` are remembered");
        assert_eq!(keyed.check(known), None, "a known key keeps its own budget");
        assert_eq!(keyed.check(known), Some(Duration::from_secs(30)));
        assert!(keyed.check(1 << 40).is_some(), "new keys share the overflow's budget, spent by the flood");

        // Idle keys are forgotten once their state is as good as new (governor keeps a key one
        // interval longer than it must).
        tokio::time::advance(2 * MINUTE).await;
        assert_eq!(keyed.check(7), None);
        assert_eq!(keyed.len(), 1, "only the key just seen is left");
        assert_eq!(keyed.check(1 << 41), None, "a new key gets its own budget again");
    }

    #[tokio::test(start_paused = true)]
    async fn the_clock_follows_tokio_time() {
        let direct = Direct::new(Rate::new(1, Duration::from_secs(1)));
        assert_eq!(direct.check(), None);
        assert_eq!(direct.check(), Some(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(direct.check(), Some(Duration::from_millis(600)));
        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!(direct.check(), None);
    }
}
