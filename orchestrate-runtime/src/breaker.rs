//! Circuit breaker per service: closed → open → half-open with a fixed number of probes.
//!
//! Hand-written on purpose: `failsafe` and `recloser` let every call through while half-open (the
//! design wants exactly `probes`), and `tower-resilience` takes an async mutex per call. This one
//! is a short `std::sync::Mutex` section per call, never held across an `await`.
//!
//! The breaker judges **calls**, not attempts: a call is admitted once, and reports how it ended
//! after its retries, so a failure that a retry rescued is a success here. (Counting failed
//! attempts made retries trip the breaker of a service whose errors they were hiding: at volume a
//! 5% error rate opened it within a second and turned it into a full outage.) A retry is refused
//! once the breaker has opened meanwhile.
//!
//! - **Closed**: every call passes. It opens at the `failures`-th failed call within `within` (the
//!   count form), or (the rate form) when at least `min_calls` calls were made within `within` and
//!   at least `failure_rate` of them failed (or `slow_call_rate` of them were slower than
//!   `slow_call`).
//! - **Open**: every call fails at once with [`CallErrorKind::BreakerOpen`]; no request is made.
//! - **Half-open** (from `open_for` after opening): exactly `probes` calls pass, the others fail
//!   fast. When every probe succeeds the breaker closes; the first probe failure opens it again
//!   for another `open_for`. A probe that ends neither way (cancelled, cut by the endpoint
//!   deadline) gives its place to the next call.
//!
//! Failures are what says the service is unwell: 5xx, timeouts, connection and transport errors,
//! oversized answers. A 4xx is the caller's fault and counts as the service answering; the
//! endpoint's own deadline, cancellations and calls the BFF shed itself count for nothing. An
//! outcome from a call admitted before the last state change is ignored, so a slow answer from
//! the closed period cannot close a breaker that opened meanwhile.

use crate::error::{CallError, CallErrorKind};
pub use crate::service::BreakerState;
use crate::service::{BreakerPolicy, Trip};
use crate::window::Window;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// What one attempt says about the service's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The service answered (2xx, or a 4xx that is the caller's fault).
    Success,
    /// The service is unwell.
    Failure,
    /// Nothing learned (our own deadline, a request that never left).
    Neutral,
}

impl Verdict {
    /// Classifies the failure of one attempt (an attempt that succeeded is a
    /// [`Verdict::Success`]).
    pub(crate) fn of(error: &CallError) -> Self {
        match error.kind() {
            CallErrorKind::Timeout
            | CallErrorKind::Connect
            | CallErrorKind::Transport
            | CallErrorKind::BodyTooLarge => Self::Failure,
            CallErrorKind::Status => match error.http_status() {
                Some(status) if status.is_server_error() => Self::Failure,
                Some(_) => Self::Success,
                None => Self::Neutral,
            },
            _ => Self::Neutral,
        }
    }
}

#[derive(Debug)]
enum Mode {
    Closed,
    Open { until: Instant },
    HalfOpen { admitted: u32, succeeded: u32 },
}

/// What the closed breaker counts, by the form of its policy.
// One per service, made once and never moved: the size of the window does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Counts {
    /// The times of the most recent failed calls, at most `failures` of them.
    Failures(VecDeque<Instant>),
    /// Calls, failed calls and slow calls over the window.
    Rate(Window<3>),
}

const CALLS: usize = 0;
const FAILED: usize = 1;
const SLOW: usize = 2;

#[derive(Debug)]
struct State {
    mode: Mode,
    /// Bumped on every state change; outcomes of calls admitted in another epoch are ignored.
    epoch: u64,
    counts: Counts,
}

/// The breaker of one service.
#[derive(Debug)]
pub(crate) struct Breaker {
    service: &'static str,
    policy: BreakerPolicy,
    state: Mutex<State>,
}

/// Leave to make one call (its attempts included); report how the call ended with
/// [`Ticket::record`]. Dropped unrecorded (the call was cancelled), it counts as
/// [`Verdict::Neutral`].
#[derive(Debug)]
pub(crate) struct Ticket<'a> {
    breaker: &'a Breaker,
    epoch: u64,
    recorded: bool,
}

impl Breaker {
    pub(crate) fn new(service: &'static str, policy: BreakerPolicy) -> Self {
        // The policy's constructors and the grammar keep every count at least 1.
        let counts = Self::fresh_counts(&policy);
        Self { service, policy, state: Mutex::new(State { mode: Mode::Closed, epoch: 0, counts }) }
    }

    fn fresh_counts(policy: &BreakerPolicy) -> Counts {
        match policy.trip {
            Trip::Failures { failures } => Counts::Failures(VecDeque::with_capacity(failures.max(1) as usize)),
            _ => Counts::Rate(Window::new(policy.within)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is a few assignments.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves an open breaker whose time is up to half-open. Reads the clock only when open, so a
    /// closed breaker costs no clock read per call.
    fn refresh(&self, state: &mut State) {
        if let Mode::Open { until } = state.mode
            && Instant::now() >= until
        {
            state.mode = Mode::HalfOpen { admitted: 0, succeeded: 0 };
            state.epoch += 1;
            crate::telemetry::metrics::breaker(self.service, BreakerState::HalfOpen.as_gauge());
            tracing::info!(service = self.service, "circuit breaker half-open");
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> BreakerState {
        let mut state = self.lock();
        self.refresh(&mut state);
        state.mode.state()
    }

    /// Whether a call holding `ticket` may make another attempt: not once the breaker has opened
    /// since the call was admitted.
    pub(crate) fn allows_retry(&self, ticket: &Ticket<'_>) -> bool {
        let state = self.lock();
        !matches!(state.mode, Mode::Open { .. }) && (state.epoch == ticket.epoch || matches!(state.mode, Mode::Closed))
    }

    /// Leave for one call, or [`CallErrorKind::BreakerOpen`].
    pub(crate) fn admit(&self) -> Result<Ticket<'_>, CallError> {
        let mut state = self.lock();
        self.refresh(&mut state);
        let epoch = state.epoch;
        match &mut state.mode {
            Mode::Closed => {}
            Mode::Open { .. } => return Err(CallError::new(CallErrorKind::BreakerOpen)),
            Mode::HalfOpen { admitted, .. } => {
                if *admitted >= self.policy.probes {
                    return Err(CallError::new(CallErrorKind::BreakerOpen));
                }
                *admitted += 1;
            }
        }
        Ok(Ticket { breaker: self, epoch, recorded: false })
    }

    /// Records a call's verdict and returns the state it leaves the breaker in; `now` is when
    /// the call ended, if the caller read the clock then (it is read here only where time
    /// matters and the caller did not).
    fn record(&self, epoch: u64, verdict: Verdict, slow: bool, now: Option<Instant>) -> BreakerState {
        let now = || now.unwrap_or_else(Instant::now);
        let mut state = self.lock();
        if state.epoch != epoch {
            return state.mode.state();
        }
        let (policy, service) = (self.policy, self.service);
        let open = |state: &mut State, now: Instant| {
            state.mode = Mode::Open { until: now + policy.open_for };
            state.epoch += 1;
            state.counts = Self::fresh_counts(&policy);
            crate::telemetry::metrics::breaker(service, BreakerState::Open.as_gauge());
            tracing::warn!(service, open_for = ?policy.open_for, "circuit breaker opened");
        };
        match (&mut state.mode, verdict) {
            (Mode::Closed, Verdict::Neutral) => {}
            (Mode::Closed, _) => {
                // The clock is read only where time matters: a success of a count breaker
                // needs none.
                let trips = match (&mut state.counts, policy.trip) {
                    (Counts::Failures(times), Trip::Failures { failures }) if verdict == Verdict::Failure => {
                        let now = now();
                        times.push_back(now);
                        while times.len() > failures as usize {
                            times.pop_front();
                        }
                        let window_start = now.checked_sub(policy.within);
                        times.retain(|&at| window_start.is_none_or(|start| at > start));
                        (times.len() >= failures as usize).then_some(now)
                    }
                    (Counts::Failures(_), _) => None,
                    (Counts::Rate(window), Trip::Rate { failure_percent, min_calls, slow_call, slow_percent }) => {
                        let now = now();
                        window.add(now, CALLS, 1);
                        if verdict == Verdict::Failure {
                            window.add(now, FAILED, 1);
                        }
                        if slow && slow_call.is_some() {
                            window.add(now, SLOW, 1);
                        }
                        let [calls, failed, slowed] = window.sums(now);
                        let over = |count: u64, percent: u32| count * 100 >= calls * u64::from(percent);
                        let tripped = calls >= u64::from(min_calls)
                            && ((failed > 0 && over(failed, failure_percent))
                                || (slow_call.is_some() && slowed > 0 && over(slowed, slow_percent)));
                        tripped.then_some(now)
                    }
                    (Counts::Rate(_), _) => None,
                };
                if let Some(now) = trips {
                    open(&mut state, now);
                }
            }
            (Mode::HalfOpen { succeeded, .. }, Verdict::Success) => {
                *succeeded += 1;
                if *succeeded >= policy.probes {
                    state.mode = Mode::Closed;
                    state.epoch += 1;
                    state.counts = Self::fresh_counts(&policy);
                    crate::telemetry::metrics::breaker(service, BreakerState::Closed.as_gauge());
                    tracing::info!(service, "circuit breaker closed");
                }
            }
            (Mode::HalfOpen { .. }, Verdict::Failure) => open(&mut state, now()),
            (Mode::HalfOpen { admitted, .. }, Verdict::Neutral) => *admitted = admitted.saturating_sub(1),
            (Mode::Open { .. }, _) => {}
        }
        state.mode.state()
    }

    /// Whether a call that took `elapsed` is slow by the policy.
    pub(crate) fn is_slow(&self, elapsed: Duration) -> bool {
        matches!(self.policy.trip, Trip::Rate { slow_call: Some(over), .. } if elapsed > over)
    }
}

impl Mode {
    fn state(&self) -> BreakerState {
        match self {
            Mode::Closed => BreakerState::Closed,
            Mode::Open { .. } => BreakerState::Open,
            Mode::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

impl Ticket<'_> {
    /// [`record_at`](Self::record_at) now (the tests' form).
    #[cfg(test)]
    pub(crate) fn record(self, verdict: Verdict, slow: bool) -> BreakerState {
        self.record_at(verdict, slow, Instant::now())
    }

    /// Reports how the call ended (after its retries), whether it was slow and when it ended
    /// (the caller's last clock reading: none is taken here); returns the state it leaves the
    /// breaker in (what the call's record shows, without another look at the breaker).
    pub(crate) fn record_at(mut self, verdict: Verdict, slow: bool, ended: Instant) -> BreakerState {
        self.recorded = true;
        self.breaker.record(self.epoch, verdict, slow, Some(ended))
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.breaker.record(self.epoch, Verdict::Neutral, false, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const POLICY: BreakerPolicy = BreakerPolicy::new(3, Duration::from_secs(10), Duration::from_secs(5), 2);
    /// Opens at 50% failed calls over 10 s, once 20 calls were made.
    const RATE: BreakerPolicy = BreakerPolicy::rate(50, 20, Duration::from_secs(10), Duration::from_secs(5), 2);

    /// `n` calls, every `every`-th of them failed, spread over `over`.
    async fn calls(b: &Breaker, n: u32, every: u32, over: Duration) {
        for i in 0..n {
            let verdict = if every > 0 && i % every == every - 1 { Verdict::Failure } else { Verdict::Success };
            if let Ok(ticket) = b.admit() {
                ticket.record(verdict, false);
            }
            tokio::time::advance(over / n).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_breaker_stays_closed_under_a_background_of_errors_at_volume() {
        let b = Breaker::new("cart", RATE);
        // 3 000 calls over 10 s, 5% failing: 150 failures, far past any count threshold.
        calls(&b, 3_000, 20, Duration::from_secs(10)).await;
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_breaker_opens_once_most_calls_fail() {
        let b = Breaker::new("cart", RATE);
        calls(&b, 200, 20, Duration::from_secs(1)).await;
        assert_eq!(b.state(), BreakerState::Closed);
        // Then three calls in five fail (60%): once the healthy second has left the 10 s window,
        // the window's rate is past 50%.
        for i in 0..800 {
            let verdict = if i % 5 < 3 { Verdict::Failure } else { Verdict::Success };
            if let Ok(ticket) = b.admit() {
                ticket.record(verdict, false);
            }
            tokio::time::advance(Duration::from_millis(25)).await;
        }
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_breaker_waits_for_its_minimum_number_of_calls() {
        let b = Breaker::new("cart", RATE);
        for _ in 0..19 {
            fail(&b);
        }
        assert_eq!(b.state(), BreakerState::Closed, "19 calls, all failed, but fewer than min_calls");
        fail(&b);
        assert_eq!(b.state(), BreakerState::Open, "the 20th failed call makes the rate count");
    }

    #[tokio::test(start_paused = true)]
    async fn slow_calls_open_a_rate_breaker_that_counts_them() {
        let policy = RATE.with_slow_calls(Duration::from_millis(500), 80);
        let b = Breaker::new("cart", policy);
        assert!(b.is_slow(Duration::from_millis(501)) && !b.is_slow(Duration::from_millis(500)));
        for _ in 0..19 {
            b.admit().unwrap().record(Verdict::Success, true);
        }
        b.admit().unwrap().record(Verdict::Success, false);
        // 19 of 20 calls slow: 95% ≥ 80%, though none failed.
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_is_refused_once_the_breaker_opened_during_its_call() {
        let b = Breaker::new("cart", POLICY);
        let call = b.admit().unwrap();
        assert!(b.allows_retry(&call));
        for _ in 0..3 {
            fail(&b);
        }
        assert!(!b.allows_retry(&call));
    }

    fn fail(b: &Breaker) {
        b.admit().unwrap().record(Verdict::Failure, false);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_outside_the_window_do_not_add_up() {
        let b = Breaker::new("cart", POLICY);
        fail(&b);
        fail(&b);
        tokio::time::advance(Duration::from_secs(10)).await;
        // The first two are now exactly `within` old: out of the window.
        fail(&b);
        assert_eq!(b.state(), BreakerState::Closed);
        fail(&b);
        fail(&b);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn four_xx_and_deadline_cuts_are_not_failures() {
        let b = Breaker::new("cart", POLICY);
        let not_found = CallError::status(http::StatusCode::NOT_FOUND, None);
        let deadline = CallError::new(CallErrorKind::DeadlineExceeded);
        let too_large = CallError::new(CallErrorKind::BodyTooLarge);
        assert_eq!(Verdict::of(&not_found), Verdict::Success);
        assert_eq!(Verdict::of(&deadline), Verdict::Neutral);
        assert_eq!(Verdict::of(&too_large), Verdict::Failure);
        for _ in 0..10 {
            b.admit().unwrap().record(Verdict::of(&not_found), false);
            b.admit().unwrap().record(Verdict::of(&deadline), false);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_frees_its_place_and_stale_outcomes_are_ignored() {
        let b = Breaker::new("cart", POLICY);
        let slow = b.admit().unwrap(); // admitted while closed, answers much later
        for _ in 0..3 {
            fail(&b);
        }
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // A success from the closed period does not count as a probe.
        slow.record(Verdict::Success, false);
        let first = b.admit().unwrap();
        let second = b.admit().unwrap();
        assert_eq!(b.admit().unwrap_err().kind(), CallErrorKind::BreakerOpen);
        drop(second); // cancelled: its place goes to the next call
        let third = b.admit().unwrap();
        first.record(Verdict::Success, false);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        third.record(Verdict::Success, false);
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
