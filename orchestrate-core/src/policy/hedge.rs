//! Hedged reads: when a call's first attempt has not answered after a delay, another attempt of
//! the same request is sent (to another instance when the service has several), and the first
//! success wins.
//!
//! Written `hedge(after = "50ms" [, max = 1])` in `#[call(..)]`, only on a call that is safe to
//! repeat (a GET, HEAD, PUT, DELETE or OPTIONS, a call marked `idempotent`, or one with an
//! `idempotency_key`). How many hedges a service may receive is its `hedge_budget = "10%"` in
//! `services!` and in the configuration file: a share of its hedged calls over
//! [`HedgeBudget::WINDOW`], so that a service that is slow for everyone does not get twice its
//! load.

use super::value::{Example, Reader, Value};
use std::time::Duration;

/// When to send hedges of a call, and how many.
///
/// The `n`-th hedge is sent `n × after` after the first attempt started, while none has answered
/// with a success, at most `max` of them.
///
/// ```
/// use orchestrate_core::policy::HedgePolicy;
/// use std::time::Duration;
/// let hedge = HedgePolicy::new(Duration::from_millis(50));
/// assert_eq!(hedge.max, 1, "one hedge unless set");
/// assert_eq!(hedge.with_max(2).max, 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct HedgePolicy {
    /// How long the first attempt may go unanswered before a hedge is sent.
    #[cfg_attr(feature = "serde", serde(rename = "afterMs", serialize_with = "super::millis"))]
    pub after: Duration,
    /// Hedges in flight at most besides the first attempt.
    pub max: u32,
}

impl HedgePolicy {
    /// The most hedges one attempt may send: each one is a whole extra request.
    pub const MAX_HEDGES: u32 = 3;

    /// One hedge after `after`.
    pub const fn new(after: Duration) -> Self {
        Self { after, max: 1 }
    }

    /// At most `max` hedges (capped at [`MAX_HEDGES`](Self::MAX_HEDGES)).
    pub const fn with_max(mut self, max: u32) -> Self {
        self.max = if max > Self::MAX_HEDGES { Self::MAX_HEDGES } else { max };
        self
    }
}

/// The share of a service's hedged calls that may send a hedge.
///
/// A hedge is allowed while `hedges × 100 < calls × percent + MIN_HEDGES × 100` over the last
/// [`WINDOW`](Self::WINDOW), counting the calls that have `hedge(..)`: with 10% a service gets at
/// most 1.1× their rate (plus the floor) however slow it is, and a quiet service can still hedge.
/// `"0%"` turns hedging off for the service (the floor too).
///
/// ```
/// use orchestrate_core::policy::HedgeBudget;
/// assert_eq!(HedgeBudget::DEFAULT.percent, 10);
/// assert_eq!(HedgeBudget::new(150).percent, 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct HedgeBudget {
    /// Hedges allowed per 100 hedged calls.
    pub percent: u32,
}

impl HedgeBudget {
    /// 10% of the hedged calls.
    pub const DEFAULT: Self = Self { percent: 10 };

    /// The window the share is computed over.
    pub const WINDOW: Duration = Duration::from_secs(10);

    /// Hedges always allowed per window (unless the share is 0%), so that low traffic can still
    /// hedge.
    pub const MIN_HEDGES: u32 = 10;

    /// `percent` hedges per 100 hedged calls (at most 100).
    pub const fn new(percent: u32) -> Self {
        Self { percent: if percent > 100 { 100 } else { percent } }
    }
}

impl Default for HedgeBudget {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The keys of `hedge`.
///
/// ```
/// assert_eq!(orchestrate_core::policy::hedge::KEYS, &["after", "max"]);
/// ```
pub const KEYS: &[&str] = &["after", "max"];

const EXAMPLE: Example = Example { dsl: "hedge(after = \"50ms\")", toml: "hedge = { after = \"50ms\" }" };

/// Reads a `hedge` group written at `at`: `after` is required, `max` defaults to 1.
///
/// Problems: unknown or repeated keys, a missing or malformed `after` (zero is refused), `max` outside 1 to
/// [`HedgePolicy::MAX_HEDGES`].
///
/// ```
/// use orchestrate_core::policy::{Entry, Reader, Syntax, Value, hedge};
/// let group = Value::Table(vec![Entry::new("after", 1, Value::Str("50ms".into(), 2)), Entry::new("max", 3, Value::Number(4, 4))], 0);
/// let mut reader = Reader::new(Syntax::Dsl);
/// assert_eq!(hedge::read(&mut reader, &0, &group), None);
/// assert_eq!((reader.problems()[0].at, reader.problems()[0].message.as_str()), (4, "`max` must be at most 3"));
/// ```
pub fn read<P: Clone>(reader: &mut Reader<P>, at: &P, value: &Value<P>) -> Option<HedgePolicy> {
    let entries = reader.table(value, "hedge", &EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys("hedge", entries, KEYS);
    let (mut after, mut max) = (None, 1);
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "after" => {
                // The duration grammar refuses zero: a hedge sent at once would double every call.
                after = reader.duration(v, "hedge.after");
            }
            "max" => {
                if let Some(n) = reader.number(v, "hedge.max", 1, u64::from(HedgePolicy::MAX_HEDGES)) {
                    max = n as u32;
                }
            }
            _ => {}
        }
    }
    reader.require(at, "hedge", &keys, &["after"], &EXAMPLE);
    if reader.seen() != before {
        return None;
    }
    after.map(|after| HedgePolicy::new(after).with_max(max))
}

/// Reads `hedge_budget = "10%"` of a service.
///
/// ```
/// use orchestrate_core::policy::{HedgeBudget, Reader, Syntax, Value, hedge};
/// let mut reader = Reader::new(Syntax::Toml);
/// assert_eq!(hedge::read_budget(&mut reader, &Value::Str("5%".into(), 0)), Some(HedgeBudget::new(5)));
/// assert_eq!(hedge::read_budget(&mut reader, &Value::Str("5".into(), 1)), None);
/// assert_eq!(reader.problems()[0].message, "invalid `hedge_budget`: write the share with `%`, e.g. \"5%\"");
/// ```
pub fn read_budget<P: Clone>(reader: &mut Reader<P>, value: &Value<P>) -> Option<HedgeBudget> {
    reader.percent(value, "hedge_budget").map(HedgeBudget::new)
}

/// The message for `hedge(..)` on a call that is unsafe to repeat (`method` is `None` for custom
/// logic).
///
/// ```
/// let m = orchestrate_core::policy::hedge::unsafe_call_hedge("charge", Some("POST"));
/// assert!(m.starts_with("`charge` hedges, but `POST` is not idempotent: a hedge sends the request twice"));
/// ```
pub fn unsafe_call_hedge(call: &str, method: Option<&str>) -> String {
    match method {
        Some(method) => format!(
            "`{call}` hedges, but `{method}` is not idempotent: a hedge sends the request twice and could repeat its effect (a second charge, a second order); add `idempotency_key = ..` (the same on both requests), mark the call `idempotent` if repeating it is safe, or remove `hedge`"
        ),
        None => format!(
            "`{call}` hedges, but custom logic is not known to be idempotent: a hedge runs it twice; mark it `idempotent` if repeating it is safe, or remove `hedge`"
        ),
    }
}

/// The message for a hedge delay that is not below the call's timeout (the hedge would never be
/// sent).
///
/// ```
/// let m = orchestrate_core::policy::hedge::after_not_below_timeout("cart", 200, 200);
/// assert_eq!(m, "`cart` hedges after 200ms, but its attempts time out after 200ms: no hedge would ever be sent; make `after` smaller than `timeout`");
/// ```
pub fn after_not_below_timeout(call: &str, after_ms: u64, timeout_ms: u64) -> String {
    format!(
        "`{call}` hedges after {after_ms}ms, but its attempts time out after {timeout_ms}ms: no hedge would ever be sent; make `after` smaller than `timeout`"
    )
}

#[cfg(test)]
mod tests {
    use super::super::value::{Entry, Syntax};
    use super::*;

    fn table(entries: Vec<(&str, Value<u32>)>) -> Value<u32> {
        Value::Table(entries.into_iter().enumerate().map(|(i, (k, v))| Entry::new(k, i as u32 + 100, v)).collect(), 0)
    }

    fn messages(r: &Reader<u32>) -> Vec<String> {
        r.problems().iter().map(|p| p.message.clone()).collect()
    }

    #[test]
    fn after_is_required_and_max_defaults_to_one() {
        let mut r = Reader::new(Syntax::Dsl);
        let policy = read(&mut r, &0, &table(vec![("after", Value::Str("50ms".into(), 1))])).unwrap();
        assert_eq!((policy.after, policy.max), (Duration::from_millis(50), 1));
        let two = table(vec![("after", Value::Str("1s".into(), 1)), ("max", Value::Number(2, 2))]);
        assert_eq!(read(&mut r, &0, &two).map(|p| p.max), Some(2));
        assert_eq!(read(&mut r, &0, &table(vec![("max", Value::Number(2, 1))])), None);
        assert_eq!(messages(&r), ["`hedge` needs `after`, e.g. `hedge(after = \"50ms\")`"]);
    }

    #[test]
    fn every_mistake_of_a_group_is_reported_at_once() {
        let mut r = Reader::new(Syntax::Dsl);
        let wrong = table(vec![
            ("after", Value::Str("0ms".into(), 1)),
            ("max", Value::Number(0, 2)),
            ("delay", Value::Str("5ms".into(), 3)),
        ]);
        assert_eq!(read(&mut r, &0, &wrong), None);
        assert_eq!(
            messages(&r),
            [
                "unknown key `delay` in `hedge` (expected one of: after, max)",
                "invalid `after`: a duration of zero is not allowed here; use at least \"1ms\"",
                "`max` must be at least 1",
            ]
        );
        assert_eq!(r.problems().iter().map(|p| p.at).collect::<Vec<_>>(), [102, 1, 2]);
    }

    #[test]
    fn the_budget_is_a_percentage() {
        let mut r = Reader::new(Syntax::Toml);
        assert_eq!(read_budget(&mut r, &Value::Str("0%".into(), 0)), Some(HedgeBudget::new(0)));
        assert_eq!(read_budget(&mut r, &Value::Str("120%".into(), 1)), None);
        assert_eq!(messages(&r), ["`hedge_budget` is a percentage, at most \"100%\""]);
    }
}
