//! Canary versions of an endpoint: a second struct serving the same method and path, which a
//! share of the requests is sent to, and which is rolled back by itself when it does worse than
//! the stable version.
//!
//! Written `canary(version = "v2", weight = 5, key = "sub")` in `#[endpoint(..)]` beside the
//! stable endpoint of the same route (the one without `canary(..)`, which gets the remaining
//! share). `key` says what keeps a user on one version: `"sub"` (the verified token's subject;
//! the endpoint needs `auth = jwt`), `"header:x-user-id"` (a request header) or `"request_id"`
//! (the default: each request on its own). The rollback keys (`error_margin`, `p99_margin`,
//! `window`, `min_requests`) say how much worse than the stable version the canary may do.
//! The configuration file changes weights and rollback keys at start-up: `[canary.SummaryV2]
//! weight = 0`.

use super::value::{Example, Reader, Value};
use std::time::Duration;

/// The file's section of canary settings, one table per endpoint: `[canary.SummaryV2]`.
pub const SECTION: &str = "canary";

/// The request header that forces a version (`x-orchestrate-version: v2`, or `stable`), for
/// testing; responses of a route with versions carry it too, naming the version that answered.
pub const VERSION_HEADER: &str = "x-orchestrate-version";

/// The version name of the endpoint without `canary(..)`.
pub const STABLE: &str = "stable";

/// What keeps a user on one version: the stable hash of this value picks the version.
///
/// ```
/// use orchestrate_core::policy::CanaryKey;
/// assert_eq!(CanaryKey::parse("header:x-user-id"), Ok(CanaryKey::Header("x-user-id")));
/// assert_eq!(CanaryKey::parse("sub").map(|k| k.to_string()), Ok("sub".to_owned()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanaryKey<S = &'static str> {
    /// The verified bearer token's `sub` claim (`"sub"`).
    Subject,
    /// The value of a request header, lowercase (`"header:x-user-id"`).
    Header(S),
    /// The request's `x-request-id` (`"request_id"`): each request is assigned on its own.
    RequestId,
}

impl<'a> CanaryKey<&'a str> {
    /// Reads `"sub"`, `"request_id"` or `"header:NAME"`; the error is the message.
    ///
    /// # Errors
    ///
    /// The message for anything else.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        match text {
            "sub" => Ok(Self::Subject),
            "request_id" => Ok(Self::RequestId),
            _ => match text.strip_prefix("header:").map(str::trim) {
                Some(name)
                    if !name.is_empty()
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
                {
                    Ok(Self::Header(name))
                }
                _ => Err(format!(
                    "invalid `key` \"{text}\": write \"sub\" (the token's subject), \"header:x-user-id\" (a request header) or \"request_id\""
                )),
            },
        }
    }
}

impl<S: AsRef<str>> std::fmt::Display for CanaryKey<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Subject => f.write_str("sub"),
            Self::Header(name) => write!(f, "header:{}", name.as_ref()),
            Self::RequestId => f.write_str("request_id"),
        }
    }
}

#[cfg(feature = "serde")]
impl<S: AsRef<str>> serde::Serialize for CanaryKey<S> {
    fn serialize<T: serde::Serializer>(&self, serializer: T) -> Result<T::Ok, T::Error> {
        serializer.collect_str(self)
    }
}

/// When a canary is rolled back: its error rate more than `error_margin_percent` points over the
/// stable version's, or its p99 more than `p99_margin` over the stable one's, over the last
/// `window`, once both versions have answered at least `min_requests` requests in it.
///
/// ```
/// use orchestrate_core::policy::Rollback;
/// use std::time::Duration;
/// let r = Rollback::DEFAULT;
/// assert_eq!((r.error_margin_percent, r.p99_margin, r.window, r.min_requests), (5, Duration::from_millis(100), Duration::from_secs(60), 50));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct Rollback {
    /// Percentage points of server errors (5xx) the canary may have over the stable version.
    pub error_margin_percent: u32,
    /// How much higher than the stable version's the canary's p99 may be.
    #[cfg_attr(feature = "serde", serde(rename = "p99MarginMs", serialize_with = "super::millis"))]
    pub p99_margin: Duration,
    /// The sliding window both are measured over.
    #[cfg_attr(feature = "serde", serde(rename = "windowMs", serialize_with = "super::millis"))]
    pub window: Duration,
    /// Requests each version must have answered in the window before they are compared.
    pub min_requests: u32,
}

impl Rollback {
    /// 5 points of errors, 100 ms of p99, over 60 s, from 50 requests each.
    pub const DEFAULT: Self = Self {
        error_margin_percent: 5,
        p99_margin: Duration::from_millis(100),
        window: Duration::from_secs(60),
        min_requests: 50,
    };

    /// The same rule with other margins.
    pub const fn with_margins(mut self, error_margin_percent: u32, p99_margin: Duration) -> Self {
        self.error_margin_percent = if error_margin_percent > 100 { 100 } else { error_margin_percent };
        self.p99_margin = p99_margin;
        self
    }

    /// The same rule over another window and minimum.
    pub const fn with_window(mut self, window: Duration, min_requests: u32) -> Self {
        self.window = window;
        self.min_requests = if min_requests == 0 { 1 } else { min_requests };
        self
    }
}

impl Default for Rollback {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A canary version of an endpoint (`S` is `&'static str` in the generated spec, `String` as
/// read).
///
/// ```
/// use orchestrate_core::policy::{Canary, CanaryKey, Rollback};
/// const V2: Canary = Canary::new("v2", 5, CanaryKey::Subject, Rollback::DEFAULT);
/// assert_eq!(V2.describe(), "version v2, 5% by sub");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "camelCase", bound(serialize = "S: serde::Serialize + AsRef<str>"))
)]
#[non_exhaustive]
pub struct Canary<S = &'static str> {
    /// The version's name (`x-orchestrate-version`, the `version` label of the metrics).
    pub version: S,
    /// The share of the route's requests it gets, in percent.
    pub weight: u32,
    /// What keeps a user on one version.
    pub key: CanaryKey<S>,
    /// When it is rolled back.
    pub rollback: Rollback,
}

impl<S> Canary<S> {
    /// Version `version` with `weight` percent of the requests, assigned by `key`.
    pub const fn new(version: S, weight: u32, key: CanaryKey<S>, rollback: Rollback) -> Self {
        Self { version, weight: if weight > 100 { 100 } else { weight }, key, rollback }
    }
}

impl<S: AsRef<str>> Canary<S> {
    /// `"version v2, 5% by sub"`.
    pub fn describe(&self) -> String {
        format!("version {}, {}% by {}", self.version.as_ref(), self.weight, self.key)
    }
}

/// The keys of `canary(..)`.
///
/// ```
/// assert_eq!(orchestrate_core::policy::canary::KEYS, &["version", "weight", "key", "error_margin", "p99_margin", "window", "min_requests"]);
/// ```
pub const KEYS: &[&str] = &["version", "weight", "key", "error_margin", "p99_margin", "window", "min_requests"];

/// The keys of a `[canary.<Endpoint>]` table: what may change at start-up (the version's name
/// and key are the code's).
pub const FILE_KEYS: &[&str] = &["weight", "error_margin", "p99_margin", "window", "min_requests"];

const EXAMPLE: Example =
    Example { dsl: "canary(version = \"v2\", weight = 5, key = \"sub\")", toml: "[canary.SummaryV2]\nweight = 5" };

/// Reads `canary(..)` of an endpoint, written at `at`.
///
/// ```
/// use orchestrate_core::policy::{CanaryKey, Entry, Reader, Syntax, Value, canary};
/// let group = |weight: i128| Value::Table(vec![
///     Entry::new("version", 1, Value::Str("v2".into(), 2)),
///     Entry::new("weight", 3, Value::Number(weight, 4)),
///     Entry::new("key", 5, Value::Str("header:x-user-id".into(), 6)),
/// ], 0);
/// let mut reader = Reader::new(Syntax::Dsl);
/// let v2 = canary::read(&mut reader, &0, &group(5)).unwrap();
/// assert_eq!((v2.version.as_str(), v2.weight, v2.key), ("v2", 5, CanaryKey::Header("x-user-id".to_owned())));
///
/// let mut reader = Reader::new(Syntax::Dsl);
/// assert_eq!(canary::read(&mut reader, &0, &group(101)), None);
/// assert_eq!(reader.problems()[0].message, "`weight` is a percentage of the route's requests, at most 100");
/// ```
pub fn read<P: Clone>(reader: &mut Reader<P>, at: &P, value: &Value<P>) -> Option<Canary<String>> {
    let entries = reader.table(value, "canary", &EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys("canary", entries, KEYS);
    reader.require(at, "canary", &keys, &["version", "weight"], &EXAMPLE);
    let mut version = String::new();
    let mut weight = 0;
    let mut key = CanaryKey::RequestId;
    let mut rollback = Rollback::DEFAULT;
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "version" => {
                if let Some(text) = reader.string(v, "canary.version", "\"v2\"") {
                    match check_version(text) {
                        Ok(()) => version = text.to_owned(),
                        Err(message) => reader.fail(v.at(), "canary.version", message),
                    }
                }
            }
            "key" => {
                if let Some(text) = reader.string(v, "canary.key", "\"sub\"") {
                    match CanaryKey::parse(text) {
                        Ok(CanaryKey::Header(name)) => key = CanaryKey::Header(name.to_ascii_lowercase()),
                        Ok(CanaryKey::Subject) => key = CanaryKey::Subject,
                        Ok(CanaryKey::RequestId) => key = CanaryKey::RequestId,
                        Err(message) => reader.fail(v.at(), "canary.key", message),
                    }
                }
            }
            other => read_tunable(reader, other, v, &mut weight, &mut rollback),
        }
    }
    (reader.seen() == before).then(|| Canary::new(version, weight, key, rollback))
}

/// A weight, margin, window or minimum, shared by the DSL and the file.
fn read_tunable<P: Clone>(reader: &mut Reader<P>, key: &str, v: &Value<P>, weight: &mut u32, rollback: &mut Rollback) {
    match key {
        "weight" => match v {
            Value::Number(n, at) if *n > 100 || *n < 0 => reader.fail(at, "canary.weight", WEIGHT_RANGE),
            _ => {
                if let Some(n) = reader.number(v, "canary.weight", 0, 100) {
                    *weight = n as u32;
                }
            }
        },
        "error_margin" => {
            if let Some(n) = reader.percent(v, "canary.error_margin") {
                rollback.error_margin_percent = n;
            }
        }
        "p99_margin" => {
            if let Some(d) = reader.duration(v, "canary.p99_margin") {
                rollback.p99_margin = d;
            }
        }
        "window" => match reader.duration(v, "canary.window") {
            Some(d) if d < Duration::from_secs(1) => {
                reader.fail(v.at(), "canary.window", "`window` must be at least \"1s\" to compare the versions");
            }
            Some(d) => rollback.window = d,
            None => {}
        },
        "min_requests" => {
            if let Some(n) = reader.count(v, "canary.min_requests", 1) {
                rollback.min_requests = n;
            }
        }
        _ => {}
    }
}

const WEIGHT_RANGE: &str = "`weight` is a percentage of the route's requests, at most 100";

/// A version name: letters, digits, `.`, `-` and `_`, not `stable` (the name of the version
/// without `canary(..)`).
///
/// ```
/// use orchestrate_core::policy::canary::check_version;
/// assert!(check_version("v2.1-beta").is_ok());
/// assert_eq!(check_version("stable").unwrap_err(), "`stable` names the version without `canary(..)`; give the canary another name, e.g. \"v2\"");
/// ```
///
/// # Errors
///
/// The message for a name that breaks the rule.
pub fn check_version(name: &str) -> Result<(), String> {
    if name == STABLE {
        return Err("`stable` names the version without `canary(..)`; give the canary another name, e.g. \"v2\"".into());
    }
    if name.is_empty() || name.len() > 32 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(format!(
            "invalid `version` \"{name}\": use up to 32 letters, digits, `.`, `-` or `_`, e.g. \"v2\""
        ));
    }
    Ok(())
}

/// What a `[canary.<Endpoint>]` table changes.
///
/// ```
/// use orchestrate_core::policy::{Canary, CanaryKey, CanaryOverride, Rollback};
/// let changed = CanaryOverride { weight: Some(0), ..CanaryOverride::default() }.apply(Canary::new("v2", 5, CanaryKey::Subject, Rollback::DEFAULT));
/// assert_eq!(changed.weight, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CanaryOverride {
    /// `weight`.
    pub weight: Option<u32>,
    /// `error_margin`.
    pub error_margin_percent: Option<u32>,
    /// `p99_margin`.
    pub p99_margin: Option<Duration>,
    /// `window`.
    pub window: Option<Duration>,
    /// `min_requests`.
    pub min_requests: Option<u32>,
}

impl CanaryOverride {
    /// `canary` with what this sets.
    pub fn apply<S>(&self, mut canary: Canary<S>) -> Canary<S> {
        let r = &mut canary.rollback;
        canary.weight = self.weight.unwrap_or(canary.weight);
        r.error_margin_percent = self.error_margin_percent.unwrap_or(r.error_margin_percent);
        r.p99_margin = self.p99_margin.unwrap_or(r.p99_margin);
        r.window = self.window.unwrap_or(r.window);
        r.min_requests = self.min_requests.unwrap_or(r.min_requests);
        canary
    }
}

/// The file's `[canary]` section: each endpoint's changes, by the endpoint's (struct's) name.
pub type CanarySettings = Vec<(String, CanaryOverride)>;

/// Reads the file's `[canary]` section, merged into `declared`.
///
/// ```
/// use orchestrate_core::policy::{Entry, Reader, Syntax, Value, canary};
/// let section = Value::Table(vec![Entry::new("SummaryV2", 0, Value::Table(vec![Entry::new("weight", 1, Value::Number(20, 2))], 0))], 0);
/// let mut reader = Reader::new(Syntax::Toml);
/// let settings = canary::settings(&mut reader, &section, Vec::new()).unwrap();
/// assert_eq!((settings[0].0.as_str(), settings[0].1.weight), ("SummaryV2", Some(20)));
/// ```
pub fn settings<P: Clone>(
    reader: &mut Reader<P>,
    value: &Value<P>,
    declared: CanarySettings,
) -> Option<CanarySettings> {
    let endpoints = reader.table(value, SECTION, &EXAMPLE)?;
    let before = reader.seen();
    let mut out = declared;
    for endpoint in endpoints {
        let group = format!("canary.{}", endpoint.key);
        let Some(entries) = reader.table(&endpoint.value, &group, &EXAMPLE) else { continue };
        let keys = reader.keys(&group, entries, FILE_KEYS);
        let mut weight = u32::MAX;
        let mut rollback = Rollback { min_requests: 0, ..Rollback::DEFAULT };
        let mut change = CanaryOverride::default();
        for entry in &keys.entries {
            read_tunable(reader, &entry.key, &entry.value, &mut weight, &mut rollback);
            match entry.key.as_str() {
                "weight" if weight != u32::MAX => change.weight = Some(weight),
                "error_margin" => change.error_margin_percent = Some(rollback.error_margin_percent),
                "p99_margin" => change.p99_margin = Some(rollback.p99_margin),
                "window" => change.window = Some(rollback.window),
                "min_requests" if rollback.min_requests > 0 => change.min_requests = Some(rollback.min_requests),
                _ => {}
            }
        }
        out.retain(|(name, _)| *name != endpoint.key);
        out.push((endpoint.key.clone(), change));
    }
    (reader.seen() == before).then_some(out)
}

/// The message for canary weights of one route adding up to more than 100.
///
/// ```
/// assert_eq!(
///     orchestrate_core::policy::canary::weights_over("POST /checkout/summary", 110),
///     "the canary weights of `POST /checkout/summary` add up to 110%; at most 100% can go to canaries (the stable version gets the rest): lower a `weight`"
/// );
/// ```
pub fn weights_over(route: &str, total: u32) -> String {
    format!(
        "the canary weights of `{route}` add up to {total}%; at most 100% can go to canaries (the stable version gets the rest): lower a `weight`"
    )
}

/// The message for two canaries of one route with the same version.
///
/// ```
/// assert_eq!(
///     orchestrate_core::policy::canary::duplicate_version("v2", "POST /checkout/summary", "SummaryV2"),
///     "`POST /checkout/summary` already has version \"v2\" (`SummaryV2`); give each canary of a route its own `version`"
/// );
/// ```
pub fn duplicate_version(version: &str, route: &str, first: &str) -> String {
    format!("`{route}` already has version \"{version}\" (`{first}`); give each canary of a route its own `version`")
}

/// The message for a canary whose route has no stable version.
///
/// ```
/// assert_eq!(
///     orchestrate_core::policy::canary::no_stable("SummaryV2", "POST /checkout/summary"),
///     "`SummaryV2` is a canary of `POST /checkout/summary`, but no endpoint serves that route without `canary(..)`: add the stable version, or remove `canary(..)` to make `SummaryV2` the stable one"
/// );
/// ```
pub fn no_stable(endpoint: &str, route: &str) -> String {
    format!(
        "`{endpoint}` is a canary of `{route}`, but no endpoint serves that route without `canary(..)`: add the stable version, or remove `canary(..)` to make `{endpoint}` the stable one"
    )
}

/// The message for `key = "sub"` on an endpoint without authentication.
pub const SUBJECT_NEEDS_AUTH: &str = "`key = \"sub\"` assigns by the verified token's subject, but this endpoint has no `auth = jwt`: add it, or assign by `\"header:x-user-id\"` or `\"request_id\"`";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Entry, Syntax};

    fn group(entries: Vec<Entry<u32>>) -> Value<u32> {
        Value::Table(entries, 0)
    }

    #[test]
    fn every_mistake_is_reported_at_its_value() {
        let mut reader = Reader::new(Syntax::Dsl);
        let value = group(vec![
            Entry::new("version", 1, Value::Str("stable".into(), 2)),
            Entry::new("weight", 3, Value::Number(-1, 4)),
            Entry::new("key", 5, Value::Str("cookie".into(), 6)),
            Entry::new("window", 7, Value::Str("10ms".into(), 8)),
            Entry::new("min_requests", 9, Value::Number(0, 10)),
        ]);
        assert_eq!(read(&mut reader, &0, &value), None);
        let found: Vec<(u32, &str)> = reader.problems().iter().map(|p| (p.at, p.key.as_str())).collect();
        assert_eq!(
            found,
            [
                (2, "canary.version"),
                (4, "canary.weight"),
                (6, "canary.key"),
                (8, "canary.window"),
                (10, "canary.min_requests")
            ]
        );
    }

    #[test]
    fn version_and_weight_are_required() {
        let mut reader = Reader::new(Syntax::Dsl);
        assert_eq!(read(&mut reader, &0, &group(vec![])), None);
        assert_eq!(
            reader.problems()[0].message,
            "`canary` needs `version` and `weight`, e.g. `canary(version = \"v2\", weight = 5, key = \"sub\")`"
        );
    }

    #[test]
    fn the_file_changes_weights_and_refuses_the_version() {
        let mut reader = Reader::new(Syntax::Toml);
        let section = group(vec![Entry::new(
            "SummaryV2",
            1,
            group(vec![
                Entry::new("weight", 2, Value::Number(0, 3)),
                Entry::new("version", 4, Value::Str("v3".into(), 5)),
            ]),
        )]);
        assert_eq!(settings(&mut reader, &section, Vec::new()), None);
        assert_eq!(
            reader.problems()[0].message,
            "unknown key `version` in `canary.SummaryV2` (expected one of: weight, error_margin, p99_margin, window, min_requests)"
        );
        let mut reader = Reader::new(Syntax::Toml);
        let section =
            group(vec![Entry::new("SummaryV2", 1, group(vec![Entry::new("weight", 2, Value::Number(0, 3))]))]);
        let read = settings(&mut reader, &section, Vec::new()).unwrap();
        assert_eq!(
            read,
            vec![("SummaryV2".to_owned(), CanaryOverride { weight: Some(0), ..CanaryOverride::default() })]
        );
    }
}
