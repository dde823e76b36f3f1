//! The circuit breaker of a service: when it opens, how long it stays open, how it probes.
//!
//! Two ways to say when it opens:
//!
//! - **A failure rate** (the form to use at volume): `breaker(failure_rate = "50%", min_calls = 20,
//!   within = "10s", open_for = "30s", probes = 3)` opens when, over the last `within`, at least
//!   `min_calls` calls were made and at least `failure_rate` of them failed. Optionally
//!   `slow_call = "1s", slow_call_rate = "80%"` also opens it when that share of calls took longer
//!   than `slow_call` (a service that answers, but too slowly to be of use).
//! - **A failure count** (the design template's form): `breaker(failures = 5, within = "60s",
//!   open_for = "30s", probes = 3)` opens at the 5th failure within 60 s *whatever the traffic*:
//!   at 300 calls a second that is a 0.03% failure rate, so at volume a service with a normal
//!   background of errors trips it every minute. Use it for low-traffic services, the rate form
//!   otherwise.
//!
//! Either way what counts is a **call**: its final result after its retries, so a failure a retry
//! rescued is a success for the breaker. The configuration file writes the same keys:
//! `breaker = { failure_rate = "50%", min_calls = 20, within = "10s", open_for = "30s", probes = 3 }`.

use super::value::{Example, Reader, Value};
use std::time::Duration;

/// When a breaker opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(tag = "kind", rename_all = "camelCase"))]
#[non_exhaustive]
pub enum Trip {
    /// At the `n`-th failed call within the window.
    Failures {
        /// Failed calls that open the breaker.
        failures: u32,
    },
    /// When the share of failed (or slow) calls over the window reaches a rate.
    #[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
    Rate {
        /// Failed calls per 100 calls that open the breaker.
        failure_percent: u32,
        /// Calls within the window before the rate may open it.
        min_calls: u32,
        /// Calls slower than this count as slow (`None`: slowness is not counted).
        #[cfg_attr(feature = "serde", serde(rename = "slowCallMs", serialize_with = "slow_ms"))]
        slow_call: Option<Duration>,
        /// Slow calls per 100 calls that open the breaker.
        slow_percent: u32,
    },
}

#[cfg(feature = "serde")]
fn slow_ms<S: serde::Serializer>(slow: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match slow {
        Some(d) => super::millis(d, serializer),
        None => serializer.serialize_none(),
    }
}

/// Circuit breaker: opens as its [`Trip`] says, stays open for `open_for`, then lets exactly
/// `probes` calls through; their success closes it, a failure reopens it.
///
/// ```
/// use orchestrate_core::policy::{BreakerPolicy, Trip};
/// use std::time::Duration;
/// const COUNT: BreakerPolicy = BreakerPolicy::new(5, Duration::from_secs(60), Duration::from_secs(30), 3);
/// const RATE: BreakerPolicy = BreakerPolicy::rate(50, 20, Duration::from_secs(10), Duration::from_secs(30), 3);
/// assert_eq!(COUNT.trip, Trip::Failures { failures: 5 });
/// assert!(matches!(RATE.trip, Trip::Rate { failure_percent: 50, min_calls: 20, .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct BreakerPolicy {
    /// When it opens.
    pub trip: Trip,
    /// The window failures (or the rate) are counted over.
    #[cfg_attr(feature = "serde", serde(rename = "withinMs", serialize_with = "super::millis"))]
    pub within: Duration,
    /// How long the breaker stays open before probing.
    #[cfg_attr(feature = "serde", serde(rename = "openForMs", serialize_with = "super::millis"))]
    pub open_for: Duration,
    /// Calls let through while half-open.
    pub probes: u32,
}

impl BreakerPolicy {
    /// Opens after `failures` failed calls within `within`, for `open_for`, then probes with
    /// `probes` calls. Zero failures or probes count as one.
    pub const fn new(failures: u32, within: Duration, open_for: Duration, probes: u32) -> Self {
        Self {
            trip: Trip::Failures { failures: if failures == 0 { 1 } else { failures } },
            within,
            open_for,
            probes: if probes == 0 { 1 } else { probes },
        }
    }

    /// Opens when at least `failure_percent` of the calls within `within` failed, once there were
    /// `min_calls` of them (at least one); for `open_for`, then probes with `probes` calls.
    pub const fn rate(failure_percent: u32, min_calls: u32, within: Duration, open_for: Duration, probes: u32) -> Self {
        Self {
            trip: Trip::Rate {
                failure_percent: if failure_percent > 100 { 100 } else { failure_percent },
                min_calls: if min_calls == 0 { 1 } else { min_calls },
                slow_call: None,
                slow_percent: 100,
            },
            within,
            open_for,
            probes: if probes == 0 { 1 } else { probes },
        }
    }

    /// With the rate form, also opens when `slow_percent` of the calls took longer than `over`
    /// (no effect on the count form).
    pub const fn with_slow_calls(mut self, over: Duration, slow_percent: u32) -> Self {
        if let Trip::Rate { failure_percent, min_calls, .. } = self.trip {
            self.trip = Trip::Rate {
                failure_percent,
                min_calls,
                slow_call: Some(over),
                slow_percent: if slow_percent > 100 { 100 } else { slow_percent },
            };
        }
        self
    }
}

impl BreakerPolicy {
    /// The policy in words, for documentation pages.
    ///
    /// ```
    /// use orchestrate_core::policy::BreakerPolicy;
    /// use std::time::Duration;
    /// let rate = BreakerPolicy::rate(50, 20, Duration::from_secs(10), Duration::from_secs(30), 3);
    /// assert_eq!(rate.describe(), "opens at 50% failed calls (once 20 were made) within 10s; open 30s; 3 probes");
    /// ```
    pub fn describe(&self) -> String {
        use crate::duration::format_duration;
        let opens = match self.trip {
            Trip::Failures { failures } => {
                format!(
                    "opens after {failures} failed call{} within {}",
                    plural(failures),
                    format_duration(self.within)
                )
            }
            Trip::Rate { failure_percent, min_calls, slow_call, slow_percent } => {
                let slow = slow_call.map_or_else(String::new, |over| {
                    format!(" or {slow_percent}% slower than {}", format_duration(over))
                });
                format!(
                    "opens at {failure_percent}% failed calls{slow} (once {min_calls} were made) within {}",
                    format_duration(self.within)
                )
            }
        };
        format!("{opens}; open {}; {} probe{}", format_duration(self.open_for), self.probes, plural(self.probes))
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The keys of `breaker`.
pub const KEYS: &[&str] =
    &["failures", "failure_rate", "min_calls", "slow_call", "slow_call_rate", "within", "open_for", "probes"];

/// `min_calls` when the rate form does not say.
pub const DEFAULT_MIN_CALLS: u32 = 20;

const EXAMPLE: Example = Example {
    dsl: "breaker(failure_rate = \"50%\", min_calls = 20, within = \"10s\", open_for = \"30s\", probes = 3)",
    toml: "breaker = { failure_rate = \"50%\", min_calls = 20, within = \"10s\", open_for = \"30s\", probes = 3 }",
};

/// Reads a `breaker` group written at `at`, merged key by key into `declared`; without one,
/// `within`, `open_for`, `probes` and one of `failures` or `failure_rate` are required.
pub fn read<P: Clone>(
    reader: &mut Reader<P>,
    at: &P,
    value: &Value<P>,
    declared: Option<BreakerPolicy>,
) -> Option<BreakerPolicy> {
    let entries = reader.table(value, "breaker", &EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys("breaker", entries, KEYS);
    let mut policy = declared.unwrap_or(BreakerPolicy::new(1, Duration::ZERO, Duration::ZERO, 1));
    let (mut failures, mut rate, mut min_calls, mut slow, mut slow_rate) = (None, None, None, None, None);
    let mut positions = Vec::new();
    for entry in &keys.entries {
        let v = &entry.value;
        positions.push((entry.key.as_str(), entry.at.clone()));
        match entry.key.as_str() {
            "failures" => failures = reader.count(v, "breaker.failures", 1),
            "failure_rate" => rate = reader.percent(v, "breaker.failure_rate"),
            "min_calls" => min_calls = reader.count(v, "breaker.min_calls", 1),
            "slow_call" => slow = reader.duration(v, "breaker.slow_call"),
            "slow_call_rate" => slow_rate = reader.percent(v, "breaker.slow_call_rate"),
            "probes" => {
                if let Some(n) = reader.count(v, "breaker.probes", 1) {
                    policy.probes = n;
                }
            }
            "within" => {
                if let Some(d) = reader.duration(v, "breaker.within") {
                    policy.within = d;
                }
            }
            "open_for" => {
                if let Some(d) = reader.duration(v, "breaker.open_for") {
                    policy.open_for = d;
                }
            }
            _ => {}
        }
    }
    let position = |key: &str| positions.iter().find(|(k, _)| *k == key).map(|(_, p)| p.clone());
    let written = |key: &str| keys.written.contains(&key);
    if written("failures") && written("failure_rate") {
        let at = position("failure_rate").unwrap_or_else(|| at.clone());
        reader.fail(
            &at,
            "breaker.failure_rate",
            "a breaker opens on `failures` (a count) or on `failure_rate` (a share of calls), not both; keep one",
        );
    }
    if written("failures") {
        for key in ["min_calls", "slow_call", "slow_call_rate"] {
            if let Some(at) = position(key) {
                reader.fail(
                    &at,
                    &format!("breaker.{key}"),
                    format!("`{key}` goes with `failure_rate`; a `failures` count needs no `{key}`"),
                );
            }
        }
    }
    if written("slow_call") != written("slow_call_rate") {
        let (missing, present) =
            if written("slow_call") { ("slow_call_rate", "slow_call") } else { ("slow_call", "slow_call_rate") };
        let at = position(present).unwrap_or_else(|| at.clone());
        reader.fail(
            &at,
            &format!("breaker.{present}"),
            format!("`{present}` needs `{missing}`, e.g. `slow_call = \"1s\", slow_call_rate = \"80%\"`"),
        );
    }
    if declared.is_none() {
        let trip = if written("failure_rate") { "failure_rate" } else { "failures" };
        reader.require(at, "breaker", &keys, &[trip, "within", "open_for", "probes"], &EXAMPLE);
    }
    if reader.seen() != before {
        return None;
    }
    if let Some(n) = failures {
        policy.trip = Trip::Failures { failures: n };
    } else if rate.is_some() || min_calls.is_some() || slow.is_some() {
        let (base_percent, base_min, base_slow, base_slow_percent) = match policy.trip {
            Trip::Rate { failure_percent, min_calls, slow_call, slow_percent } => {
                (failure_percent, min_calls, slow_call, slow_percent)
            }
            Trip::Failures { .. } => (50, DEFAULT_MIN_CALLS, None, 100),
        };
        if rate.is_none() && matches!(policy.trip, Trip::Failures { .. }) {
            let at = position("min_calls").or_else(|| position("slow_call")).unwrap_or_else(|| at.clone());
            reader.fail(
                &at,
                "breaker.failure_rate",
                "the service's breaker counts `failures`; give `failure_rate` to switch it to the rate form",
            );
            return None;
        }
        policy.trip = Trip::Rate {
            failure_percent: rate.unwrap_or(base_percent),
            min_calls: min_calls.unwrap_or(base_min),
            slow_call: slow.or(base_slow),
            slow_percent: slow_rate.unwrap_or(base_slow_percent),
        };
    }
    Some(policy)
}

#[cfg(test)]
mod tests {
    use super::super::value::{Entry, Syntax};
    use super::*;

    fn table(entries: Vec<(&str, Value<u32>)>) -> Value<u32> {
        Value::Table(entries.into_iter().enumerate().map(|(i, (k, v))| Entry::new(k, i as u32 + 100, v)).collect(), 0)
    }

    fn s(text: &str) -> Value<u32> {
        Value::Str(text.into(), 1)
    }

    #[test]
    fn the_rate_form_reads_its_keys_and_defaults_min_calls() {
        let mut r = Reader::new(Syntax::Dsl);
        let v = table(vec![
            ("failure_rate", s("50%")),
            ("within", s("10s")),
            ("open_for", s("30s")),
            ("probes", Value::Number(3, 2)),
        ]);
        let policy = read(&mut r, &0, &v, None).unwrap();
        assert_eq!(policy.trip, Trip::Rate { failure_percent: 50, min_calls: 20, slow_call: None, slow_percent: 100 });
        let v = table(vec![
            ("failure_rate", s("25%")),
            ("min_calls", Value::Number(10, 2)),
            ("slow_call", s("1s")),
            ("slow_call_rate", s("80%")),
            ("within", s("10s")),
            ("open_for", s("30s")),
            ("probes", Value::Number(3, 2)),
        ]);
        let policy = read(&mut r, &0, &v, None).unwrap();
        assert_eq!(
            policy.trip,
            Trip::Rate {
                failure_percent: 25,
                min_calls: 10,
                slow_call: Some(Duration::from_secs(1)),
                slow_percent: 80
            }
        );
        assert!(r.problems().is_empty());
    }

    #[test]
    fn the_two_forms_do_not_mix() {
        let mut r = Reader::new(Syntax::Dsl);
        let v = table(vec![
            ("failures", Value::Number(5, 2)),
            ("failure_rate", s("50%")),
            ("min_calls", Value::Number(5, 2)),
            ("within", s("10s")),
            ("open_for", s("30s")),
            ("probes", Value::Number(3, 2)),
        ]);
        assert_eq!(read(&mut r, &0, &v, None), None);
        let messages: Vec<&str> = r.problems().iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "a breaker opens on `failures` (a count) or on `failure_rate` (a share of calls), not both; keep one",
                "`min_calls` goes with `failure_rate`; a `failures` count needs no `min_calls`",
            ]
        );
    }

    #[test]
    fn a_count_breaker_is_switched_to_the_rate_form_by_the_configuration_file() {
        let mut r = Reader::new(Syntax::Toml);
        let declared = BreakerPolicy::new(5, Duration::from_secs(60), Duration::from_secs(30), 3);
        let v = table(vec![("failure_rate", s("40%"))]);
        let policy = read(&mut r, &0, &v, Some(declared)).unwrap();
        assert_eq!(policy.trip, Trip::Rate { failure_percent: 40, min_calls: 20, slow_call: None, slow_percent: 100 });
        assert_eq!((policy.within, policy.probes), (Duration::from_secs(60), 3));
        assert_eq!(read(&mut r, &0, &table(vec![("min_calls", Value::Number(5, 2))]), Some(declared)), None);
    }
}
