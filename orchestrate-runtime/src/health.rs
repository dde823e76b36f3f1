//! What a service's client has seen lately, for `/health`, `/metrics` and dashboards.

use crate::breaker::{BreakerState, Verdict};
use crate::window::Window;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How far back [`ServiceHealth`]'s counts look.
pub const RECENT: Duration = Duration::from_secs(60);

const ATTEMPTS: usize = 0;
const FAILURES: usize = 1;

/// A snapshot of one downstream service as its client sees it.
///
/// ```
/// use orchestrate_runtime::{BreakerState, Runtime, ServiceSpec};
/// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://127.0.0.1:9").with_max_in_flight(8)];
/// let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
/// let health = runtime.service("cart").unwrap().health();
/// assert_eq!((health.service, health.breaker, health.in_flight, health.max_in_flight), ("cart", BreakerState::Closed, 0, 8));
/// assert_eq!(health.error_rate(), 0.0);
/// assert!(health.last_success.is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ServiceHealth {
    /// The service's name.
    pub service: &'static str,
    /// Its circuit breaker's state (`Closed` when it has none).
    pub breaker: BreakerState,
    /// Calls in flight now (counted by the bulkhead).
    pub in_flight: u32,
    /// The concurrency limit now (the adaptive limit's current value, or the fixed one).
    pub max_in_flight: u32,
    /// Attempts that got an answer or failed over the last [`RECENT`] (our own cancellations
    /// and deadline cuts are not counted).
    pub recent_attempts: u64,
    /// Those of them that failed as the breaker counts failures (5xx, timeout, connection,
    /// transport, oversized answer).
    pub recent_failures: u64,
    /// When the service last answered well (2xx, or a 4xx that was the caller's fault).
    pub last_success: Option<Instant>,
}

impl ServiceHealth {
    /// `recent_failures / recent_attempts`, 0 when there were no attempts.
    ///
    /// ```
    /// # use orchestrate_runtime::{Runtime, ServiceSpec};
    /// # const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://127.0.0.1:9")];
    /// # let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
    /// let health = runtime.service("cart").unwrap().health();
    /// assert_eq!(health.error_rate(), 0.0, "no attempts yet");
    /// ```
    pub fn error_rate(&self) -> f64 {
        if self.recent_attempts == 0 { 0.0 } else { self.recent_failures as f64 / self.recent_attempts as f64 }
    }
}

/// Counters behind [`ServiceHealth`].
#[derive(Debug)]
pub(crate) struct Stats {
    inner: Mutex<(Window<2>, Option<Instant>)>,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self { inner: Mutex::new((Window::new(RECENT), None)) }
    }

    /// Counts an attempt that ended at `now` (the caller's clock read).
    pub(crate) fn record(&self, verdict: Verdict, now: Instant) {
        if verdict == Verdict::Neutral {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.0.add(now, ATTEMPTS, 1);
        match verdict {
            Verdict::Failure => inner.0.add(now, FAILURES, 1),
            _ => inner.1 = Some(now),
        }
    }

    /// `(attempts, failures, last success)`.
    pub(crate) fn snapshot(&self) -> (u64, u64, Option<Instant>) {
        let inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let [attempts, failures] = inner.0.sums(Instant::now());
        (attempts, failures, inner.1)
    }
}
