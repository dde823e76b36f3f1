//! Retries of one call: which failures are worth another attempt, how long to wait before it, and
//! never past the endpoint's deadline.
//!
//! A call is retried only when its [`CallPolicy`] says repeating it is safe (an idempotent method,
//! custom logic marked `idempotent`, or an `Idempotency-Key`, which [`Outgoing`] sends unchanged on
//! every attempt) and its retry policy has attempts left. Then a failure is retried when
//! [`RetryOn`] names it: 5xx, an attempt's timeout, a connection or transport error, and 429 only
//! when the service says so; any other 4xx, a decoding failure, an oversized answer or the
//! endpoint's own deadline never are.
//!
//! The wait before attempt `n` is drawn uniformly from `[0, min(backoff × 2^(n-2), max_backoff)]`
//! ("full jitter", which spreads the retries of many callers instead of synchronising them); after
//! a 429 it is at least the service's `Retry-After`. A wait that would reach the deadline is not
//! taken: the call ends with its last failure, which the caller reports as it is (a 429 keeps its
//! `Retry-After`). Each attempt gets the smaller of the call's timeout and the time left.
//!
//! On top of that the service's [`RetryBudget`](crate::RetryBudget) caps retries at a share of its
//! calls over a sliding window, so that retries cannot multiply the load on a service that is
//! already failing.
//!
//! Hand-written, about sixty lines: `reqwest-retry` retries `POST` and knows no deadline, and
//! `backon`'s loop owns the attempt future and decides alone, whereas here the step between two
//! attempts must consult the deadline, the downstream's `Retry-After`, the retry budget and the
//! circuit breaker, and report each attempt to the breaker before the next is admitted. That step
//! is the whole loop, so a crate would add a dependency without removing code.
//!
//! [`Outgoing`]: crate::Outgoing
//! [`RetryOn`]: crate::RetryOn

mod budget;

pub(crate) use budget::Budget;

use crate::error::{CallError, CallErrorKind};
use crate::service::{RetryOn, RetryPolicy};
use http::{HeaderValue, StatusCode};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// How one call behaves: the attempt timeout, the retry policy in force and whether repeating the
/// request is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallPolicy {
    /// Per-attempt timeout (each attempt gets the smaller of this and the time left).
    pub timeout: Duration,
    /// Retries in force for this call.
    pub retry: RetryPolicy,
    /// Whether the request may be repeated (idempotent method or idempotency key).
    pub retryable: bool,
}

/// The retry schedule of one call.
#[derive(Debug)]
pub(crate) struct Schedule<'a> {
    policy: &'a CallPolicy,
    deadline: Instant,
    /// Attempts started so far.
    attempt: u32,
}

impl<'a> Schedule<'a> {
    pub(crate) fn new(policy: &'a CallPolicy, deadline: Instant) -> Self {
        Self { policy, deadline, attempt: 1 }
    }

    /// Whether another attempt could follow the current one.
    pub(crate) fn has_more(&self) -> bool {
        self.policy.retryable && self.attempt < self.policy.retry.attempts
    }

    /// The wait before the next attempt after `error`, or `None` when the call ends with it.
    pub(crate) fn next_wait(&mut self, error: &CallError, now: Instant) -> Option<Duration> {
        if !self.has_more() || !is_retried(self.policy.retry.on, error) {
            return None;
        }
        let mut wait = full_jitter(self.policy.retry.backoff_cap(self.attempt + 1));
        if error.http_status() == Some(StatusCode::TOO_MANY_REQUESTS)
            && let Some(asked) = error.retry_after().and_then(|value| retry_after(value, SystemTime::now()))
        {
            wait = wait.max(asked);
        }
        if now.checked_add(wait).is_none_or(|resume| resume >= self.deadline) {
            return None;
        }
        self.attempt += 1;
        Some(wait)
    }
}

/// Whether `on` retries `error`.
pub(crate) fn is_retried(on: RetryOn, error: &CallError) -> bool {
    match error.kind() {
        CallErrorKind::Status => match error.http_status() {
            Some(StatusCode::TOO_MANY_REQUESTS) => on.too_many_requests,
            Some(status) => status.is_server_error() && on.server_errors,
            None => false,
        },
        CallErrorKind::Timeout => on.timeouts,
        CallErrorKind::Connect | CallErrorKind::Transport => on.connect_errors,
        _ => false,
    }
}

/// A uniformly random wait in `[0, cap]`.
pub(crate) fn full_jitter(cap: Duration) -> Duration {
    let cap = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=cap))
}

/// The wait a `Retry-After` asks for: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::RetryPolicy;

    fn policy(retryable: bool) -> CallPolicy {
        CallPolicy {
            timeout: Duration::from_millis(100),
            retry: RetryPolicy::new(3, Duration::from_millis(100)),
            retryable,
        }
    }

    fn status(code: u16) -> CallError {
        CallError::status(StatusCode::from_u16(code).unwrap(), None)
    }

    #[test]
    fn retried_failures_follow_retry_on() {
        let on = RetryOn::DEFAULT;
        assert!(is_retried(on, &status(503)));
        assert!(is_retried(on, &CallError::new(CallErrorKind::Timeout)));
        assert!(is_retried(on, &CallError::new(CallErrorKind::Connect)));
        assert!(is_retried(on, &CallError::new(CallErrorKind::Transport)));
        for never in [400, 401, 404, 409, 429] {
            assert!(!is_retried(on, &status(never)), "{never}");
        }
        for kind in [CallErrorKind::DeadlineExceeded, CallErrorKind::Decode, CallErrorKind::BodyTooLarge] {
            assert!(!is_retried(on, &CallError::new(kind)), "{kind:?}");
        }
        assert!(is_retried(on.with_too_many_requests(true), &status(429)));
        assert!(!is_retried(on.with_server_errors(false), &status(500)));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_stay_within_the_doubling_cap_and_stop_after_the_attempts() {
        let p = policy(true);
        let now = Instant::now();
        let mut schedule = Schedule::new(&p, now + Duration::from_secs(10));
        let first = schedule.next_wait(&status(500), now).unwrap();
        let second = schedule.next_wait(&status(500), now).unwrap();
        assert!(first <= Duration::from_millis(100), "{first:?}");
        assert!(second <= Duration::from_millis(200), "{second:?}");
        assert_eq!(schedule.next_wait(&status(500), now), None, "three attempts in all");
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_retried_when_repeating_is_unsafe_or_the_wait_reaches_the_deadline() {
        let unsafe_post = policy(false);
        let now = Instant::now();
        assert_eq!(Schedule::new(&unsafe_post, now + Duration::from_secs(10)).next_wait(&status(500), now), None);
        let p = policy(true);
        assert_eq!(Schedule::new(&p, now).next_wait(&status(500), now), None, "no time left");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after(&HeaderValue::from_static("2"), now), Some(Duration::from_secs(2)));
        let date = HeaderValue::from_static("Sun, 06 Nov 1994 08:49:40 GMT");
        assert_eq!(retry_after(&date, now), Some(Duration::from_secs(3)));
        let past = HeaderValue::from_static("Sun, 06 Nov 1994 08:49:00 GMT");
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after(&HeaderValue::from_static("soon"), now), None);
    }
}
