//! The adaptive concurrency limit of a service: how many of its calls may be in flight, learned
//! from their latency and timeouts.
//!
//! Every [`INTERVAL`], from the calls that ended in it:
//!
//! ```text
//! gradient = clamp(TOLERANCE × baseline / latency, 0.5, 1)     (latencies floored at FLOOR)
//! limit    = limit × gradient × (1 − dropped / 2) + headroom
//! headroom = 0 unless the limit was at least half used and some call was answered;
//!            max(√limit, limit / 4) when nothing was dropped and the latency is within tolerance,
//!            √limit otherwise
//! ```
//!
//! where `latency` is the mean latency of the calls that were answered, `baseline` the lowest such
//! mean seen lately (it drifts up by 1% per interval, so a lasting change of the service's speed
//! becomes the new normal within seconds), and `dropped` the share of calls that timed out or
//! could not connect. So:
//!
//! - a healthy service whose limit is in use grows by a quarter per interval (from 4 to 256 in
//!   under two seconds), and an unused limit does not grow;
//! - a service that answers more than twice as slowly as its baseline shrinks its limit, down to
//!   half per interval (plus √limit), towards its `min`;
//! - a hanging service (every call times out) halves the limit per interval, to its `min` within
//!   a second;
//! - a service that drops a share `f` of its calls under load settles where both terms balance,
//!   near `(2 / f)²` (204 at 14%, 16 at 50%).
//!
//! This is the gradient family of Netflix's concurrency-limits (Gradient2: a long-term baseline
//! against the current latency, plus a √limit queue allowance) and of Envoy's adaptive concurrency
//! filter, reduced to what one BFF needs and combined with AIMD's multiplicative decrease on
//! drops. No maintained crate implements it for tokio; this is about a hundred lines with one
//! short mutex section per call.

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
    /// Start of the current interval (set by its first event).
    interval_start: Option<Instant>,
    answered: u32,
    dropped: u32,
    latency_sum: Duration,
    /// Most calls in flight at once during the interval.
    peak: u32,
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
            interval_start: None,
            answered: 0,
            dropped: 0,
            latency_sum: Duration::ZERO,
            peak: 0,
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
        let start = *state.interval_start.get_or_insert(now);
        if now.saturating_duration_since(start) >= INTERVAL {
            self.update(&mut state);
            state.interval_start = Some(now);
        }
    }

    fn update(&self, state: &mut State) {
        let total = state.answered + state.dropped;
        if total == 0 {
            return;
        }
        let dropped = f64::from(state.dropped) / f64::from(total);
        let mut gradient = 1.0;
        if state.answered > 0 {
            let latency = state.latency_sum / state.answered;
            let baseline = match state.baseline {
                Some(b) => b.mul_f64(1.01).min(latency),
                None => latency,
            };
            state.baseline = Some(baseline);
            let (b, l) = (baseline.max(FLOOR).as_secs_f64(), latency.max(FLOOR).as_secs_f64());
            gradient = (TOLERANCE * b / l).clamp(0.5, 1.0);
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
    async fn the_limit_shrinks_when_latency_rises_and_recovers_after() {
        let a = Adaptive::new(256, 4, 1024);
        load(&a, 10, 300, Duration::from_millis(45), 0.0).await;
        let healthy = a.limit();
        // The service becomes five times slower: the limit about halves per interval, towards its
        // minimum.
        let slow = load(&a, 20, 300, Duration::from_millis(225), 0.0).await;
        assert!(slow[2] < healthy / 2, "{healthy} then {slow:?}");
        assert!(slow.windows(2).all(|w| w[1] <= w[0]), "{slow:?}");
        assert!(*slow.last().unwrap() <= 8, "{slow:?}");
        // Fast again: it grows back.
        let recovered = load(&a, 30, 300, Duration::from_millis(45), 0.0).await;
        assert!(*recovered.last().unwrap() >= 250, "{recovered:?}");
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
