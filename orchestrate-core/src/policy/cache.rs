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

/// Where a runtime keeps cached answers: the `[cache]` table of the configuration file and
/// `RuntimeBuilder::cache`.
///
/// ```
/// use orchestrate_core::policy::CacheSettings;
/// let settings = CacheSettings::DEFAULT.with_capacity(8 << 20).with_shared(false);
/// assert_eq!((settings.capacity, settings.shared), (8 << 20, false));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheSettings {
    /// The most bytes of answers kept in memory (the in-memory backend; a Redis server is bounded
    /// by its own `maxmemory`).
    pub capacity: u64,
    /// Whether answers are kept in the shared store when one is configured (`[store]`), so that
    /// every instance sees the others' entries and invalidations; `false` keeps them in each
    /// instance's memory even then.
    pub shared: bool,
}

/// The default in-memory capacity: 64 MiB.
///
/// ```
/// assert_eq!(orchestrate_core::policy::cache::DEFAULT_CAPACITY, 64 << 20);
/// ```
pub const DEFAULT_CAPACITY: u64 = 64 << 20;

/// The smallest capacity: 64 KiB.
///
/// ```
/// assert_eq!(orchestrate_core::policy::cache::MIN_CAPACITY, 64 << 10);
/// ```
pub const MIN_CAPACITY: u64 = 64 << 10;

impl CacheSettings {
    /// 64 MiB in memory, shared through the store when there is one.
    pub const DEFAULT: Self = Self { capacity: DEFAULT_CAPACITY, shared: true };

    /// With `capacity` bytes in memory.
    pub const fn with_capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    /// Shared through the store (when there is one) or not.
    pub const fn with_shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The name of the section in the configuration file.
///
/// ```
/// assert_eq!(orchestrate_core::policy::cache::SECTION, "cache");
/// ```
pub const SECTION: &str = "cache";

/// The keys of `[cache]`.
///
/// ```
/// assert_eq!(orchestrate_core::policy::cache::SETTINGS_KEYS, &["capacity", "shared"]);
/// ```
pub const SETTINGS_KEYS: &[&str] = &["capacity", "shared"];

const SETTINGS_EXAMPLE: Example =
    Example { dsl: "[cache] capacity = \"64MiB\"", toml: "[cache]\ncapacity = \"64MiB\"" };

/// Reads a `[cache]` table, merged key by key into `declared` (the runtime builder's settings;
/// [`CacheSettings::DEFAULT`] without them).
///
/// ```
/// use orchestrate_core::policy::{CacheSettings, Entry, Reader, Syntax, Value, cache};
/// let table = Value::Table(vec![Entry::new("capacity", 1, Value::Str("16KiB".into(), 2))], 0);
/// let mut reader = Reader::new(Syntax::Toml);
/// assert_eq!(cache::settings(&mut reader, &table, None), None);
/// assert_eq!(reader.problems()[0].message, "`capacity` must be at least 64KiB: smaller, the cache holds a handful of answers");
///
/// let table = Value::Table(vec![Entry::new("shared", 1, Value::Bool(false, 2))], 0);
/// let mut reader = Reader::new(Syntax::Toml);
/// assert_eq!(cache::settings(&mut reader, &table, None), Some(CacheSettings::DEFAULT.with_shared(false)));
/// ```
pub fn settings<P: Clone>(
    reader: &mut Reader<P>,
    value: &Value<P>,
    declared: Option<CacheSettings>,
) -> Option<CacheSettings> {
    let entries = reader.table(value, SECTION, &SETTINGS_EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys(SECTION, entries, SETTINGS_KEYS);
    let mut settings = declared.unwrap_or(CacheSettings::DEFAULT);
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "capacity" => {
                if let Some(bytes) = reader.size(v, "cache.capacity") {
                    if bytes < MIN_CAPACITY {
                        let message =
                            "`capacity` must be at least 64KiB: smaller, the cache holds a handful of answers";
                        reader.fail(v.at(), "cache.capacity", message);
                    } else {
                        settings.capacity = bytes;
                    }
                }
            }
            "shared" => {
                if let Some(shared) = reader.switch(v, "cache.shared") {
                    settings.shared = shared;
                }
            }
            _ => {}
        }
    }
    (reader.seen() == before).then_some(settings)
}
