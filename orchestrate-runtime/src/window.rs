//! Event counts over a sliding window of time, kept in ten buckets (retry budget, error rate).
//!
//! A bucketed window needs constant memory whatever the traffic, which a list of timestamps does
//! not; the price is granularity: the window covers between nine and ten tenths of its length,
//! so an event leaves the count up to one tenth of the window early.

use std::time::Duration;
use tokio::time::Instant;

const BUCKETS: usize = 10;

/// `K` counters summed over the last `within`, in ten buckets of `within / 10`.
///
/// The sums of the buckets inside the window are kept as the events come (a bucket leaving the
/// window is taken off them), so reading them costs no walk over the buckets; and an event in the
/// newest bucket, the usual case under load, finds it by comparing its time with the bucket's
/// bounds, with no time arithmetic.
#[derive(Debug)]
pub(crate) struct Window<const K: usize> {
    origin: Instant,
    /// A bucket's width in nanoseconds (a `u64` division per event, not a `u128` one).
    width: u64,
    /// The newest tick seen; bucket `t % 10` holds tick `t` for the ten ticks up to it.
    last: u64,
    /// When tick `last` starts and ends.
    last_bounds: (Instant, Instant),
    /// The counters summed over those ten buckets.
    totals: [u64; K],
    buckets: [[u64; K]; BUCKETS],
}

impl<const K: usize> Window<K> {
    pub(crate) fn new(within: Duration) -> Self {
        let width = (within / BUCKETS as u32).max(Duration::from_millis(1));
        let origin = Instant::now();
        let width_nanos = u64::try_from(width.as_nanos()).unwrap_or(u64::MAX);
        Self {
            origin,
            width: width_nanos,
            last: 0,
            last_bounds: (origin, later(origin, width)),
            totals: [0; K],
            buckets: [[0; K]; BUCKETS],
        }
    }

    #[inline]
    fn tick(&self, now: Instant) -> u64 {
        if self.last_bounds.0 <= now && now < self.last_bounds.1 {
            return self.last;
        }
        self.tick_of(now)
    }

    #[cold]
    fn tick_of(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin);
        let nanos = elapsed.as_secs().saturating_mul(1_000_000_000).saturating_add(u64::from(elapsed.subsec_nanos()));
        nanos / self.width
    }

    /// The buckets that leave the window when it moves from tick `last` to `tick`.
    fn leaving(last: u64, tick: u64) -> impl Iterator<Item = usize> {
        let steps = tick.saturating_sub(last).min(BUCKETS as u64);
        (1..=steps).map(move |i| ((last + i) % BUCKETS as u64) as usize)
    }

    /// Adds `n` to counter `k` at `now`.
    #[inline]
    pub(crate) fn add(&mut self, now: Instant, k: usize, n: u64) {
        let tick = self.tick(now);
        if tick != self.last && !self.move_to(tick) {
            return;
        }
        let count = &mut self.buckets[(tick % BUCKETS as u64) as usize][k];
        *count = count.saturating_add(n);
        self.totals[k] = self.totals[k].saturating_add(n);
    }

    /// Moves the window on to `tick` (taking the buckets that leave it off the totals); `false`
    /// for a tick already outside it (a clock read on another thread before the window moved).
    #[cold]
    fn move_to(&mut self, tick: u64) -> bool {
        if tick < self.last {
            return tick + BUCKETS as u64 > self.last;
        }
        for index in Self::leaving(self.last, tick) {
            for (total, count) in self.totals.iter_mut().zip(&mut self.buckets[index]) {
                *total -= *count;
                *count = 0;
            }
        }
        self.last = tick;
        let start = later(self.origin, Duration::from_nanos(tick.saturating_mul(self.width)));
        self.last_bounds = (start, later(start, Duration::from_nanos(self.width)));
        true
    }

    /// Every counter summed over the buckets still inside the window at `now`.
    pub(crate) fn sums(&self, now: Instant) -> [u64; K] {
        let mut sums = self.totals;
        for index in Self::leaving(self.last, self.tick(now)) {
            for (sum, count) in sums.iter_mut().zip(&self.buckets[index]) {
                *sum -= count;
            }
        }
        sums
    }
}

/// `at + by`, or `at` past the clock's range (an empty bucket range: every event then takes the
/// arithmetic path).
fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by).unwrap_or(at)
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

    #[tokio::test(start_paused = true)]
    async fn a_late_clock_read_counts_in_its_own_bucket_and_a_stale_one_not_at_all() {
        let mut w = Window::<1>::new(Duration::from_secs(10));
        let start = Instant::now();
        w.add(start + Duration::from_secs(12), 0, 1);
        // Read at 11 s on another thread, recorded after the 12 s event: still inside.
        w.add(start + Duration::from_secs(11), 0, 1);
        // Read at 1 s: outside the window [3 s, 13 s) by now.
        w.add(start + Duration::from_secs(1), 0, 1);
        assert_eq!(w.sums(start + Duration::from_secs(12)), [2]);
        // The 11 s bucket leaves first.
        assert_eq!(w.sums(start + Duration::from_secs(21)), [1]);
        assert_eq!(w.sums(start + Duration::from_secs(22)), [0]);
        // After a gap of many windows, counting starts again from nothing.
        w.add(start + Duration::from_secs(500), 0, 4);
        assert_eq!(w.sums(start + Duration::from_secs(500)), [4]);
    }
}
