//! The adaptive concurrency limit of a service: how many of its calls may be in flight, learned
//! from their latency and timeouts.
//!
//! Every [`INTERVAL`], from the calls that ended in it:
//!
//! ```text
//! gradient = clamp(TOLERANCE × baseline / latency, 0.5, 1)     (latencies floored at FLOOR;
//!                                                               1 during the first WARM_UP intervals)
//! limit    = limit × gradient × (1 − dropped / 2) + headroom
//! headroom = 0 unless the limit was at least half used and some call was answered;
//!            max(√limit, limit / 4) when nothing was dropped and the latency is within tolerance,
//!            √limit otherwise
//! ```
//!
//! where `latency` is the mean latency of the calls answered in the interval, `dropped` the share
//! of calls that timed out or could not connect, and `baseline` the service's usual latency: the
//! mean of every answered call over the first [`SETTLING`] intervals, then a moving average of
//! the interval means that takes about five seconds to follow a rise and half a second to
//! follow a fall.
//! The baseline is a mean, not a minimum, because a service's answers are a distribution: the
//! first intervals of a service whose answers take 80 ms or 300 ms only ever see the 80 ms ones
//! end, and a minimum would take that for normal and shed the service's ordinary load. So:
//!
//! - a healthy service whose limit is in use grows by a quarter per interval (from 4 to 256 in
//!   under two seconds), and an unused limit does not grow;
//! - a service that answers more than twice as slowly as its baseline shrinks its limit, down to
//!   half per interval (plus √limit), until the baseline has learned the new speed (a lasting
//!   five-fold slowdown: about two seconds), then grows again to what the load needs;
//! - a hanging service (every call times out) halves the limit per interval, to its `min` within
//!   a second, warm-up or not;
//! - a service that drops a share `f` of its calls under load settles where both terms balance,
//!   near `(2 / f)²` (204 at 14%, 16 at 50%).
//!
//! This is the gradient family of Netflix's concurrency-limits (Gradient2: a long-term average
//! latency against the current one, plus a √limit queue allowance) and of Envoy's adaptive
//! concurrency filter, reduced to what one BFF needs and combined with AIMD's multiplicative
//! decrease on drops. No maintained crate implements it for tokio; this is about a hundred lines
//! with one short mutex section per call.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

use super::Ended;

/// How often the limit is recomputed.
pub(crate) const INTERVAL: Duration = Duration::from_millis(100);
/// How much slower than its baseline a service may answer before its limit shrinks.
pub(crate) const TOLERANCE: f64 = 2.0;
/// Latencies below this are treated as this: a few milliseconds of difference say nothing.
pub(crate) const FLOOR: Duration = Duration::from_millis(5);
/// Intervals with answered calls during which latency does not shrink the limit (drops still
/// do): the slow answers of the first calls have not ended yet.
pub(crate) const WARM_UP: u32 = 10;
/// Intervals with answered calls over which the baseline is the plain mean of every answer.
pub(crate) const SETTLING: u32 = 20;
/// The time constant of the baseline's moves towards a higher latency: a lasting slowdown is
/// about two thirds learned after this long.
const RISE: Duration = Duration::from_secs(5);
/// The time constant of its moves towards a lower latency.
const FALL: Duration = Duration::from_millis(400);

/// The adaptive limit of one service.
#[derive(Debug)]
pub(crate) struct Adaptive {
    min: f64,
    max: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: u32,
    /// Start and end of the current interval (set by its first event).
    interval: Option<(Instant, Instant)>,
    answered: u32,
    dropped: u32,
    latency_sum: Duration,
    /// Most calls in flight at once during the interval.
    peak: u32,
    /// Intervals with an answered call so far (saturating).
    intervals: u32,
    /// Every answer's latency summed over the settling intervals, and their count.
    settling_sum: Duration,
    settling_count: u32,
    baseline: Option<Duration>,
}

/// A place held by one call.
#[derive(Debug)]
pub(crate) struct Place<'a> {
    limiter: &'a Adaptive,
    done: bool,
}

impl Default for Adaptive {
    fn default() -> Self {
        Self::new(256, 4, 1024)
    }
}

impl Adaptive {
    pub(crate) fn new(initial: u32, min: u32, max: u32) -> Self {
        let (min, max) = (f64::from(min.max(1)), f64::from(max.max(min.max(1))));
        let state = State {
            limit: f64::from(initial).clamp(min, max),
            in_flight: 0,
            interval: None,
            answered: 0,
            dropped: 0,
            latency_sum: Duration::ZERO,
            peak: 0,
            intervals: 0,
            settling_sum: Duration::ZERO,
            settling_count: 0,
            baseline: None,
        };
        Self { min, max, state: Mutex::new(state) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A place, or `None` when the limit is reached.
    pub(crate) fn enter(&self) -> Option<Place<'_>> {
        let mut state = self.lock();
        if f64::from(state.in_flight) >= state.limit.floor() {
            return None;
        }
        state.in_flight += 1;
        state.peak = state.peak.max(state.in_flight);
        Some(Place { limiter: self, done: false })
    }

    pub(crate) fn in_flight(&self) -> u32 {
        self.lock().in_flight
    }

    pub(crate) fn limit(&self) -> u32 {
        self.lock().limit.floor() as u32
    }

    fn release(&self, ended: Ended, latency: Duration, now: Instant) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        match ended {
            Ended::Answered => {
                state.answered += 1;
                state.latency_sum += latency;
            }
            Ended::Dropped => state.dropped += 1,
            Ended::Unknown => return,
        }
        // Compared with the interval's end, so that a call within it does no time arithmetic.
        let (start, due) = *state.interval.get_or_insert_with(|| interval_from(now));
        if now >= due {
            self.update(&mut state, now.saturating_duration_since(start));
            state.interval = Some(interval_from(now));
        }
    }

    fn update(&self, state: &mut State, elapsed: Duration) {
        let total = state.answered + state.dropped;
        if total == 0 {
            return;
        }
        let dropped = f64::from(state.dropped) / f64::from(total);
        let mut gradient = 1.0;
        if state.answered > 0 {
            let latency = state.latency_sum / state.answered;
            state.intervals = state.intervals.saturating_add(1);
            let baseline = if state.intervals <= SETTLING {
                state.settling_sum += state.latency_sum;
                state.settling_count += state.answered;
                state.settling_sum / state.settling_count
            } else {
                let usual = state.baseline.unwrap_or(latency).as_secs_f64();
                let constant = if latency.as_secs_f64() > usual { RISE } else { FALL };
                let share = 1.0 - (-elapsed.as_secs_f64() / constant.as_secs_f64()).exp();
                Duration::from_secs_f64(usual + (latency.as_secs_f64() - usual) * share)
            };
            state.baseline = Some(baseline);
            if state.intervals > WARM_UP {
                let (b, l) = (baseline.max(FLOOR).as_secs_f64(), latency.max(FLOOR).as_secs_f64());
                gradient = (TOLERANCE * b / l).clamp(0.5, 1.0);
            }
        }
        let in_use = f64::from(state.peak) >= state.limit / 2.0;
        let headroom = if !in_use || state.answered == 0 {
            0.0
        } else if state.dropped == 0 && gradient >= 1.0 {
            state.limit.sqrt().max(state.limit / 4.0)
        } else {
            state.limit.sqrt()
        };
        state.limit = (state.limit * gradient * (1.0 - dropped / 2.0) + headroom).clamp(self.min, self.max);
        state.answered = 0;
        state.dropped = 0;
        state.latency_sum = Duration::ZERO;
        state.peak = state.in_flight;
    }
}

impl Place<'_> {
    /// Reports how the call ended and frees the place.
    pub(crate) fn done(mut self, ended: Ended, latency: Duration, now: Instant) {
        self.done = true;
        self.limiter.release(ended, latency, now);
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Cancelled: the place is free, and nothing is learned.
            let mut state = self.limiter.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }
}

/// The interval starting at `now`: its start and when it ends.
fn interval_from(now: Instant) -> (Instant, Instant) {
    (now, now.checked_add(INTERVAL).unwrap_or(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `intervals` intervals of `per_interval` calls each holding a place for `latency`,
    /// `concurrent` at a time, a share `dropped` of them timing out; returns the limit after each
    /// interval.
    async fn load(a: &Adaptive, intervals: usize, concurrent: u32, latency: Duration, dropped: f64) -> Vec<u32> {
        let mut limits = Vec::new();
        let mut dropped_so_far = 0.0;
        for _ in 0..intervals {
            for _ in 0..10 {
                let places: Vec<Place<'_>> = (0..concurrent).filter_map(|_| a.enter()).collect();
                tokio::time::advance(INTERVAL / 10).await;
                for place in places {
                    dropped_so_far += dropped;
                    let ended = if dropped_so_far >= 1.0 {
                        dropped_so_far -= 1.0;
                        Ended::Dropped
                    } else {
                        Ended::Answered
                    };
                    place.done(ended, latency, Instant::now());
                }
            }
            limits.push(a.limit());
        }
        limits
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_grows_while_healthy_calls_use_it() {
        let a = Adaptive::new(8, 4, 1024);
        let limits = load(&a, 20, 1000, Duration::from_millis(45), 0.0).await;
        assert!(limits.windows(2).all(|w| w[1] >= w[0]), "{limits:?}");
        assert!(*limits.last().unwrap() >= 180, "a healthy service needing 180 places gets them: {limits:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unused_limit_does_not_grow() {
        let a = Adaptive::new(64, 4, 1024);
        let limits = load(&a, 20, 10, Duration::from_millis(45), 0.0).await;
        assert_eq!(*limits.last().unwrap(), 64, "{limits:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_shrinks_when_latency_rises_until_the_new_speed_is_learned() {
        let a = Adaptive::new(256, 4, 1024);
        load(&a, 12, 300, Duration::from_millis(45), 0.0).await;
        let healthy = a.limit();
        // The service becomes five times slower: the limit about halves per interval at first...
        let slow = load(&a, 40, 300, Duration::from_millis(225), 0.0).await;
        assert!(slow[2] < healthy / 2, "{healthy} then {slow:?}");
        let lowest = *slow.iter().min().unwrap();
        assert!(lowest < 150, "down to under half the 300 calls the load asks for: {slow:?}");
        // ...until the baseline has learned the new speed; then the load gets its places back.
        assert!(*slow.last().unwrap() >= 300, "{slow:?}");
        // Fast again: it stays open.
        let recovered = load(&a, 30, 300, Duration::from_millis(45), 0.0).await;
        assert!(*recovered.last().unwrap() >= 300, "{recovered:?}");
    }

    /// Offers `concurrent` calls at all times for `duration`, each taking the next latency of
    /// `latencies` (cycled); returns how many were refused and the lowest limit seen.
    async fn offered(a: &Adaptive, concurrent: usize, latencies: &[Duration], duration: Duration) -> (u32, u32) {
        let step = Duration::from_millis(5);
        let end = Instant::now() + duration;
        let mut flying: Vec<(Duration, Instant, Place<'_>)> = Vec::new();
        let (mut refused, mut lowest, mut next) = (0, a.limit(), 0);
        while Instant::now() < end {
            while flying.len() < concurrent {
                let Some(place) = a.enter() else {
                    refused += 1;
                    break;
                };
                flying.push((latencies[next % latencies.len()], Instant::now(), place));
                next += 1;
            }
            tokio::time::advance(step).await;
            let now = Instant::now();
            let (ended, still): (Vec<_>, Vec<_>) =
                flying.into_iter().partition(|(latency, started, _)| *started + *latency <= now);
            flying = still;
            for (latency, _, place) in ended {
                place.done(Ended::Answered, latency, now);
            }
            lowest = lowest.min(a.limit());
        }
        (refused, lowest)
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_with_slow_and_fast_answers_is_not_shed_from_the_start() {
        // Half its answers take 80 ms, half 380 ms (mean 230 ms, 2.9 times the fast ones): the
        // first intervals only see the fast ones end. 45 calls in flight is its ordinary load.
        let (ms80, ms380) = (Duration::from_millis(80), Duration::from_millis(380));
        let a = Adaptive::new(256, 4, 1024);
        let (refused, lowest) = offered(&a, 45, &[ms80, ms380], Duration::from_secs(10)).await;
        assert_eq!(refused, 0, "the limit fell to {lowest}");
        assert!(lowest >= 90, "{lowest}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lasting_slowdown_under_load_sheds_for_a_while_then_the_load_gets_its_places() {
        let a = Adaptive::new(256, 4, 1024);
        offered(&a, 45, &[Duration::from_millis(40)], Duration::from_secs(5)).await;
        let (refused, lowest) = offered(&a, 45, &[Duration::from_millis(400)], Duration::from_secs(10)).await;
        assert!(refused > 0 && lowest < 45, "a ten-fold slowdown is resisted at first: {refused}, {lowest}");
        let (refused, _) = offered(&a, 45, &[Duration::from_millis(400)], Duration::from_secs(5)).await;
        assert_eq!(refused, 0, "the new speed is normal by now");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_service_is_held_to_the_minimum_and_a_lossy_one_settles_lower() {
        let a = Adaptive::new(256, 4, 1024);
        let hanging = load(&a, 20, 300, Duration::from_millis(45), 1.0).await;
        assert_eq!(*hanging.last().unwrap(), 4, "{hanging:?}");
        let lossy = Adaptive::new(256, 4, 1024);
        let limits = load(&lossy, 40, 1000, Duration::from_millis(45), 0.5).await;
        let last = *limits.last().unwrap();
        assert!((8..=32).contains(&last), "half the calls dropped: settles near 16, got {limits:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_excess_is_refused_and_a_cancelled_place_is_freed() {
        let a = Adaptive::new(2, 1, 8);
        let first = a.enter().unwrap();
        let _second = a.enter().unwrap();
        assert!(a.enter().is_none());
        drop(first);
        assert_eq!(a.in_flight(), 1);
        assert!(a.enter().is_some());
    }
}
