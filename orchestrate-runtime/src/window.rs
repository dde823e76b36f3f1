//! Event counts over a sliding window of time, kept in ten buckets (retry budget, error rate).
//!
//! A bucketed window needs constant memory whatever the traffic, which a list of timestamps does
//! not; the price is granularity: the window covers between nine and ten tenths of its length,
//! so an event leaves the count up to one tenth of the window early.

use std::time::Duration;
use tokio::time::Instant;

const BUCKETS: usize = 10;

/// `K` counters summed over the last `within`, in ten buckets of `within / 10`.
#[derive(Debug)]
pub(crate) struct Window<const K: usize> {
    origin: Instant,
    /// A bucket's width in nanoseconds (a `u64` division per event, not a `u128` one).
    width: u64,
    /// Each bucket remembers which tick it holds, so a stale bucket is reset when reused.
    buckets: [(u64, [u64; K]); BUCKETS],
}

impl<const K: usize> Window<K> {
    pub(crate) fn new(within: Duration) -> Self {
        let width = (within / BUCKETS as u32).max(Duration::from_millis(1));
        let width = u64::try_from(width.as_nanos()).unwrap_or(u64::MAX);
        Self { origin: Instant::now(), width, buckets: [(0, [0; K]); BUCKETS] }
    }

    fn tick(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(elapsed).unwrap_or(u64::MAX) / self.width
    }

    /// Adds `n` to counter `k` at `now`.
    pub(crate) fn add(&mut self, now: Instant, k: usize, n: u64) {
        let tick = self.tick(now);
        let bucket = &mut self.buckets[(tick % BUCKETS as u64) as usize];
        if bucket.0 != tick {
            *bucket = (tick, [0; K]);
        }
        bucket.1[k] = bucket.1[k].saturating_add(n);
    }

    /// Every counter summed over the buckets still inside the window at `now`.
    pub(crate) fn sums(&self, now: Instant) -> [u64; K] {
        let tick = self.tick(now);
        let oldest = tick.saturating_sub(BUCKETS as u64 - 1);
        let mut sums = [0; K];
        for (bucket_tick, counts) in &self.buckets {
            if (oldest..=tick).contains(bucket_tick) {
                for (sum, count) in sums.iter_mut().zip(counts) {
                    *sum += count;
                }
            }
        }
        sums
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counts_leave_the_window_after_it_passes() {
        let mut w = Window::<2>::new(Duration::from_secs(10));
        let start = Instant::now();
        w.add(start, 0, 3);
        w.add(start + Duration::from_secs(5), 1, 1);
        assert_eq!(w.sums(start + Duration::from_secs(5)), [3, 1]);
        assert_eq!(w.sums(start + Duration::from_millis(9_999)), [3, 1]);
        // The first bucket [0 s, 1 s) leaves once the window has moved ten buckets on.
        assert_eq!(w.sums(start + Duration::from_secs(10)), [0, 1]);
        assert_eq!(w.sums(start + Duration::from_secs(15)), [0, 0]);
        // A reused bucket starts from zero.
        w.add(start + Duration::from_secs(20), 0, 1);
        assert_eq!(w.sums(start + Duration::from_secs(20)), [1, 0]);
    }
}
