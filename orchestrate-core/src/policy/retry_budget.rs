//! The retry budget of a service: retries allowed as a share of its calls.
//!
//! Written `retry_budget(percent = 20, within = "10s", min_retries = 10)` in `services!` and
//! `retry_budget = { percent = 20 }` in the configuration file.

use super::value::{Example, Reader, Value};
use std::time::Duration;

/// Limits retries to a share of calls over a sliding window, so a failing service does not get
/// `attempts ×` its normal load.
///
/// ```
/// use orchestrate_core::policy::RetryBudget;
/// assert_eq!(RetryBudget::DEFAULT.percent, 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct RetryBudget {
    /// Retries allowed per 100 calls.
    pub percent: u32,
    /// Window the share is computed over.
    #[cfg_attr(feature = "serde", serde(rename = "withinMs", serialize_with = "super::millis"))]
    pub within: Duration,
    /// Retries always allowed per window, so low traffic can still retry.
    pub min_retries: u32,
}

impl RetryBudget {
    /// 20% of calls over 10 s, with at least 10 retries per window.
    pub const DEFAULT: Self = Self { percent: 20, within: Duration::from_secs(10), min_retries: 10 };

    /// `percent` retries per 100 calls over `within`, at least `min_retries` per window.
    pub const fn new(percent: u32, within: Duration, min_retries: u32) -> Self {
        Self { percent: if percent > 100 { 100 } else { percent }, within, min_retries }
    }
}

/// The keys of `retry_budget`.
pub const KEYS: &[&str] = &["percent", "within", "min_retries"];

const EXAMPLE: Example = Example {
    dsl: "retry_budget(percent = 20, within = \"10s\")",
    toml: "retry_budget = { percent = 20, within = \"10s\" }",
};

/// Reads a `retry_budget` group, merged key by key into `declared`; without one, `percent` is
/// required and the others default as in [`RetryBudget::DEFAULT`].
pub fn read<P: Clone>(
    reader: &mut Reader<P>,
    at: &P,
    value: &Value<P>,
    declared: Option<RetryBudget>,
) -> Option<RetryBudget> {
    let entries = reader.table(value, "retry_budget", &EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys("retry_budget", entries, KEYS);
    let mut budget = declared.unwrap_or(RetryBudget::DEFAULT);
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "percent" => {
                if let Some(n) = reader.number(v, "retry_budget.percent", 0, 100) {
                    budget.percent = n as u32;
                }
            }
            "min_retries" => {
                if let Some(n) = reader.count(v, "retry_budget.min_retries", 0) {
                    budget.min_retries = n;
                }
            }
            "within" => {
                if let Some(d) = reader.duration(v, "retry_budget.within") {
                    budget.within = d;
                }
            }
            _ => {}
        }
    }
    if declared.is_none() {
        reader.require(at, "retry_budget", &keys, &["percent"], &EXAMPLE);
    }
    (reader.seen() == before).then_some(budget)
}
