//! How calls are spread over the instances of a service with several base URLs, and when an
//! instance is taken out (outlier ejection).
//!
//! Written `balance(rtt = "30ms", decay = "10s", failures = 5, eject_for = "30s", max_ejected =
//! "50%")` in `services!` and `balance = { .. }` in the configuration file; every key is optional
//! and defaults as in [`BalancePolicy::DEFAULT`] (Linkerd's defaults for the latency estimate).
//! A service with one base URL ignores it.

use super::value::{Example, Reader, Value};
use std::time::Duration;

/// The balancing and ejection settings of a service.
///
/// ```
/// use orchestrate_core::policy::BalancePolicy;
/// use std::time::Duration;
/// let p = BalancePolicy::DEFAULT;
/// assert_eq!((p.rtt, p.decay, p.failures, p.eject_for, p.max_ejected_percent), (Duration::from_millis(30), Duration::from_secs(10), 5, Duration::from_secs(30), 50));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct BalancePolicy {
    /// The latency estimate of an instance nothing was measured on yet.
    #[cfg_attr(feature = "serde", serde(rename = "rttMs", serialize_with = "super::millis"))]
    pub rtt: Duration,
    /// How fast the estimate forgets: a measurement's weight halves in about `decay × ln 2`.
    #[cfg_attr(feature = "serde", serde(rename = "decayMs", serialize_with = "super::millis"))]
    pub decay: Duration,
    /// Failed attempts in a row that eject an instance.
    pub failures: u32,
    /// How long the first ejection lasts; the n-th lasts n times as long.
    #[cfg_attr(feature = "serde", serde(rename = "ejectForMs", serialize_with = "super::millis"))]
    pub eject_for: Duration,
    /// The largest share of the instances ejected at once, in percent (at least one instance
    /// always stays).
    pub max_ejected_percent: u32,
}

impl BalancePolicy {
    /// 30 ms default estimate, 10 s decay, ejected after 5 failures in a row for 30 s × the
    /// ejection count, at most half of the instances ejected.
    pub const DEFAULT: Self = Self {
        rtt: Duration::from_millis(30),
        decay: Duration::from_secs(10),
        failures: 5,
        eject_for: Duration::from_secs(30),
        max_ejected_percent: 50,
    };

    /// The same policy with `failures` failed attempts in a row ejecting an instance for
    /// `eject_for`, at most `max_ejected_percent` of the instances at once.
    pub const fn with_ejection(mut self, failures: u32, eject_for: Duration, max_ejected_percent: u32) -> Self {
        self.failures = failures;
        self.eject_for = eject_for;
        self.max_ejected_percent = if max_ejected_percent > 100 { 100 } else { max_ejected_percent };
        self
    }

    /// The same policy with another default estimate and decay.
    pub const fn with_estimate(mut self, rtt: Duration, decay: Duration) -> Self {
        self.rtt = rtt;
        self.decay = decay;
        self
    }
}

impl Default for BalancePolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The keys of `balance`.
///
/// ```
/// assert_eq!(orchestrate_core::policy::balance::KEYS, &["rtt", "decay", "failures", "eject_for", "max_ejected"]);
/// ```
pub const KEYS: &[&str] = &["rtt", "decay", "failures", "eject_for", "max_ejected"];

const EXAMPLE: Example = Example {
    dsl: "balance(failures = 5, eject_for = \"30s\", max_ejected = \"50%\")",
    toml: "balance = { failures = 5, eject_for = \"30s\", max_ejected = \"50%\" }",
};

/// Reads a `balance` group, merged key by key into `declared` (or the defaults).
///
/// ```
/// use orchestrate_core::policy::{BalancePolicy, Entry, Reader, Syntax, Value, balance};
/// let group = Value::Table(vec![Entry::new("failures", 1, Value::Number(0, 2))], 0);
/// let mut reader = Reader::new(Syntax::Dsl);
/// assert_eq!(balance::read(&mut reader, &group, None), None);
/// assert_eq!(reader.problems()[0].message, "`failures` must be at least 1");
/// ```
pub fn read<P: Clone>(
    reader: &mut Reader<P>,
    value: &Value<P>,
    declared: Option<BalancePolicy>,
) -> Option<BalancePolicy> {
    let entries = reader.table(value, "balance", &EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys("balance", entries, KEYS);
    let mut policy = declared.unwrap_or(BalancePolicy::DEFAULT);
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "rtt" => {
                if let Some(d) = reader.duration(v, "balance.rtt") {
                    policy.rtt = d;
                }
            }
            "decay" => {
                if let Some(d) = reader.duration(v, "balance.decay") {
                    policy.decay = d;
                }
            }
            "failures" => {
                if let Some(n) = reader.count(v, "balance.failures", 1) {
                    policy.failures = n;
                }
            }
            "eject_for" => {
                if let Some(d) = reader.duration(v, "balance.eject_for") {
                    policy.eject_for = d;
                }
            }
            "max_ejected" => {
                if let Some(n) = reader.percent(v, "balance.max_ejected") {
                    policy.max_ejected_percent = n;
                }
            }
            _ => {}
        }
    }
    (reader.seen() == before).then_some(policy)
}
