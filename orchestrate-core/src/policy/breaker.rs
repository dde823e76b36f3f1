//! The circuit breaker of a service: when it opens, how long it stays open, how it probes.
//!
//! Written `breaker(failures = 5, within = "60s", open_for = "30s", probes = 3)` in `services!`
//! and `breaker = { failures = 5, within = "60s", open_for = "30s", probes = 3 }` in the
//! configuration file.

use super::value::{Example, Reader, Value};
use std::time::Duration;

/// Circuit breaker: opens after `failures` failures within `within`, stays open for `open_for`,
/// then lets exactly `probes` calls through; their success closes it, a failure reopens it.
///
/// ```
/// use orchestrate_core::policy::BreakerPolicy;
/// use std::time::Duration;
/// const BREAKER: BreakerPolicy = BreakerPolicy::new(5, Duration::from_secs(60), Duration::from_secs(30), 3);
/// assert_eq!(BREAKER.probes, 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct BreakerPolicy {
    /// Failures within the window that open the breaker.
    pub failures: u32,
    /// The window.
    #[cfg_attr(feature = "serde", serde(rename = "withinMs", serialize_with = "super::millis"))]
    pub within: Duration,
    /// How long the breaker stays open before probing.
    #[cfg_attr(feature = "serde", serde(rename = "openForMs", serialize_with = "super::millis"))]
    pub open_for: Duration,
    /// Calls let through while half-open.
    pub probes: u32,
}

impl BreakerPolicy {
    /// Opens after `failures` failures within `within`, for `open_for`, then probes with `probes`
    /// calls. Zero failures or probes count as one.
    pub const fn new(failures: u32, within: Duration, open_for: Duration, probes: u32) -> Self {
        Self {
            failures: if failures == 0 { 1 } else { failures },
            within,
            open_for,
            probes: if probes == 0 { 1 } else { probes },
        }
    }
}

/// The keys of `breaker`.
pub const KEYS: &[&str] = &["failures", "within", "open_for", "probes"];

const EXAMPLE: Example = Example {
    dsl: "breaker(failures = 5, within = \"60s\", open_for = \"30s\", probes = 3)",
    toml: "breaker = { failures = 5, within = \"60s\", open_for = \"30s\", probes = 3 }",
};

/// Reads a `breaker` group written at `at`, merged key by key into `declared`; without one, every
/// key is required.
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
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "failures" => {
                if let Some(n) = reader.count(v, "breaker.failures", 1) {
                    policy.failures = n;
                }
            }
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
    if declared.is_none() {
        reader.require(at, "breaker", &keys, KEYS, &EXAMPLE);
    }
    (reader.seen() == before).then_some(policy)
}
