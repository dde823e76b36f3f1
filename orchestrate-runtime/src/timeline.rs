//! What happened to each call of one request: when it started and ended, how many attempts it
//! made and how it ended. The executor records it; telemetry, `Server-Timing` and tests read it.

use crate::error::CallErrorKind;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

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
    /// Downstream status of the last attempt, if one answered.
    pub status: Option<u16>,
    /// How the call ended.
    pub outcome: CallOutcome,
    /// Whether an optional call's failure was replaced by its fallback.
    pub fallback: bool,
}

impl CallRecord {
    /// Call `call` of `service`, from `start` to `end` (from the start of the request), ended as
    /// `outcome`, with no attempt counted, no status and no fallback.
    pub fn new(
        call: &'static str,
        service: &'static str,
        start: Duration,
        end: Duration,
        outcome: CallOutcome,
    ) -> Self {
        Self { call, service, start, end, attempts: 0, status: None, outcome, fallback: false }
    }

    /// How long the call took.
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }

    /// How the call ended, as metrics, spans and `Server-Timing` name it: `ok`, `failed`,
    /// `timed_out` (its attempt's timeout or the endpoint deadline), `shed` (refused by the
    /// service's concurrency limit, no request made), `fallback` (an optional call's failure
    /// replaced by its fallback), `skipped` or `cancelled`.
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
        match self.outcome {
            CallOutcome::Ok => "ok",
            CallOutcome::Failed(kind) if kind.is_shed() => "shed",
            CallOutcome::Failed(_) if self.fallback => "fallback",
            CallOutcome::Failed(kind) if kind.is_timeout() => "timed_out",
            CallOutcome::Failed(_) => "failed",
            CallOutcome::Skipped => "skipped",
            CallOutcome::Cancelled => "cancelled",
        }
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
}

impl Tally {
    /// A zeroed tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `attempts` more requests, the last of which answered `status`.
    pub fn add(&self, attempts: u32, status: Option<u16>) {
        self.attempts.fetch_add(attempts, Ordering::Relaxed);
        if let Some(status) = status {
            self.status.store(u32::from(status), Ordering::Relaxed);
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
}
