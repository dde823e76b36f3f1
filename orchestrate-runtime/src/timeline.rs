//! What happened to each call of one request: when it started and ended, how many attempts it
//! made and when each ran, how it ended, and the state its service's circuit breaker was left in.
//! The executor records it; telemetry, `Server-Timing`, the recent requests of `/_orchestrate` and
//! tests read it.

use crate::error::CallErrorKind;
use crate::service::BreakerState;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call succeeded.
    Ok,
    /// The call failed; for an optional call the field became `None` or its fallback.
    Failed(CallErrorKind),
    /// Not made: its `when` condition was false.
    Skipped,
    /// Still in flight when the request ended (a required call failed or the deadline passed).
    Cancelled,
}

/// How a call ended, in the words of the operator's views: metrics and spans (`outcome`),
/// `Server-Timing`, and the recent requests of `/_orchestrate`.
///
/// One flat list, so that a way of ending that a feature adds (a call shed by the runtime's own
/// limits, an answer served from the cache) is one more variant here and one more arm in
/// [`CallRecord::ending`]; every view then shows it.
///
/// ```
/// use orchestrate_runtime::timeline::Ending;
/// assert_eq!(Ending::TimedOut.as_str(), "timed_out");
/// assert!(Ending::Failed.is_failure() && Ending::Fallback.is_failure() && !Ending::Skipped.is_failure());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ending {
    /// The call succeeded.
    Ok,
    /// The call's answer came from the response cache (fresh, or stale while it is refreshed or
    /// while the service fails): no request was made for it.
    Cached,
    /// The call failed (for an optional call: its field became `None`).
    Failed,
    /// The call's attempt timed out or the endpoint's deadline passed during it.
    TimedOut,
    /// Refused by the BFF's own concurrency limit for the service (its bulkhead): no request
    /// was made, and the service is not counted as failing.
    Shed,
    /// An optional call failed and its field got its `fallback` value.
    Fallback,
    /// Not made: its `when` condition was false.
    Skipped,
    /// Still in flight when the request ended (a required call failed or the deadline passed).
    Cancelled,
}

impl Ending {
    /// Every way of ending, in the order the views list them.
    ///
    /// ```
    /// use orchestrate_runtime::timeline::Ending;
    /// assert_eq!(Ending::ALL.first(), Some(&Ending::Ok));
    /// ```
    pub const ALL: &[Ending] = &[
        Self::Ok,
        Self::Cached,
        Self::Failed,
        Self::TimedOut,
        Self::Shed,
        Self::Fallback,
        Self::Skipped,
        Self::Cancelled,
    ];

    /// Snake-case name: `ok`, `cached`, `failed`, `timed_out`, `shed`, `fallback`, `skipped`, `cancelled`.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::timeline::Ending::Cancelled.as_str(), "cancelled");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Cached => "cached",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Shed => "shed",
            Self::Fallback => "fallback",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the call failed, whatever replaced its value.
    ///
    /// ```
    /// assert!(!orchestrate_runtime::timeline::Ending::Cancelled.is_failure());
    /// ```
    pub const fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::TimedOut | Self::Shed | Self::Fallback)
    }
}

/// When the attempts of one call ran, as offsets from the start of the request: all of them up to
/// four, and beyond four the first three and the last (the one that decided the call). Fixed
/// size (36 bytes, no allocation), so every [`CallRecord`] carries it.
///
/// Recorded for calls the executor sends itself. Fan-out calls (several requests at once) and
/// custom logic (`with = ..`) record none: their [`CallRecord::attempts`] still counts every
/// request.
///
/// ```
/// use orchestrate_runtime::timeline::AttemptTimes;
/// use std::time::Duration;
/// let ms = Duration::from_millis;
/// let mut times = AttemptTimes::new();
/// for i in 0..6 {
///     times.push(ms(100 * i), ms(100 * i + 50));
/// }
/// let kept: Vec<_> = times.iter().map(|(start, _)| start.as_millis()).collect();
/// assert_eq!(kept, [0, 100, 200, 500]);
/// assert_eq!(times.len(), 4);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptTimes {
    /// Start and end of each kept attempt, in microseconds from the start of the request.
    spans: [[u32; 2]; AttemptTimes::CAPACITY],
    len: u8,
}

impl AttemptTimes {
    /// Attempts kept.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::timeline::AttemptTimes::CAPACITY, 4);
    /// ```
    pub const CAPACITY: usize = 4;

    /// No attempt.
    ///
    /// ```
    /// assert!(orchestrate_runtime::timeline::AttemptTimes::new().is_empty());
    /// ```
    pub const fn new() -> Self {
        Self { spans: [[0; 2]; Self::CAPACITY], len: 0 }
    }

    /// Adds an attempt that ran from `start` to `end` (offsets from the start of the request);
    /// when full, it replaces the last one kept.
    ///
    /// ```
    /// use orchestrate_runtime::timeline::AttemptTimes;
    /// use std::time::Duration;
    /// let mut times = AttemptTimes::new();
    /// times.push(Duration::from_millis(2), Duration::from_millis(9));
    /// assert_eq!(times.iter().next(), Some((Duration::from_millis(2), Duration::from_millis(9))));
    /// ```
    pub fn push(&mut self, start: Duration, end: Duration) {
        let span = [micros(start), micros(end.max(start))];
        let len = usize::from(self.len);
        if len < Self::CAPACITY {
            self.spans[len] = span;
            self.len += 1;
        } else {
            self.spans[Self::CAPACITY - 1] = span;
        }
    }

    /// Attempts kept (at most [`CAPACITY`](Self::CAPACITY)).
    ///
    /// ```
    /// use orchestrate_runtime::timeline::AttemptTimes;
    /// let mut times = AttemptTimes::new();
    /// (0..9).for_each(|_| times.push(Default::default(), Default::default()));
    /// assert_eq!(times.len(), AttemptTimes::CAPACITY);
    /// ```
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether no attempt was kept.
    ///
    /// ```
    /// assert!(orchestrate_runtime::timeline::AttemptTimes::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The kept attempts' start and end, in order.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::timeline::AttemptTimes::new().iter().count(), 0);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (Duration, Duration)> + '_ {
        self.spans[..self.len()]
            .iter()
            .map(|[start, end]| (Duration::from_micros(u64::from(*start)), Duration::from_micros(u64::from(*end))))
    }
}

/// Microseconds, saturating at `u32::MAX` (71 minutes).
fn micros(duration: Duration) -> u32 {
    // In `u64` (a `u128` from `as_micros` costs a wide multiplication per attempt).
    let micros = duration.as_secs().saturating_mul(1_000_000).saturating_add(u64::from(duration.subsec_micros()));
    u32::try_from(micros).unwrap_or(u32::MAX)
}

/// When the attempts of one call ran, as the client saw them (instants; the same first-three-
/// and-the-last rule as [`AttemptTimes`], which the executor turns it into).
///
/// ```
/// use orchestrate_runtime::timeline::AttemptLog;
/// use std::time::Duration;
/// use tokio::time::Instant;
/// let origin = Instant::now();
/// let mut log = AttemptLog::new();
/// log.push(origin + Duration::from_millis(5), origin + Duration::from_millis(25));
/// let times = log.since(origin);
/// assert_eq!(times.iter().next(), Some((Duration::from_millis(5), Duration::from_millis(25))));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AttemptLog {
    spans: [Option<(Instant, Instant)>; AttemptTimes::CAPACITY],
    len: u8,
}

impl AttemptLog {
    /// No attempt.
    ///
    /// ```
    /// let log = orchestrate_runtime::timeline::AttemptLog::new();
    /// assert!(log.since(tokio::time::Instant::now()).is_empty());
    /// ```
    pub const fn new() -> Self {
        Self { spans: [None; AttemptTimes::CAPACITY], len: 0 }
    }

    /// Adds an attempt that ran from `started` to `ended`; when full, it replaces the last one
    /// kept.
    ///
    /// ```
    /// use orchestrate_runtime::timeline::AttemptLog;
    /// let (mut log, now) = (AttemptLog::new(), tokio::time::Instant::now());
    /// (0..5).for_each(|_| log.push(now, now));
    /// assert_eq!(log.since(now).len(), 4);
    /// ```
    pub fn push(&mut self, started: Instant, ended: Instant) {
        let len = usize::from(self.len);
        if len < AttemptTimes::CAPACITY {
            self.spans[len] = Some((started, ended));
            self.len += 1;
        } else {
            self.spans[AttemptTimes::CAPACITY - 1] = Some((started, ended));
        }
    }

    /// The attempts as offsets from `origin` (the start of the request).
    ///
    /// ```
    /// use orchestrate_runtime::timeline::AttemptLog;
    /// use std::time::Duration;
    /// let (mut log, origin) = (AttemptLog::new(), tokio::time::Instant::now());
    /// log.push(origin + Duration::from_millis(3), origin + Duration::from_millis(4));
    /// assert_eq!(log.since(origin).iter().next().unwrap().0, Duration::from_millis(3));
    /// ```
    pub fn since(&self, origin: Instant) -> AttemptTimes {
        self.since_known(origin, None)
    }

    /// [`since`](Self::since), with an instant whose offset the caller already has (`at` is
    /// `offset` after `origin`: usually the call's end, which its last attempt shares), so that
    /// only the other instants are subtracted.
    pub(crate) fn since_known(&self, origin: Instant, known: Option<(Instant, Duration)>) -> AttemptTimes {
        let offset = |at: Instant| match known {
            Some((known, offset)) if known == at => offset,
            _ => at.saturating_duration_since(origin),
        };
        let mut times = AttemptTimes::new();
        for &(started, ended) in self.spans[..usize::from(self.len)].iter().flatten() {
            times.push(offset(started), offset(ended));
        }
        times
    }
}

/// One call of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallRecord {
    /// The field name of the call.
    pub call: &'static str,
    /// The service called.
    pub service: &'static str,
    /// Start, from the start of the request.
    pub start: Duration,
    /// End, from the start of the request.
    pub end: Duration,
    /// Attempts made (0 when no request was sent).
    pub attempts: u32,
    /// When the attempts ran (see [`AttemptTimes`] for which are kept, and which calls keep none).
    pub attempt_times: AttemptTimes,
    /// Downstream status of the last attempt, if one answered.
    pub status: Option<u16>,
    /// How the call ended.
    pub outcome: CallOutcome,
    /// Whether an optional call's failure was replaced by its fallback.
    pub fallback: bool,
    /// Whether its answer came from the response cache.
    pub cached: bool,
    /// The state the service's circuit breaker was in when the call ended (`None` when the
    /// service has no breaker, or the call never reached it).
    pub breaker: Option<BreakerState>,
    /// Which instance of the service answered, by its position in the service's instances.
    /// `None` while every service has a single base URL (balancing over several instances
    /// will set it).
    pub instance: Option<u16>,
    /// Hedges sent besides the attempts (`hedge(..)`; 0 for a call without).
    pub hedges: u32,
}

impl CallRecord {
    /// Call `call` of `service`, from `start` to `end` (from the start of the request), ended as
    /// `outcome`, with no attempt counted, no status, no fallback and no breaker.
    pub fn new(
        call: &'static str,
        service: &'static str,
        start: Duration,
        end: Duration,
        outcome: CallOutcome,
    ) -> Self {
        Self {
            call,
            service,
            start,
            end,
            attempts: 0,
            attempt_times: AttemptTimes::new(),
            status: None,
            outcome,
            fallback: false,
            cached: false,
            breaker: None,
            instance: None,
            hedges: 0,
        }
    }

    /// How long the call took.
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }

    /// How the call ended, as the operator's views name it (see [`Ending`]): a failure replaced
    /// by a fallback is [`Ending::Fallback`], a failure by a timeout (the attempt's or the
    /// endpoint's deadline) [`Ending::TimedOut`].
    ///
    /// ```
    /// use orchestrate_runtime::timeline::Ending;
    /// use orchestrate_runtime::{CallErrorKind, CallOutcome, CallRecord};
    /// use std::time::Duration;
    /// let failed = CallOutcome::Failed(CallErrorKind::DeadlineExceeded);
    /// let record = CallRecord::new("tax", "tax", Duration::ZERO, Duration::from_millis(5), failed);
    /// assert_eq!(record.ending(), Ending::TimedOut);
    /// ```
    pub fn ending(&self) -> Ending {
        match self.outcome {
            CallOutcome::Ok if self.cached => Ending::Cached,
            CallOutcome::Ok => Ending::Ok,
            CallOutcome::Failed(kind) if kind.is_shed() => Ending::Shed,
            CallOutcome::Failed(_) if self.fallback => Ending::Fallback,
            CallOutcome::Failed(kind) if kind.is_timeout() => Ending::TimedOut,
            CallOutcome::Failed(_) => Ending::Failed,
            CallOutcome::Skipped => Ending::Skipped,
            CallOutcome::Cancelled => Ending::Cancelled,
        }
    }

    /// How the call ended, as metrics, spans and `Server-Timing` name it: `ok`, `cached`, `failed`,
    /// `timed_out` (its attempt's timeout or the endpoint deadline), `shed` (refused by the
    /// service's concurrency limit, no request made), `fallback` (an optional call's failure
    /// replaced by its fallback), `skipped` or `cancelled` ([`Ending::as_str`]).
    ///
    /// ```
    /// use orchestrate_runtime::{CallErrorKind, CallOutcome, CallRecord};
    /// use std::time::Duration;
    /// let failed = CallOutcome::Failed(CallErrorKind::Timeout);
    /// let mut record = CallRecord::new("shipping", "shipping", Duration::ZERO, Duration::from_millis(5), failed);
    /// assert_eq!(record.outcome_label(), "timed_out");
    /// record.fallback = true;
    /// assert_eq!(record.outcome_label(), "fallback");
    /// ```
    pub fn outcome_label(&self) -> &'static str {
        self.ending().as_str()
    }
}

/// Every call of one request, in the order they finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeline {
    /// The calls.
    pub calls: Vec<CallRecord>,
    /// Total time of the request's graph.
    pub total: Duration,
}

impl Timeline {
    /// The calls of a request that took `total`.
    pub fn new(calls: Vec<CallRecord>, total: Duration) -> Self {
        Self { calls, total }
    }

    /// The record of the call named `call`.
    pub fn get(&self, call: &str) -> Option<&CallRecord> {
        self.calls.iter().find(|r| r.call == call)
    }
}

/// Counts what custom logic sent, for the request's timeline (used by the generated code).
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Tally {
    attempts: AtomicU32,
    status: AtomicU32,
    /// The breaker state after the last request: 0 none, else `BreakerState::as_gauge() + 1`.
    breaker: AtomicU8,
}

impl Tally {
    /// A zeroed tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `attempts` more requests, the last of which answered `status` and left the
    /// service's breaker in state `breaker`.
    pub fn add(&self, attempts: u32, status: Option<u16>, breaker: Option<BreakerState>) {
        self.attempts.fetch_add(attempts, Ordering::Relaxed);
        if let Some(status) = status {
            self.status.store(u32::from(status), Ordering::Relaxed);
        }
        if let Some(state) = breaker {
            self.breaker.store(state.as_gauge() + 1, Ordering::Relaxed);
        }
    }

    /// Requests sent so far.
    pub fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// Status of the last response, if any.
    pub fn last_status(&self) -> Option<u16> {
        u16::try_from(self.status.load(Ordering::Relaxed)).ok().filter(|s| *s != 0)
    }

    /// The breaker state after the last request, if any.
    pub fn breaker(&self) -> Option<BreakerState> {
        match self.breaker.load(Ordering::Relaxed) {
            1 => Some(BreakerState::Closed),
            2 => Some(BreakerState::HalfOpen),
            3 => Some(BreakerState::Open),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_with_a_known_end_are_those_measured_from_the_origin() {
        let origin = Instant::now();
        let mut log = AttemptLog::new();
        log.push(origin + Duration::from_millis(2), origin + Duration::from_millis(7));
        log.push(origin + Duration::from_millis(9), origin + Duration::from_millis(12));
        let end = origin + Duration::from_millis(12);
        let times = log.since_known(origin, Some((end, Duration::from_millis(12))));
        assert_eq!(times, log.since(origin));
        let spans: Vec<_> = times.iter().collect();
        assert_eq!(
            spans,
            [
                (Duration::from_millis(2), Duration::from_millis(7)),
                (Duration::from_millis(9), Duration::from_millis(12))
            ]
        );
    }
}
