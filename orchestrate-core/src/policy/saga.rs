//! Sagas: the compensation of a side-effecting call, run when a later required step fails after
//! the call committed, and the rules of where compensations must (or may not) be.
//!
//! Written in `#[call(..)]` as `compensate = post("/charges/{payment.id}/refund", body = ..,
//! idempotency_key = .., timeout = "1s", retry(attempts = 5, backoff = "200ms"))`, and
//! `#[endpoint(.., saga)]` for an endpoint whose every side effect must be undoable. The method,
//! path and expressions are Rust tokens the macro reads; `timeout` and `retry` and their defaults
//! are here, with the wording of every rule.

use super::retry::RetryPolicy;
use super::value::{Example, Reader, Value};
use std::time::Duration;

/// How one compensation is sent: each attempt's timeout and its retries. Compensations run after
/// the request failed, under a budget of their own (the worst case of this policy), never under
/// the request's deadline.
///
/// ```
/// use orchestrate_core::policy::CompensationPolicy;
/// let policy = CompensationPolicy::DEFAULT;
/// assert_eq!(policy.retry.attempts, 3);
/// assert_eq!(policy.timeout, std::time::Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct CompensationPolicy {
    /// Each attempt's timeout.
    #[cfg_attr(feature = "serde", serde(rename = "timeoutMs", serialize_with = "super::millis"))]
    pub timeout: Duration,
    /// Attempts and backoff. A compensation is safe to repeat (it has an idempotency key or an
    /// idempotent method), so it retries by default.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub retry: RetryPolicy,
}

impl CompensationPolicy {
    /// 2 s per attempt, 3 attempts 200 ms apart (exponential, full jitter).
    pub const DEFAULT: Self = Self { timeout: DEFAULT_TIMEOUT, retry: DEFAULT_RETRY };

    /// Each attempt within `timeout`, retried as `retry` says.
    pub const fn new(timeout: Duration, retry: RetryPolicy) -> Self {
        Self { timeout, retry }
    }
}

impl Default for CompensationPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A compensation's timeout per attempt when it gives none: 2 s.
///
/// ```
/// assert_eq!(orchestrate_core::policy::saga::DEFAULT_TIMEOUT.as_millis(), 2000);
/// ```
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// A compensation's retries when it gives none: 3 attempts, backoff from 200 ms.
///
/// ```
/// assert_eq!(orchestrate_core::policy::saga::DEFAULT_RETRY.attempts, 3);
/// ```
pub const DEFAULT_RETRY: RetryPolicy = RetryPolicy::new(3, Duration::from_millis(200));

/// Every key of `compensate = method("/path", ..)` after the path: the expressions (`body`,
/// `headers`, `idempotency_key`), the flag `idempotent`, and the policy (`timeout`, `retry`).
///
/// ```
/// assert!(orchestrate_core::policy::saga::KEYS.contains(&"idempotency_key"));
/// ```
pub const KEYS: &[&str] = &["body", "headers", "idempotency_key", "idempotent", "timeout", "retry"];

/// The policy keys of a compensation, read here.
pub const POLICY_KEYS: &[&str] = &["timeout", "retry"];

/// Reads the policy entries of a compensation written at `at` (`value` a table of the `timeout`
/// and `retry` entries; the macro keeps the expressions). Both default.
///
/// ```
/// use orchestrate_core::policy::{CompensationPolicy, Entry, Reader, Syntax, Value, saga};
/// let value = Value::Table(vec![Entry::new("timeout", 1, Value::Str("500ms".into(), 2))], 0);
/// let mut reader = Reader::new(Syntax::Dsl);
/// let policy = saga::read(&mut reader, &0, &value).unwrap();
/// assert_eq!(policy.timeout.as_millis(), 500);
/// assert_eq!(policy.retry, saga::DEFAULT_RETRY);
/// ```
pub fn read<P: Clone>(reader: &mut Reader<P>, at: &P, value: &Value<P>) -> Option<CompensationPolicy> {
    let Value::Table(entries, _) = value else { return None };
    let before = reader.seen();
    let keys = reader.keys("compensate", entries, POLICY_KEYS);
    let mut policy = CompensationPolicy::DEFAULT;
    for entry in &keys.entries {
        match entry.key.as_str() {
            "timeout" => {
                if let Some(d) = reader.duration(&entry.value, "compensate.timeout") {
                    if d.is_zero() {
                        reader.fail(
                            entry.value.at(),
                            "compensate.timeout",
                            "a compensation's `timeout` must be above zero",
                        );
                    } else {
                        policy.timeout = d;
                    }
                }
            }
            "retry" => {
                if let Some(retry) = super::retry::read(reader, at, &entry.value, None) {
                    policy.retry = retry;
                }
            }
            _ => {}
        }
    }
    (reader.seen() == before).then_some(policy)
}

/// Why a GET cannot be compensated: it changed nothing.
///
/// ```
/// let m = orchestrate_core::policy::saga::compensate_on_get("cart");
/// assert!(m.starts_with("`cart` is a GET"));
/// ```
pub fn compensate_on_get(call: &str) -> String {
    format!("`{call}` is a GET, which changes nothing, so there is nothing to compensate; remove `compensate`")
}

/// Why a compensation must be safe to repeat (`method` its method).
///
/// ```
/// let m = orchestrate_core::policy::saga::compensation_not_idempotent("payment", "POST");
/// assert!(m.contains("add `idempotency_key = ..`"));
/// ```
pub fn compensation_not_idempotent(call: &str, method: &str) -> String {
    format!(
        "the compensation of `{call}` is a `{method}`, which is not idempotent, and compensations are retried (and resumed after a crash): add `idempotency_key = ..` to `compensate`, or `idempotent` if repeating it is safe"
    )
}

/// Why a compensation can only undo a call that sends one templated request: custom logic
/// (`fan_out` false) or a fan-out.
///
/// ```
/// let m = orchestrate_core::policy::saga::compensate_needs_single_request("holds", true);
/// assert!(m.starts_with("`holds` fans out with `for_each`"));
/// ```
pub fn compensate_needs_single_request(call: &str, fan_out: bool) -> String {
    if fan_out {
        format!(
            "`{call}` fans out with `for_each`, and `compensate` undoes one request built from one answer; make the side effect a single call (one request for every item), or undo the items in custom logic (`with = ..`) of their own"
        )
    } else {
        format!(
            "`{call}` is custom logic (`with`), and `compensate` undoes one templated request; undo the effect inside the function when a later step fails, or call with `post = ..`"
        )
    }
}

/// Why a compensation may not read `name`: it is neither the call's own answer, nor an input,
/// nor a field the call itself reads (the only values certain to exist once the call committed).
///
/// ```
/// let m = orchestrate_core::policy::saga::compensation_reads("payment", "shipment");
/// assert!(m.starts_with("the compensation of `payment` reads `shipment`"));
/// ```
pub fn compensation_reads(call: &str, name: &str) -> String {
    format!(
        "the compensation of `{call}` reads `{name}`, which may not exist when it runs; a compensation reads `{call}` (the call's answer), the inputs and the fields `{call}` itself uses"
    )
}

/// Why a side-effecting call without compensation breaks a `saga` endpoint: `later` is a required
/// step that can fail after the call committed.
///
/// ```
/// let m = orchestrate_core::policy::saga::uncompensated("reservation", "POST", "payment");
/// assert!(m.contains("`payment` can fail after it"));
/// ```
pub fn uncompensated(call: &str, method: &str, later: &str) -> String {
    format!(
        "`{call}` is a `{method}` with a side effect, and the required `{later}` can fail after it; in a `saga` endpoint add `compensate = ..` to undo it, mark it `idempotent` if it only computes, or remove `saga`"
    )
}

/// The "Compensation" column of a call table for a side-effecting call with none, when a later
/// required step can fail.
///
/// ```
/// assert_eq!(orchestrate_core::policy::saga::NOT_COMPENSATED, "**none**");
/// ```
pub const NOT_COMPENSATED: &str = "**none**";

/// The saga journal's settings: how long an owner's lease on a saga lasts without renewal (after
/// which another instance may resume it), and how long a saga's record is kept.
///
/// Written `[saga]` in the configuration file (no DSL form: it is a property of the running
/// instances, not of an endpoint):
///
/// ```toml
/// [saga]
/// lease = "10s"   # an instance that stops renewing for 10 s is presumed gone
/// keep = "24h"    # how long a saga's record stays readable
/// ```
///
/// ```
/// use orchestrate_core::policy::SagaSettings;
/// let settings = SagaSettings::DEFAULT;
/// assert_eq!((settings.lease.as_secs(), settings.ttl.as_secs()), (10, 86_400));
/// assert_eq!(settings.renew_every().as_millis(), 3333);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct SagaSettings {
    /// How long a lease lasts without renewal.
    #[cfg_attr(feature = "serde", serde(rename = "leaseMs", serialize_with = "super::millis"))]
    pub lease: Duration,
    /// How long a record is kept (`keep` in the file).
    #[cfg_attr(feature = "serde", serde(rename = "keepMs", serialize_with = "super::millis"))]
    pub ttl: Duration,
}

impl SagaSettings {
    /// A 10 s lease, records kept a day.
    pub const DEFAULT: Self = Self { lease: Duration::from_secs(10), ttl: Duration::from_secs(24 * 60 * 60) };

    /// A lease of `lease` and records kept `ttl`, brought within [`MIN_LEASE`]..=[`MAX_LEASE`] and
    /// [`MIN_KEEP`]..=[`MAX_KEEP`].
    ///
    /// ```
    /// use orchestrate_core::policy::SagaSettings;
    /// use std::time::Duration;
    /// let s = SagaSettings::new(Duration::from_millis(10), Duration::from_secs(3600));
    /// assert_eq!((s.lease.as_secs(), s.ttl.as_secs()), (1, 3600));
    /// ```
    pub const fn new(lease: Duration, ttl: Duration) -> Self {
        const fn clamp(d: Duration, min: Duration, max: Duration) -> Duration {
            if d.as_millis() < min.as_millis() {
                min
            } else if d.as_millis() > max.as_millis() {
                max
            } else {
                d
            }
        }
        Self { lease: clamp(lease, MIN_LEASE, MAX_LEASE), ttl: clamp(ttl, MIN_KEEP, MAX_KEEP) }
    }

    /// How often an owner renews its lease: a third of it, so two renewals may fail in a row.
    pub const fn renew_every(&self) -> Duration {
        Duration::from_millis((self.lease.as_millis() / 3) as u64)
    }
}

impl Default for SagaSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Shortest `lease`: 1 s.
pub const MIN_LEASE: Duration = Duration::from_secs(1);
/// Longest `lease`: 10 min (a crashed instance's sagas wait that long).
pub const MAX_LEASE: Duration = Duration::from_secs(600);
/// Shortest `keep`: 1 min.
pub const MIN_KEEP: Duration = Duration::from_secs(60);
/// Longest `keep`: 7 days.
pub const MAX_KEEP: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The name of the journal's section in the configuration file.
///
/// ```
/// assert_eq!(orchestrate_core::policy::saga::SECTION, "saga");
/// ```
pub const SECTION: &str = "saga";

/// The keys of `[saga]`.
///
/// ```
/// assert_eq!(orchestrate_core::policy::saga::JOURNAL_KEYS, &["lease", "keep"]);
/// ```
pub const JOURNAL_KEYS: &[&str] = &["lease", "keep"];

const EXAMPLE: Example =
    Example { dsl: "saga(lease = \"10s\", keep = \"24h\")", toml: "[saga]\nlease = \"10s\"\nkeep = \"24h\"" };

/// Reads a `[saga]` table, merged key by key into `declared` (what the runtime builder set;
/// [`SagaSettings::DEFAULT`] without one). Every key is optional.
///
/// ```
/// use orchestrate_core::policy::{Entry, Reader, SagaSettings, Syntax, Value, saga};
/// let table = Value::Table(vec![Entry::new("lease", 1, Value::Str("500ms".into(), 2))], 0);
/// let mut reader = Reader::new(Syntax::Toml);
/// assert_eq!(saga::read_settings(&mut reader, &table, None), None);
/// assert_eq!(
///     reader.problems()[0].message,
///     "`lease` must be at least \"1s\": a shorter lease lets a slow instance's sagas be taken over while it still runs them"
/// );
/// let table = Value::Table(vec![Entry::new("keep", 1, Value::Str("1h".into(), 2))], 0);
/// let mut reader = Reader::new(Syntax::Toml);
/// assert_eq!(saga::read_settings(&mut reader, &table, None).unwrap().ttl.as_secs(), 3600);
/// ```
pub fn read_settings<P: Clone>(
    reader: &mut Reader<P>,
    value: &Value<P>,
    declared: Option<SagaSettings>,
) -> Option<SagaSettings> {
    let entries = reader.table(value, SECTION, &EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys(SECTION, entries, JOURNAL_KEYS);
    let mut settings = declared.unwrap_or(SagaSettings::DEFAULT);
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "lease" => {
                if let Some(d) = reader.duration(v, "saga.lease") {
                    if d < MIN_LEASE {
                        let message = "`lease` must be at least \"1s\": a shorter lease lets a slow instance's sagas be taken over while it still runs them";
                        reader.fail(v.at(), "saga.lease", message);
                    } else if d > MAX_LEASE {
                        let message =
                            "`lease` is at most \"10m\": a crashed instance's sagas wait that long to be resumed";
                        reader.fail(v.at(), "saga.lease", message);
                    } else {
                        settings.lease = d;
                    }
                }
            }
            "keep" => {
                if let Some(d) = reader.duration(v, "saga.keep") {
                    if d < MIN_KEEP {
                        reader.fail(v.at(), "saga.keep", "`keep` must be at least \"1m\"");
                    } else if d > MAX_KEEP {
                        let message =
                            "`keep` is at most \"168h\" (7 days): the journal is for resuming sagas, not an audit log";
                        reader.fail(v.at(), "saga.keep", message);
                    } else {
                        settings.ttl = d;
                    }
                }
            }
            _ => {}
        }
    }
    (reader.seen() == before).then_some(settings)
}
