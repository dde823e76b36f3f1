//! Retries of a call: how many attempts, the backoff between them and which failures are retried.
//!
//! Written `retry(attempts = 3, backoff = "100ms" [, max_backoff = "1s"] [, on = [5xx, timeout,
//! connect, 429]])` in `services!` and in `#[call(..)]`, and
//! `retry = { attempts = 3, backoff = "100ms", on = ["5xx"] }` in the configuration file.

use super::value::{Entry, Example, Reader, Value};
use std::time::Duration;

/// Which failures of an attempt are worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct RetryOn {
    /// Any 5xx status.
    pub server_errors: bool,
    /// The attempt's timeout passed.
    pub timeouts: bool,
    /// The connection could not be made or broke before a response.
    pub connect_errors: bool,
    /// 429 Too Many Requests (waits at least the service's `Retry-After` when it fits the budget).
    pub too_many_requests: bool,
}

impl RetryOn {
    /// 5xx, timeouts and connection errors; never 4xx.
    pub const DEFAULT: Self =
        Self { server_errors: true, timeouts: true, connect_errors: true, too_many_requests: false };

    /// Nothing is retried; add conditions with the `with_*` methods.
    pub const NOTHING: Self =
        Self { server_errors: false, timeouts: false, connect_errors: false, too_many_requests: false };

    /// The conditions written in `on = [..]`: `5xx`, `timeout`, `connect`, `429`.
    pub const CONDITIONS: &'static [&'static str] = &["5xx", "timeout", "connect", "429"];

    /// Also retries 5xx answers.
    pub const fn with_server_errors(mut self, on: bool) -> Self {
        self.server_errors = on;
        self
    }

    /// Also retries attempts that timed out.
    pub const fn with_timeouts(mut self, on: bool) -> Self {
        self.timeouts = on;
        self
    }

    /// Also retries connection failures.
    pub const fn with_connect_errors(mut self, on: bool) -> Self {
        self.connect_errors = on;
        self
    }

    /// Also retries 429 answers.
    pub const fn with_too_many_requests(mut self, on: bool) -> Self {
        self.too_many_requests = on;
        self
    }
}

/// Exponential backoff with full jitter.
///
/// Attempt `n` (from 2) waits a random time in `[0, min(backoff × 2^(n-2), max_backoff)]`.
///
/// ```
/// use orchestrate_core::policy::RetryPolicy;
/// use std::time::Duration;
/// let retry = RetryPolicy::new(3, Duration::from_millis(100));
/// assert_eq!(retry.max_backoff, Duration::from_secs(1), "ten times the backoff unless set");
/// assert_eq!(retry.backoff_cap(3), Duration::from_millis(200));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts including the first; 1 means no retry.
    pub attempts: u32,
    /// Upper bound of the first wait.
    #[cfg_attr(feature = "serde", serde(rename = "backoffMs", serialize_with = "super::millis"))]
    pub backoff: Duration,
    /// Upper bound of any wait.
    #[cfg_attr(feature = "serde", serde(rename = "maxBackoffMs", serialize_with = "super::millis"))]
    pub max_backoff: Duration,
    /// What is retried.
    pub on: RetryOn,
}

impl RetryPolicy {
    /// No retries.
    pub const NONE: Self =
        Self { attempts: 1, backoff: Duration::ZERO, max_backoff: Duration::ZERO, on: RetryOn::DEFAULT };

    /// The most attempts a policy may make: more multiplies the load on a failing service.
    pub const MAX_ATTEMPTS: u32 = 10;

    /// `attempts` in all, first backoff `backoff`, capped at [`default_max_backoff`](Self::default_max_backoff).
    pub const fn new(attempts: u32, backoff: Duration) -> Self {
        Self { attempts, backoff, max_backoff: Self::default_max_backoff(backoff), on: RetryOn::DEFAULT }
    }

    /// The cap of each wait when none is given: ten times the first backoff.
    pub const fn default_max_backoff(backoff: Duration) -> Duration {
        backoff.saturating_mul(10)
    }

    /// Caps each wait.
    pub const fn with_max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// Sets what is retried.
    pub const fn with_retry_on(mut self, on: RetryOn) -> Self {
        self.on = on;
        self
    }

    /// Whether the policy makes more than one attempt.
    pub const fn retries(&self) -> bool {
        self.attempts > 1
    }

    /// Upper bound of the wait before attempt `attempt` (2 for the first retry).
    pub fn backoff_cap(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(2).min(31);
        self.backoff.saturating_mul(1u32 << exponent).min(self.max_backoff)
    }
}

/// Why repeating a call is unsafe: a `POST`/`PATCH` (`method`), or custom logic (`None`).
fn unsafe_because(method: Option<&str>) -> String {
    match method {
        Some(method) => {
            format!("`{method}` is not idempotent: a retry could repeat its effect (a second charge, a second order)")
        }
        None => "custom logic is not known to be idempotent: a retry could repeat its effect".to_owned(),
    }
}

/// The fixes of a retry on a call that is unsafe to repeat.
fn unsafe_fixes(method: Option<&str>, or_remove: &str) -> String {
    match method {
        Some(_) => format!(
            "add `idempotency_key = ..` (sent as `Idempotency-Key`, the same on every attempt), mark the call `idempotent` if repeating it is safe (e.g. a pure `POST /calculate`), or {or_remove}"
        ),
        None => format!("mark it `idempotent` if repeating it is safe, or {or_remove}"),
    }
}

/// The message for a call-level `retry(..)` with more than one attempt on a call that is unsafe
/// to repeat (`method` is `None` for custom logic).
///
/// ```
/// let m = orchestrate_core::policy::retry::unsafe_call_retry("charge", Some("POST"));
/// assert!(m.starts_with("`charge` retries, but `POST` is not idempotent"));
/// ```
pub fn unsafe_call_retry(call: &str, method: Option<&str>) -> String {
    format!("`{call}` retries, but {}; {}", unsafe_because(method), unsafe_fixes(method, "remove `retry`"))
}

/// The message for a service's retry policy (declared in `source`: `services!` or the
/// configuration) that would apply to a call unsafe to repeat.
///
/// ```
/// let m = orchestrate_core::policy::retry::unsafe_service_retry("charge", Some("POST"), "payment", "`services!`");
/// assert!(m.starts_with("`charge` would be retried by its service `payment` (`retry` in `services!`), but `POST` is not idempotent"));
/// assert!(m.ends_with("or give the call `retry(attempts = 1)`"));
/// ```
pub fn unsafe_service_retry(call: &str, method: Option<&str>, service: &str, source: &str) -> String {
    format!(
        "`{call}` would be retried by its service `{service}` (`retry` in {source}), but {}; {}",
        unsafe_because(method),
        unsafe_fixes(method, "give the call `retry(attempts = 1)`")
    )
}

/// The keys of `retry`.
pub const KEYS: &[&str] = &["attempts", "backoff", "max_backoff", "on"];

const EXAMPLE: Example =
    Example { dsl: "retry(attempts = 3, backoff = \"100ms\")", toml: "retry = { attempts = 3, backoff = \"100ms\" }" };

const ON_EXAMPLE: Example =
    Example { dsl: "on = [5xx, timeout, connect]", toml: "on = [\"5xx\", \"timeout\", \"connect\"]" };

/// Reads a `retry` group written at `at` with the value `value`, merged key by key into
/// `declared` (the configuration file over `services!`); without one, `attempts` is required,
/// and `backoff` too when there is more than one attempt.
///
/// Problems: unknown or repeated keys, `attempts` outside 1 to 10, malformed durations,
/// `max_backoff` below `backoff`, unknown retry conditions.
pub fn read<P: Clone>(
    reader: &mut Reader<P>,
    at: &P,
    value: &Value<P>,
    declared: Option<RetryPolicy>,
) -> Option<RetryPolicy> {
    let entries = reader.table(value, "retry", &EXAMPLE)?;
    read_entries(reader, at, entries, declared)
}

fn read_entries<P: Clone>(
    reader: &mut Reader<P>,
    at: &P,
    entries: &[Entry<P>],
    declared: Option<RetryPolicy>,
) -> Option<RetryPolicy> {
    let before = reader.seen();
    let keys = reader.keys("retry", entries, KEYS);
    let mut policy = declared.unwrap_or(RetryPolicy::NONE);
    let (mut backoff, mut max_backoff) = (None, None);
    let mut attempts = None;
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "attempts" => {
                attempts = reader.number(v, "retry.attempts", 1, u64::from(RetryPolicy::MAX_ATTEMPTS)).map(|n| n as u32)
            }
            "backoff" => backoff = reader.duration(v, "retry.backoff").map(|d| (d, v.at().clone())),
            "max_backoff" => max_backoff = reader.duration(v, "retry.max_backoff").map(|d| (d, v.at().clone())),
            "on" => {
                if let Some(on) = read_on(reader, v) {
                    policy.on = on;
                }
            }
            _ => {}
        }
    }
    if declared.is_none() {
        let single = attempts == Some(1);
        let required: &[&str] = if single { &["attempts"] } else { &["attempts", "backoff"] };
        reader.require(at, "retry", &keys, required, &EXAMPLE);
    }
    // Checked even when another key is wrong, so that every mistake is reported at once.
    let effective_backoff = backoff.as_ref().map_or(policy.backoff, |(b, _)| *b);
    if let Some((m, at)) = &max_backoff
        && *m < effective_backoff
    {
        reader.fail(at, "retry.max_backoff", "`max_backoff` is smaller than `backoff`; raise it or remove it");
    }
    if reader.seen() != before {
        return None;
    }
    if let Some(n) = attempts {
        policy.attempts = n;
    }
    if let Some((b, _)) = &backoff {
        policy.backoff = *b;
        policy.max_backoff = RetryPolicy::default_max_backoff(*b);
    }
    if let Some((m, _)) = &max_backoff {
        policy.max_backoff = *m;
    }
    Some(policy)
}

fn read_on<P: Clone>(reader: &mut Reader<P>, value: &Value<P>) -> Option<RetryOn> {
    let items = reader.list(value, "retry.on", &ON_EXAMPLE)?;
    let before = reader.seen();
    let mut on = RetryOn::NOTHING;
    for item in items {
        let text = match item {
            // `429` and `5xx` are numbers to the Rust tokenizer; the DSL side hands them over as words.
            Value::Number(n, _) => n.to_string(),
            other => match reader.word(other, "retry.on") {
                Some(text) => text.to_owned(),
                None => continue,
            },
        };
        match text.as_str() {
            "5xx" => on.server_errors = true,
            "timeout" => on.timeouts = true,
            "connect" => on.connect_errors = true,
            "429" => on.too_many_requests = true,
            other => reader.fail(
                item.at(),
                "retry.on",
                format!(
                    "unknown retry condition `{other}`; use `5xx`, `timeout`, `connect` or `429` (4xx other than 429 are never retried)"
                ),
            ),
        }
    }
    (reader.seen() == before).then_some(on)
}

#[cfg(test)]
mod tests {
    use super::super::value::Syntax;
    use super::*;

    fn table(entries: Vec<(&str, Value<u32>)>) -> Value<u32> {
        Value::Table(entries.into_iter().enumerate().map(|(i, (k, v))| Entry::new(k, i as u32 + 100, v)).collect(), 0)
    }

    fn messages(r: &Reader<u32>) -> Vec<String> {
        r.problems().iter().map(|p| p.message.clone()).collect()
    }

    #[test]
    fn a_full_retry_reads_every_key() {
        let mut r = Reader::new(Syntax::Dsl);
        let v = table(vec![
            ("attempts", Value::Number(3, 1)),
            ("backoff", Value::Str("100ms".into(), 2)),
            ("max_backoff", Value::Str("400ms".into(), 3)),
            ("on", Value::List(vec![Value::Number(429, 4), Value::Word("5xx".into(), 5)], 6)),
        ]);
        let policy = read(&mut r, &0, &v, None).unwrap();
        assert_eq!(policy.max_backoff, Duration::from_millis(400));
        assert!(policy.on.too_many_requests && policy.on.server_errors && !policy.on.timeouts);
    }

    #[test]
    fn one_attempt_needs_no_backoff_and_more_do() {
        let mut r = Reader::new(Syntax::Dsl);
        assert_eq!(read(&mut r, &0, &table(vec![("attempts", Value::Number(1, 1))]), None), Some(RetryPolicy::NONE));
        assert_eq!(read(&mut r, &0, &table(vec![("attempts", Value::Number(2, 1))]), None), None);
        assert_eq!(messages(&r), ["`retry` needs `backoff`, e.g. `retry(attempts = 3, backoff = \"100ms\")`"]);
    }

    #[test]
    fn a_declared_policy_is_merged_key_by_key() {
        let mut r = Reader::new(Syntax::Toml);
        let declared = RetryPolicy::new(3, Duration::from_millis(100));
        let merged = read(&mut r, &0, &table(vec![("backoff", Value::Str("50ms".into(), 1))]), Some(declared)).unwrap();
        assert_eq!(
            (merged.attempts, merged.backoff, merged.max_backoff),
            (3, Duration::from_millis(50), Duration::from_millis(500))
        );
        let wrong = table(vec![("max_backoff", Value::Str("10ms".into(), 1))]);
        assert_eq!(read(&mut r, &0, &wrong, Some(declared)), None);
        assert_eq!(messages(&r), ["`max_backoff` is smaller than `backoff`; raise it or remove it"]);
    }
}
