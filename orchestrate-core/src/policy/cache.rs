//! Response caching of a call or of a whole endpoint: how long an answer is fresh, and how long
//! after that it may still be served while it is refreshed.
//!
//! Written `cache(ttl = "60s", stale = "30s" [, key = expr] [, tags = [expr, ..]])` in
//! `#[call(..)]` and `#[endpoint(..)]`. `key` and `tags` are Rust expressions, read by the macro;
//! the durations and their rules are here.

use super::value::{Example, Reader, Value};
use std::time::Duration;

/// How long answers are kept.
///
/// ```
/// use orchestrate_core::policy::CachePolicy;
/// use std::time::Duration;
/// const DASHBOARD: CachePolicy = CachePolicy::new(Duration::from_secs(60), Duration::from_secs(30));
/// assert_eq!(DASHBOARD.horizon(), Duration::from_secs(90));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct CachePolicy {
    /// How long a stored answer is fresh: served without asking the service.
    #[cfg_attr(feature = "serde", serde(rename = "ttlMs", serialize_with = "super::millis"))]
    pub ttl: Duration,
    /// How long after that it is still served at once while one refresh runs in the background,
    /// and served when the refresh or the service fails (stale-while-revalidate,
    /// stale-if-error).
    #[cfg_attr(feature = "serde", serde(rename = "staleMs", serialize_with = "super::millis"))]
    pub stale: Duration,
}

impl CachePolicy {
    /// Fresh for `ttl`, then stale for `stale`.
    pub const fn new(ttl: Duration, stale: Duration) -> Self {
        Self { ttl, stale }
    }

    /// How long an answer is kept at all: `ttl + stale`.
    pub const fn horizon(&self) -> Duration {
        self.ttl.saturating_add(self.stale)
    }

    /// The policy in words: `"1m (then 30s stale)"`.
    ///
    /// ```
    /// use orchestrate_core::policy::CachePolicy;
    /// use std::time::Duration;
    /// assert_eq!(CachePolicy::new(Duration::from_secs(60), Duration::ZERO).describe(), "1m");
    /// assert_eq!(CachePolicy::new(Duration::from_secs(90), Duration::from_secs(30)).describe(), "1m30s (then 30s stale)");
    /// ```
    pub fn describe(&self) -> String {
        use crate::duration::format_duration;
        if self.stale.is_zero() {
            format_duration(self.ttl)
        } else {
            format!("{} (then {} stale)", format_duration(self.ttl), format_duration(self.stale))
        }
    }
}

/// The keys of `cache`: `ttl` and `stale` are durations; `key` and `tags` expressions.
pub const KEYS: &[&str] = &["ttl", "stale", "key", "tags"];

/// The duration keys, read here.
pub const DURATION_KEYS: &[&str] = &["ttl", "stale"];

const EXAMPLE: Example =
    Example { dsl: "cache(ttl = \"60s\", stale = \"30s\")", toml: "cache = { ttl = \"60s\", stale = \"30s\" }" };

/// Reads the durations of a `cache` group written at `at` (the other keys already taken out by
/// the caller): `ttl` is required, `stale` defaults to zero.
pub fn read<P: Clone>(reader: &mut Reader<P>, at: &P, value: &Value<P>) -> Option<CachePolicy> {
    let entries = reader.table(value, "cache", &EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys("cache", entries, DURATION_KEYS);
    let (mut ttl, mut stale) = (None, Duration::ZERO);
    for entry in &keys.entries {
        match entry.key.as_str() {
            "ttl" => ttl = reader.duration(&entry.value, "cache.ttl"),
            "stale" => {
                if let Some(d) = reader.duration(&entry.value, "cache.stale") {
                    stale = d;
                }
            }
            _ => {}
        }
    }
    reader.require(at, "cache", &keys, &["ttl"], &EXAMPLE);
    (reader.seen() == before).then(|| CachePolicy::new(ttl.unwrap_or_default(), stale))
}

/// Why a call may not be cached: it is not a GET and not marked `idempotent` (`method` is its
/// method).
pub fn unsafe_to_cache(call: &str, method: &str) -> String {
    format!(
        "`{call}` is a `{method}`, whose answer depends on its effect: caching it would skip the effect; mark it `idempotent` if it only computes (e.g. a pure `POST /calculate`), or remove `cache`"
    )
}

/// Why an endpoint may not be cached: it is not a GET.
pub fn endpoint_not_get(method: &str) -> String {
    format!(
        "only GET endpoints are cached: a `{method}` changes something on each request; remove `cache` or make the endpoint GET"
    )
}
