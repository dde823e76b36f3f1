//! What the runtime keeps of recent requests for the operations page: the last requests of each
//! endpoint, and the slowest and the failed ones of a longer window.
//!
//! Written `[recent]` in the configuration file (there is no DSL form: it is a property of the
//! running process, not of an endpoint):
//!
//! ```toml
//! [recent]
//! enabled = true   # record at all
//! last = 50        # the last 50 requests of each endpoint
//! slowest = 10     # plus the 10 slowest of the window
//! failed = 20      # plus the last 20 in which a call failed (failed or partial requests)
//! within = "5m"    # the window of `slowest` and `failed`
//! ```

use super::value::{Example, Reader, Value};
use std::time::Duration;

/// How many recent requests the runtime keeps per endpoint, and for how long the slow and the
/// failed ones are kept.
///
/// Every endpoint gets its own fixed-size store of `last + slowest + failed` entries, allocated
/// when the endpoint serves its first request; nothing grows after that.
///
/// ```
/// use orchestrate_core::policy::RecentRequests;
/// use std::time::Duration;
/// let kept = RecentRequests::DEFAULT;
/// assert_eq!((kept.enabled, kept.last, kept.slowest, kept.failed), (true, 50, 10, 20));
/// assert_eq!(kept.within, Duration::from_secs(300));
/// assert_eq!(kept.entries(), 80);
/// assert!(!RecentRequests::OFF.enabled);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct RecentRequests {
    /// Whether requests are recorded at all.
    pub enabled: bool,
    /// The last requests kept per endpoint, whatever their outcome.
    pub last: u32,
    /// The slowest requests of the window kept per endpoint.
    pub slowest: u32,
    /// The last requests of the window in which a call failed (the request failed, or came back
    /// partial), kept per endpoint.
    pub failed: u32,
    /// How long a slow or failed request is kept (it may leave earlier when slower or newer ones
    /// take its place).
    #[cfg_attr(feature = "serde", serde(rename = "withinMs", serialize_with = "super::millis"))]
    pub within: Duration,
}

impl RecentRequests {
    /// On: the last 50 requests, the 10 slowest and the last 20 with a failed call of the last
    /// five minutes.
    pub const DEFAULT: Self =
        Self { enabled: true, last: 50, slowest: 10, failed: 20, within: Duration::from_secs(300) };

    /// Nothing recorded.
    pub const OFF: Self = Self { enabled: false, ..Self::DEFAULT };

    /// Keeps the `last` requests, the `slowest` and the last `failed` ones within `within`.
    /// Values beyond the limits of the configuration file ([`MAX_LAST`], [`MAX_KEPT`],
    /// [`MIN_WITHIN`]..=[`MAX_WITHIN`]) are brought within them.
    ///
    /// ```
    /// use orchestrate_core::policy::RecentRequests;
    /// use std::time::Duration;
    /// let kept = RecentRequests::new(8, 2, 3, Duration::from_secs(60));
    /// assert_eq!((kept.last, kept.slowest, kept.failed, kept.entries()), (8, 2, 3, 13));
    /// assert_eq!(RecentRequests::new(0, 500, 0, Duration::ZERO).slowest, 100);
    /// ```
    pub const fn new(last: u32, slowest: u32, failed: u32, within: Duration) -> Self {
        const fn clamp(n: u32, min: u32, max: u32) -> u32 {
            if n < min {
                min
            } else if n > max {
                max
            } else {
                n
            }
        }
        let within = if within.as_millis() < MIN_WITHIN.as_millis() {
            MIN_WITHIN
        } else if within.as_millis() > MAX_WITHIN.as_millis() {
            MAX_WITHIN
        } else {
            within
        };
        Self {
            enabled: true,
            last: clamp(last, 1, MAX_LAST),
            slowest: clamp(slowest, 0, MAX_KEPT),
            failed: clamp(failed, 0, MAX_KEPT),
            within,
        }
    }

    /// The same, switched on or off.
    ///
    /// ```
    /// use orchestrate_core::policy::RecentRequests;
    /// assert!(!RecentRequests::DEFAULT.with_enabled(false).enabled);
    /// ```
    pub const fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Entries of one endpoint's store: `last + slowest + failed` (0 when off).
    ///
    /// ```
    /// use orchestrate_core::policy::RecentRequests;
    /// assert_eq!(RecentRequests::OFF.entries(), 0);
    /// ```
    pub const fn entries(&self) -> usize {
        if self.enabled { (self.last + self.slowest + self.failed) as usize } else { 0 }
    }
}

impl Default for RecentRequests {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Largest `last`.
///
/// ```
/// assert_eq!(orchestrate_core::policy::recent::MAX_LAST, 1000);
/// ```
pub const MAX_LAST: u32 = 1000;
/// Largest `slowest` and `failed`.
///
/// ```
/// assert_eq!(orchestrate_core::policy::recent::MAX_KEPT, 100);
/// ```
pub const MAX_KEPT: u32 = 100;
/// Shortest `within`.
///
/// ```
/// assert_eq!(orchestrate_core::policy::recent::MIN_WITHIN.as_secs(), 1);
/// ```
pub const MIN_WITHIN: Duration = Duration::from_secs(1);
/// Longest `within`.
///
/// ```
/// assert_eq!(orchestrate_core::policy::recent::MAX_WITHIN.as_secs(), 86_400);
/// ```
pub const MAX_WITHIN: Duration = Duration::from_secs(24 * 60 * 60);

/// The name of the section in the configuration file.
///
/// ```
/// assert_eq!(orchestrate_core::policy::recent::SECTION, "recent");
/// ```
pub const SECTION: &str = "recent";

/// The keys of `[recent]`.
///
/// ```
/// assert!(orchestrate_core::policy::recent::KEYS.contains(&"within"));
/// ```
pub const KEYS: &[&str] = &["enabled", "last", "slowest", "failed", "within"];

const EXAMPLE: Example = Example {
    dsl: "recent(last = 50, slowest = 10, failed = 20, within = \"5m\")",
    toml: "[recent]\nlast = 50\nslowest = 10\nfailed = 20\nwithin = \"5m\"",
};

/// Reads a `[recent]` table, merged key by key into `declared` (what the runtime builder set;
/// [`RecentRequests::DEFAULT`] without one). Every key is optional.
///
/// ```
/// use orchestrate_core::policy::{Entry, Reader, RecentRequests, Syntax, Value, recent};
/// let table = Value::Table(vec![Entry::new("last", 1, Value::Number(5000, 2))], 0);
/// let mut reader = Reader::new(Syntax::Toml);
/// assert_eq!(recent::read(&mut reader, &table, None), None);
/// assert_eq!(
///     reader.problems()[0].message,
///     "more than 1000 requests per endpoint is a log, not a view of recent requests; use at most 1000 \
///      (and a tracing backend for the rest)"
/// );
///
/// let table = Value::Table(vec![Entry::new("enabled", 1, Value::Bool(false, 2))], 0);
/// let mut reader = Reader::new(Syntax::Toml);
/// let read = recent::read(&mut reader, &table, None).unwrap();
/// assert_eq!(read, RecentRequests::DEFAULT.with_enabled(false));
/// ```
pub fn read<P: Clone>(
    reader: &mut Reader<P>,
    value: &Value<P>,
    declared: Option<RecentRequests>,
) -> Option<RecentRequests> {
    let entries = reader.table(value, SECTION, &EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys(SECTION, entries, KEYS);
    let mut kept = declared.unwrap_or(RecentRequests::DEFAULT);
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "enabled" => {
                if let Some(on) = reader.switch(v, "recent.enabled") {
                    kept.enabled = on;
                }
            }
            "last" => {
                if let Some(n) = reader.number(v, "recent.last", 1, u64::MAX) {
                    if n > u64::from(MAX_LAST) {
                        let message = format!(
                            "more than {MAX_LAST} requests per endpoint is a log, not a view of recent requests; \
                             use at most {MAX_LAST} (and a tracing backend for the rest)"
                        );
                        reader.fail(v.at(), "recent.last", message);
                    } else {
                        kept.last = n as u32;
                    }
                }
            }
            "slowest" | "failed" => {
                let key = if entry.key == "slowest" { "recent.slowest" } else { "recent.failed" };
                if let Some(n) = reader.number(v, key, 0, u64::MAX) {
                    if n > u64::from(MAX_KEPT) {
                        let name = &entry.key;
                        let message = format!(
                            "`{name}` keeps requests beside the last ones; at most {MAX_KEPT} (raise `last` to see more)"
                        );
                        reader.fail(v.at(), key, message);
                    } else if entry.key == "slowest" {
                        kept.slowest = n as u32;
                    } else {
                        kept.failed = n as u32;
                    }
                }
            }
            "within" => {
                if let Some(d) = reader.duration(v, "recent.within") {
                    if d < MIN_WITHIN {
                        reader.fail(v.at(), "recent.within", "`within` must be at least \"1s\"");
                    } else if d > MAX_WITHIN {
                        let message = "`within` is at most \"24h\": slow and failed requests older than a day belong in a tracing backend";
                        reader.fail(v.at(), "recent.within", message);
                    } else {
                        kept.within = d;
                    }
                }
            }
            _ => {}
        }
    }
    (reader.seen() == before).then_some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Entry;

    type V = Value<u32>;

    fn read_all(entries: Vec<Entry<u32>>) -> Result<RecentRequests, Vec<(u32, String, String)>> {
        let mut reader = Reader::new(super::super::Syntax::Toml);
        match read(&mut reader, &V::Table(entries, 0), None) {
            Some(kept) => Ok(kept),
            None => Err(reader.into_problems().into_iter().map(|p| (p.at, p.key, p.message)).collect()),
        }
    }

    #[test]
    fn every_key_merges_into_the_defaults() {
        let kept = read_all(vec![
            Entry::new("last", 1, V::Number(8, 2)),
            Entry::new("slowest", 3, V::Number(0, 4)),
            Entry::new("within", 5, V::Str("90s".into(), 6)),
        ])
        .unwrap();
        assert_eq!(
            kept,
            RecentRequests { last: 8, slowest: 0, within: Duration::from_secs(90), ..RecentRequests::DEFAULT }
        );
    }

    #[test]
    fn every_mistake_is_reported_at_its_value() {
        let problems = read_all(vec![
            Entry::new("last", 1, V::Number(0, 2)),
            Entry::new("slowest", 3, V::Number(101, 4)),
            Entry::new("within", 5, V::Str("500ms".into(), 6)),
            Entry::new("enabled", 7, V::Str("yes".into(), 8)),
            Entry::new("failled", 9, V::Number(3, 10)),
            Entry::new("failed", 11, V::Str("3".into(), 12)),
        ])
        .unwrap_err();
        let expected: Vec<(u32, &str, &str)> = vec![
            (2, "recent.last", "`last` must be at least 1"),
            (
                4,
                "recent.slowest",
                "`slowest` keeps requests beside the last ones; at most 100 (raise `last` to see more)",
            ),
            (6, "recent.within", "`within` must be at least \"1s\""),
            (8, "recent.enabled", "`enabled` takes `true` or `false`; found a string"),
            (
                9,
                "recent.failled",
                // `failed` is written too, so it is not suggested.
                "unknown key `failled` in `recent` (expected one of: enabled, last, slowest, failed, within)",
            ),
            (12, "recent.failed", "`failed` takes a whole number, e.g. `failed = 3`; found a string"),
        ];
        let mut got: Vec<(u32, &str, &str)> = problems.iter().map(|(at, k, m)| (*at, k.as_str(), m.as_str())).collect();
        got.sort();
        assert_eq!(got, expected);
        let long = read_all(vec![Entry::new("within", 1, V::Str("25h".into(), 2))]).unwrap_err();
        assert!(long[0].2.starts_with("`within` is at most \"24h\""), "{long:?}");
    }

    #[test]
    fn not_a_table_says_how_to_write_one() {
        let problems = read_all_value(V::Number(3, 1));
        assert_eq!(
            problems,
            "`recent` is a group of settings, e.g. `[recent]\nlast = 50\nslowest = 10\nfailed = 20\nwithin = \"5m\"`; found a number"
        );
    }

    fn read_all_value(value: V) -> String {
        let mut reader = Reader::new(super::super::Syntax::Toml);
        assert!(read(&mut reader, &value, None).is_none());
        reader.into_problems().remove(0).message
    }
}
