//! The pieces of one node: its value slot and the result of its call.

use crate::breaker::BreakerState;
use crate::error::CallError;
use crate::timeline::{AttemptLog, Tally};
use std::sync::OnceLock;
use tokio::time::Instant;

/// Holds a field's value once its node completes; dependents read it by shared reference.
///
/// A `OnceLock` because the node futures hold `&Slot` across awaits and the endpoint future must
/// be `Send`.
#[derive(Debug)]
pub struct Slot<V>(OnceLock<V>);

impl<V> Slot<V> {
    /// An empty slot.
    pub const fn new() -> Self {
        Self(OnceLock::new())
    }

    /// Stores the value (the first store wins; there is only one).
    pub fn set(&self, value: V) {
        let _ = self.0.set(value);
    }

    /// The value of a completed node.
    ///
    /// The driver only polls a node after its dependencies completed, so their slots are full.
    pub fn get(&self) -> &V {
        match self.0.get() {
            Some(value) => value,
            None => unreachable!("orchestrate: a node read a dependency that has not completed"),
        }
    }

    /// Moves the value out once the run is done.
    pub fn into_value(self) -> V {
        match self.0.into_inner() {
            Some(value) => value,
            None => unreachable!("orchestrate: a finished run left a field empty"),
        }
    }
}

impl<V> Default for Slot<V> {
    fn default() -> Self {
        Self::new()
    }
}

/// A finished call: its value or failure, and what the timeline should say about it.
#[derive(Debug)]
pub struct CallDone<V> {
    /// The field's value, or the failure of a required call.
    pub value: Result<V, CallError>,
    /// Requests sent.
    pub attempts: u32,
    /// Status of the last response.
    pub status: Option<u16>,
    /// The failure of an optional call whose field became `None` or its fallback.
    pub degraded: Option<CallError>,
    /// Whether the call was skipped (`when` was false).
    pub skipped: bool,
    /// Whether the fallback value was used.
    pub fallback: bool,
    /// Whether the value came from the response cache (no request was sent for it).
    pub cached: bool,
    /// When the call ended, if whoever made it read the clock then.
    pub ended: Option<Instant>,
    /// When the attempts ran (empty for fan-out and custom logic).
    pub attempt_log: AttemptLog,
    /// The state the service's circuit breaker was left in, if it has one and was reached.
    pub breaker: Option<BreakerState>,
    /// The instance of the service the last attempt went to, when it has several.
    pub instance: Option<u16>,
    /// Hedges sent (`hedge(..)`).
    pub hedges: u32,
}

impl<V> CallDone<V> {
    /// A call that answered (or failed) after `attempts` requests.
    pub fn new(value: Result<V, CallError>, attempts: u32, status: Option<u16>) -> Self {
        Self {
            value,
            attempts,
            status,
            degraded: None,
            skipped: false,
            fallback: false,
            cached: false,
            ended: None,
            attempt_log: AttemptLog::new(),
            breaker: None,
            instance: None,
            hedges: 0,
        }
    }

    /// The same, served from the response cache.
    pub fn cached(mut self) -> Self {
        self.cached = true;
        self
    }

    /// The same, ended at `ended`.
    pub fn ended_at(mut self, ended: Option<Instant>) -> Self {
        self.ended = ended;
        self
    }

    /// The same call, with when its attempts ran and the breaker state they left.
    pub fn with_attempts(mut self, attempt_log: AttemptLog, breaker: Option<BreakerState>) -> Self {
        self.attempt_log = attempt_log;
        self.breaker = breaker;
        self
    }

    /// The same call, answered by the service's instance `instance` (of several).
    pub fn on_instance(mut self, instance: Option<u16>) -> Self {
        self.instance = instance;
        self
    }

    /// The same call, after sending `hedges` hedges.
    pub fn hedged(mut self, hedges: u32) -> Self {
        self.hedges = hedges;
        self
    }

    /// A call that failed.
    pub fn failed(error: CallError, attempts: u32, status: Option<u16>) -> Self {
        Self::new(Err(error), attempts, status)
    }

    /// A call whose `when` condition was false: the field gets `value` and no request is sent.
    pub fn skipped(value: V) -> Self {
        Self { skipped: true, ..Self::new(Ok(value), 0, None) }
    }

    /// The result of custom logic, with what it sent counted in `tally`.
    pub fn custom<E: Into<CallError>>(value: Result<V, E>, tally: &Tally) -> Self {
        Self::new(value.map_err(Into::into), tally.attempts(), tally.last_status())
            .with_attempts(AttemptLog::new(), tally.breaker())
    }

    /// Maps the value (e.g. into `Some` for a conditional call).
    pub fn map<U>(self, f: impl FnOnce(V) -> U) -> CallDone<U> {
        CallDone {
            value: self.value.map(f),
            attempts: self.attempts,
            status: self.status,
            degraded: self.degraded,
            skipped: self.skipped,
            fallback: self.fallback,
            cached: self.cached,
            ended: self.ended,
            attempt_log: self.attempt_log,
            breaker: self.breaker,
            instance: self.instance,
            hedges: self.hedges,
        }
    }

    /// An optional call: a failure becomes `None` and is reported as degraded.
    pub fn optional(self) -> CallDone<Option<V>> {
        self.recover(|| None, false, Some)
    }

    /// An optional call typed `Option<V>` with a fallback: a failure becomes the fallback.
    pub fn optional_or<F: IntoFallback<Option<V>>>(self, fallback: impl FnOnce() -> F) -> CallDone<Option<V>> {
        self.recover(|| fallback().into_fallback(), true, Some)
    }

    /// An optional call typed `V` with a fallback: a failure becomes the fallback.
    pub fn or_fallback(self, fallback: impl FnOnce() -> V) -> CallDone<V> {
        self.recover(fallback, true, |v| v)
    }

    fn recover<U>(self, fallback: impl FnOnce() -> U, used_fallback: bool, wrap: impl FnOnce(V) -> U) -> CallDone<U> {
        match self.value {
            Ok(value) => CallDone {
                value: Ok(wrap(value)),
                attempts: self.attempts,
                status: self.status,
                degraded: None,
                skipped: self.skipped,
                fallback: false,
                cached: self.cached,
                ended: self.ended,
                attempt_log: self.attempt_log,
                breaker: self.breaker,
                instance: self.instance,
                hedges: self.hedges,
            },
            Err(error) => CallDone {
                value: Ok(fallback()),
                attempts: self.attempts,
                status: self.status,
                degraded: Some(error),
                skipped: false,
                fallback: used_fallback,
                cached: false,
                ended: self.ended,
                attempt_log: self.attempt_log,
                breaker: self.breaker,
                instance: self.instance,
                hedges: self.hedges,
            },
        }
    }
}

/// A value usable as the `fallback` of a field of type `F`: an `F` itself or, for a field
/// `Option<T>`, a plain `T`.
#[diagnostic::on_unimplemented(
    message = "`fallback` of type `{Self}` does not fit a field of type `{F}`",
    label = "expected `{F}`",
    note = "a fallback has the field's type, or `T` for a field `Option<T>`"
)]
pub trait IntoFallback<F> {
    /// Converts into the field's type.
    fn into_fallback(self) -> F;
}

impl<T> IntoFallback<T> for T {
    fn into_fallback(self) -> T {
        self
    }
}

impl<T> IntoFallback<Option<T>> for T {
    fn into_fallback(self) -> Option<T> {
        Some(self)
    }
}
