//! What the store's connection has seen lately: the failures in a row, the last error, the
//! pause before the next attempt after a failure, and the log lines at the turns.

use super::error::{StoreError, StoreErrorKind};
use crate::telemetry::metrics;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where the shared state lives.
///
/// ```
/// use orchestrate_runtime::store::Backend;
/// assert_eq!(Backend::Redis.as_str(), "redis");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// In this process: every feature uses its in-memory implementation.
    Memory,
    /// A Redis server shared by every instance.
    Redis,
}

impl Backend {
    /// `memory` or `redis`.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::store::Backend::Memory.as_str(), "memory");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
        }
    }
}

/// The store's state, as `/health` shows it.
///
/// ```
/// use orchestrate_runtime::store::{Backend, Store};
/// let health = Store::Memory.health();
/// assert_eq!((health.backend, health.available, health.consecutive_failures), (Backend::Memory, true, 0));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StoreHealth {
    /// Where the state lives.
    pub backend: Backend,
    /// The server, password hidden (`redis://:***@cache:6379/0`); `None` in memory.
    pub target: Option<String>,
    /// Whether the last attempt succeeded (or none was made yet). A reply error counts as an
    /// answer: the connection works.
    pub available: bool,
    /// Attempts that timed out or found the store unavailable since the last answer.
    pub consecutive_failures: u32,
    /// Failed operations since start-up, every kind (the sum of `orchestrate_store_errors_total`).
    pub failures: u64,
    /// The last error, if any.
    pub last_error: Option<LastError>,
    /// When the store last answered.
    pub last_success: Option<Instant>,
}

impl StoreHealth {
    /// The health of the in-memory store: always available.
    pub(crate) fn memory() -> Self {
        Self {
            backend: Backend::Memory,
            target: None,
            available: true,
            consecutive_failures: 0,
            failures: 0,
            last_error: None,
            last_success: None,
        }
    }

    /// `ok` or `unavailable`.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::store::Store::Memory.health().status(), "ok");
    /// ```
    pub fn status(&self) -> &'static str {
        if self.available { "ok" } else { "unavailable" }
    }
}

/// The last failed store operation.
///
/// ```
/// # fn show(health: orchestrate_runtime::store::StoreHealth) {
/// if let Some(error) = &health.last_error {
///     println!("{} {} {:?} ago: {}", error.kind.as_str(), error.operation, error.at.elapsed(), error.message);
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LastError {
    /// Its kind.
    pub kind: StoreErrorKind,
    /// The operation.
    pub operation: String,
    /// The error's message.
    pub message: String,
    /// When it happened.
    pub at: Instant,
}

/// First pause after a failed attempt; it doubles with each failure in a row, up to
/// [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest pause between attempts while the store is down.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Timeouts in a row after which the connection is presumed dead (a peer that vanished without a
/// reset never makes it fail) and replaced.
pub(crate) const TIMEOUTS_BEFORE_RECONNECT: u32 = 3;

/// What a failed attempt asks of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Keep it.
    Keep,
    /// Replace it: it timed out too often in a row.
    Replace,
}

/// The health counters of one Redis store, shared by its handles.
#[derive(Debug)]
pub(crate) struct Tracker {
    target: String,
    epoch: Instant,
    /// Attempts in a row that timed out or found the store unavailable.
    consecutive: AtomicU32,
    /// Of those, the timeouts in a row.
    timeouts: AtomicU32,
    /// Failed operations, every kind, attempts or not.
    failures: AtomicU64,
    /// Milliseconds since `epoch`, plus one, before which no attempt is made; 0 when attempts go
    /// through.
    paused_until: AtomicU64,
    /// Milliseconds since `epoch`, plus one, of the last answer; 0 before the first.
    last_success: AtomicU64,
    /// Whether the last attempt failed (the next answer is logged as the recovery).
    failing: AtomicBool,
    /// Milliseconds since `epoch`, plus one, of the first failure of the current outage.
    failing_since: AtomicU64,
    last_error: Mutex<Option<LastError>>,
}

impl Tracker {
    pub(crate) fn new(target: String) -> Self {
        Self {
            target,
            epoch: Instant::now(),
            consecutive: AtomicU32::new(0),
            timeouts: AtomicU32::new(0),
            failures: AtomicU64::new(0),
            paused_until: AtomicU64::new(0),
            last_success: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            failing_since: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Whether an attempt may be made now. While paused after a failure, no: the error says when
    /// the next one will be. The first caller after the pause claims the attempt (the pause is
    /// pushed on while it runs), so an outage costs one connection attempt per pause, not one per
    /// request.
    pub(crate) fn admit(&self, operation: impl FnOnce() -> String) -> Result<(), StoreError> {
        let until = self.paused_until.load(Ordering::Acquire);
        if until == 0 {
            return Ok(());
        }
        let now = self.now();
        let wait = if now >= until {
            let next = now + millis(backoff(self.consecutive.load(Ordering::Relaxed)));
            match self.paused_until.compare_exchange(until, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(0) => return Ok(()),
                Err(other) => other.saturating_sub(now),
            }
        } else {
            until - now
        };
        let operation = operation();
        let last = self.last_message().unwrap_or_default();
        let reason = format!(
            "{} attempts in a row failed (last: {last}); the next attempt is in {wait}ms",
            self.consecutive.load(Ordering::Relaxed)
        );
        let error = StoreError::Unavailable { operation, reason };
        self.count(&error);
        Err(error)
    }

    /// The store answered.
    pub(crate) fn succeeded(&self) {
        self.last_success.store(self.now(), Ordering::Relaxed);
        self.answered();
    }

    fn answered(&self) {
        let failed = self.consecutive.swap(0, Ordering::Relaxed);
        self.timeouts.store(0, Ordering::Relaxed);
        self.paused_until.store(0, Ordering::Release);
        if self.failing.swap(false, Ordering::AcqRel) {
            let since = self.failing_since.load(Ordering::Relaxed);
            tracing::warn!(
                store = %self.target,
                "the shared store answers again, after {}ms and {failed} failed attempt{}",
                self.now().saturating_sub(since),
                if failed == 1 { "" } else { "s" }
            );
        }
    }

    /// An attempt failed with `error`.
    pub(crate) fn failed(&self, error: &StoreError) -> Verdict {
        self.count(error);
        *self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(LastError {
            kind: error.kind(),
            operation: error.operation().to_owned(),
            message: error.to_string(),
            at: Instant::now(),
        });
        let verdict = match error.kind() {
            StoreErrorKind::Reply => {
                // The server answered: the connection works, the feature's command did not.
                self.answered();
                tracing::debug!(store = %self.target, "{error}");
                return Verdict::Keep;
            }
            StoreErrorKind::Timeout => {
                let timeouts = self.timeouts.fetch_add(1, Ordering::Relaxed) + 1;
                if timeouts >= TIMEOUTS_BEFORE_RECONNECT {
                    self.timeouts.store(0, Ordering::Relaxed);
                    Verdict::Replace
                } else {
                    Verdict::Keep
                }
            }
            StoreErrorKind::Unavailable => {
                self.timeouts.store(0, Ordering::Relaxed);
                Verdict::Keep
            }
        };
        let consecutive = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        if error.kind() == StoreErrorKind::Unavailable || verdict == Verdict::Replace {
            let until = self.now() + millis(backoff(consecutive));
            self.paused_until.store(until, Ordering::Release);
        }
        if !self.failing.swap(true, Ordering::AcqRel) {
            self.failing_since.store(self.now(), Ordering::Relaxed);
            tracing::warn!(
                store = %self.target,
                kind = error.kind().as_str(),
                "the shared store failed: {error}; the features using it degrade until it answers again \
                 (further failures are counted in orchestrate_store_errors_total, not logged)"
            );
        }
        verdict
    }

    fn count(&self, error: &StoreError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        metrics::store_error(error.operation(), error.kind().as_str());
    }

    fn last_message(&self) -> Option<String> {
        let last = self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        last.as_ref().map(|e| e.message.clone())
    }

    pub(crate) fn health(&self) -> StoreHealth {
        let consecutive = self.consecutive.load(Ordering::Relaxed);
        let last_success = match self.last_success.load(Ordering::Relaxed) {
            0 => None,
            at => self.epoch.checked_add(Duration::from_millis(at - 1)),
        };
        StoreHealth {
            backend: Backend::Redis,
            target: Some(self.target.clone()),
            available: consecutive == 0,
            consecutive_failures: consecutive,
            failures: self.failures.load(Ordering::Relaxed),
            last_error: self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
            last_success,
        }
    }
}

/// The pause after `failures` failed attempts in a row.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(10);
    BACKOFF_MIN.saturating_mul(1 << doublings).min(BACKOFF_MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable() -> StoreError {
        StoreError::Unavailable { operation: "GET".to_owned(), reason: "connection refused".to_owned() }
    }

    fn timeout() -> StoreError {
        StoreError::Timeout { operation: "GET".to_owned(), after: Duration::from_millis(50) }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let pauses: Vec<u128> = (1..=7).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn an_unavailable_store_pauses_attempts_and_an_answer_resets_everything() {
        let tracker = Tracker::new("redis://cache".to_owned());
        assert!(tracker.admit(|| "GET".to_owned()).is_ok());
        assert_eq!(tracker.failed(&unavailable()), Verdict::Keep);
        let paused = tracker.admit(|| "SET".to_owned()).unwrap_err();
        assert_eq!(paused.kind(), StoreErrorKind::Unavailable);
        assert_eq!(paused.operation(), "SET");
        assert!(
            paused.to_string().contains("1 attempts in a row failed (last: store unavailable for `GET`"),
            "{paused}"
        );
        let health = tracker.health();
        assert_eq!((health.available, health.consecutive_failures, health.failures), (false, 1, 2));
        tracker.succeeded();
        assert!(tracker.admit(|| "GET".to_owned()).is_ok());
        let health = tracker.health();
        assert!(health.available && health.last_success.is_some());
        assert_eq!(health.last_error.unwrap().kind, StoreErrorKind::Unavailable);
    }

    #[test]
    fn timeouts_in_a_row_replace_the_connection() {
        let tracker = Tracker::new("redis://cache".to_owned());
        assert_eq!(tracker.failed(&timeout()), Verdict::Keep);
        assert!(tracker.admit(|| "GET".to_owned()).is_ok(), "one slow command pauses nothing");
        assert_eq!(tracker.failed(&timeout()), Verdict::Keep);
        assert_eq!(tracker.failed(&timeout()), Verdict::Replace);
        assert!(tracker.admit(|| "GET".to_owned()).is_err(), "a dead connection pauses attempts");
    }

    #[test]
    fn a_reply_error_is_an_answer() {
        let tracker = Tracker::new("redis://cache".to_owned());
        tracker.failed(&unavailable());
        let reply = StoreError::Reply { operation: "INCR".to_owned(), code: None, message: "WRONGTYPE".to_owned() };
        assert_eq!(tracker.failed(&reply), Verdict::Keep);
        let health = tracker.health();
        assert!(health.available);
        assert_eq!(health.failures, 2);
    }
}
