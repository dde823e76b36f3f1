//! Circuit breaker per service: closed → open → half-open with a fixed number of probes.
//!
//! Hand-written on purpose: `failsafe` and `recloser` let every call through while half-open (the
//! design wants exactly `probes`), and `tower-resilience` takes an async mutex per call. This one
//! is a short `std::sync::Mutex` section per attempt, never held across an `await`.
//!
//! - **Closed**: every call passes. The `failures`-th failure within `within` opens the breaker.
//! - **Open**: every call fails at once with [`CallErrorKind::BreakerOpen`]; no request is made.
//! - **Half-open** (from `open_for` after opening): exactly `probes` calls pass, the others fail
//!   fast. When every probe succeeds the breaker closes; the first probe failure opens it again
//!   for another `open_for`. A probe that ends neither way (cancelled, cut by the endpoint
//!   deadline) gives its place to the next call.
//!
//! Failures are what says the service is unwell: 5xx, timeouts, connection and transport errors,
//! oversized answers. A 4xx is the caller's fault and counts as the service answering; the
//! endpoint's own deadline and cancellations count for nothing. An outcome from an attempt admitted
//! before the last state change is ignored, so a slow answer from the closed period cannot close a
//! breaker that opened meanwhile.

use crate::error::{CallError, CallErrorKind};
use crate::service::BreakerPolicy;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

/// The state of a service's circuit breaker, for health checks and metrics.
///
/// ```
/// use orchestrate_runtime::{BreakerState, Runtime, ServiceSpec};
/// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://127.0.0.1:9")];
/// let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
/// // A service without a breaker reports `Closed`.
/// assert_eq!(runtime.service("cart").unwrap().breaker_state(), BreakerState::Closed);
/// assert_eq!(BreakerState::HalfOpen.as_str(), "half_open");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls pass; failures are being counted.
    Closed,
    /// Calls fail at once without a request.
    Open,
    /// A limited number of probe calls pass to test the service.
    HalfOpen,
}

impl BreakerState {
    /// Snake-case name for metrics labels and health reports.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::BreakerState::Open.as_str(), "open");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// The gauge value used by metrics: 0 closed, 1 half-open, 2 open.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::BreakerState::Open.as_gauge(), 2);
    /// ```
    pub const fn as_gauge(self) -> u8 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

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

#[derive(Debug)]
struct State {
    mode: Mode,
    /// Bumped on every state change; outcomes of attempts admitted in another epoch are ignored.
    epoch: u64,
    /// Times of the most recent failures while closed, at most `failures` of them.
    failures: VecDeque<Instant>,
}

/// The breaker of one service.
#[derive(Debug)]
pub(crate) struct Breaker {
    service: &'static str,
    policy: BreakerPolicy,
    state: Mutex<State>,
}

/// Leave to make one attempt; report its verdict with [`Ticket::record`]. Dropped unrecorded
/// (the attempt was cancelled), it counts as [`Verdict::Neutral`].
#[derive(Debug)]
pub(crate) struct Ticket<'a> {
    breaker: &'a Breaker,
    epoch: u64,
    recorded: bool,
}

impl Breaker {
    pub(crate) fn new(service: &'static str, mut policy: BreakerPolicy) -> Self {
        // `services!` and the configuration file require both to be at least 1; a hand-built
        // policy with 0 probes would never close again.
        policy.failures = policy.failures.max(1);
        policy.probes = policy.probes.max(1);
        let failures = VecDeque::with_capacity(policy.failures as usize);
        Self { service, policy, state: Mutex::new(State { mode: Mode::Closed, epoch: 0, failures }) }
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
        match state.mode {
            Mode::Closed => BreakerState::Closed,
            Mode::Open { .. } => BreakerState::Open,
            Mode::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Leave for one attempt, or [`CallErrorKind::BreakerOpen`].
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

    fn record(&self, epoch: u64, verdict: Verdict) {
        let mut state = self.lock();
        if state.epoch != epoch {
            return;
        }
        let (policy, service) = (self.policy, self.service);
        // The clock is read only where time matters: a success of a closed breaker needs none.
        let open = |state: &mut State, now: Instant| {
            state.mode = Mode::Open { until: now + policy.open_for };
            state.epoch += 1;
            state.failures.clear();
            crate::telemetry::metrics::breaker(service, BreakerState::Open.as_gauge());
            tracing::warn!(service, open_for = ?policy.open_for, "circuit breaker opened");
        };
        match (&mut state.mode, verdict) {
            (Mode::Closed, Verdict::Failure) => {
                let now = Instant::now();
                state.failures.push_back(now);
                while state.failures.len() > policy.failures as usize {
                    state.failures.pop_front();
                }
                let window_start = now.checked_sub(policy.within);
                state.failures.retain(|&at| window_start.is_none_or(|start| at > start));
                if state.failures.len() >= policy.failures as usize {
                    open(&mut state, now);
                }
            }
            (Mode::HalfOpen { succeeded, .. }, Verdict::Success) => {
                *succeeded += 1;
                if *succeeded >= policy.probes {
                    state.mode = Mode::Closed;
                    state.epoch += 1;
                    state.failures.clear();
                    crate::telemetry::metrics::breaker(service, BreakerState::Closed.as_gauge());
                    tracing::info!(service, "circuit breaker closed");
                }
            }
            (Mode::HalfOpen { .. }, Verdict::Failure) => open(&mut state, Instant::now()),
            (Mode::HalfOpen { admitted, .. }, Verdict::Neutral) => *admitted = admitted.saturating_sub(1),
            _ => {}
        }
    }
}

impl Ticket<'_> {
    /// Reports the attempt's verdict.
    pub(crate) fn record(mut self, verdict: Verdict) {
        self.recorded = true;
        self.breaker.record(self.epoch, verdict);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.breaker.record(self.epoch, Verdict::Neutral);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const POLICY: BreakerPolicy = BreakerPolicy::new(3, Duration::from_secs(10), Duration::from_secs(5), 2);

    fn fail(b: &Breaker) {
        b.admit().unwrap().record(Verdict::Failure);
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
            b.admit().unwrap().record(Verdict::of(&not_found));
            b.admit().unwrap().record(Verdict::of(&deadline));
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
        slow.record(Verdict::Success);
        let first = b.admit().unwrap();
        let second = b.admit().unwrap();
        assert_eq!(b.admit().unwrap_err().kind(), CallErrorKind::BreakerOpen);
        drop(second); // cancelled: its place goes to the next call
        let third = b.admit().unwrap();
        first.record(Verdict::Success);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        third.record(Verdict::Success);
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
