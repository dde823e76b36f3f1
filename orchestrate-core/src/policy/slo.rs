//! An endpoint's service-level objective: the share of its requests that must succeed and the
//! latency 99% of them must stay under.
//!
//! Written `slo(availability = "99.9%", p99 = "300ms")` in `#[endpoint(..)]` (either key may be
//! left out, not both). The runtime turns it into Prometheus recording rules and burn-rate
//! alerts (`/_orchestrate/alerts.yml`) and holds the recent requests to its `p99`.

use super::value::{Example, Reader, Value};
use std::time::Duration;

/// A share of requests, in parts per million (`"99.95%"` is 999 500): exact, unlike a float,
/// and `const`-constructible.
///
/// ```
/// use orchestrate_core::policy::Availability;
/// let checkout = Availability::from_ppm(999_500);
/// assert_eq!(checkout.to_string(), "99.95%");
/// assert_eq!(checkout.error_budget(), 0.0005);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Availability(u32);

impl Availability {
    /// `ppm` requests of a million succeed.
    pub const fn from_ppm(ppm: u32) -> Self {
        Self(if ppm > 1_000_000 { 1_000_000 } else { ppm })
    }

    /// Parts per million.
    pub const fn ppm(self) -> u32 {
        self.0
    }

    /// The share of requests that may fail: `1 - availability` (0.001 for 99.9%).
    pub fn error_budget(self) -> f64 {
        f64::from(1_000_000 - self.0) / 1_000_000.0
    }
}

impl std::fmt::Display for Availability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (whole, mut part) = (self.0 / 10_000, self.0 % 10_000);
        if part == 0 {
            return write!(f, "{whole}%");
        }
        let mut digits = 4;
        while part % 10 == 0 {
            part /= 10;
            digits -= 1;
        }
        write!(f, "{whole}.{part:0digits$}%")
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Availability {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What an endpoint promises.
///
/// ```
/// use orchestrate_core::policy::{Availability, Slo};
/// use std::time::Duration;
/// const CHECKOUT: Slo = Slo::new().with_availability(Availability::from_ppm(999_500)).with_p99(Duration::from_millis(300));
/// assert_eq!(CHECKOUT.describe(), "99.95% available, p99 300ms");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct Slo {
    /// The share of requests answered without a server error (any status below 500), if
    /// promised.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub availability: Option<Availability>,
    /// The latency 99% of requests stay under, if promised.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "p99Ms", serialize_with = "millis_opt", skip_serializing_if = "Option::is_none")
    )]
    pub p99: Option<Duration>,
}

#[cfg(feature = "serde")]
fn millis_opt<S: serde::Serializer>(duration: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match duration {
        Some(d) => super::millis(d, serializer),
        None => serializer.serialize_none(),
    }
}

impl Slo {
    /// Nothing promised yet.
    pub const fn new() -> Self {
        Self { availability: None, p99: None }
    }

    /// Promises `availability`.
    pub const fn with_availability(mut self, availability: Availability) -> Self {
        self.availability = Some(availability);
        self
    }

    /// Promises a p99 latency of `p99`.
    pub const fn with_p99(mut self, p99: Duration) -> Self {
        self.p99 = Some(p99);
        self
    }

    /// The objective in words: `"99.9% available, p99 300ms"`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = self.availability {
            parts.push(format!("{a} available"));
        }
        if let Some(p99) = self.p99 {
            parts.push(format!("p99 {}", crate::duration::format_duration(p99)));
        }
        parts.join(", ")
    }
}

/// The keys of `slo`.
///
/// ```
/// assert_eq!(orchestrate_core::policy::slo::KEYS, &["availability", "p99"]);
/// ```
pub const KEYS: &[&str] = &["availability", "p99"];

const EXAMPLE: Example = Example {
    dsl: "slo(availability = \"99.9%\", p99 = \"300ms\")",
    toml: "slo = { availability = \"99.9%\", p99 = \"300ms\" }",
};

/// Reads an `slo` group written at `at`.
///
/// ```
/// use orchestrate_core::policy::{Entry, Reader, Syntax, Value, slo};
/// let group = |availability: &str| {
///     Value::Table(vec![Entry::new("availability", 1, Value::Str(availability.into(), 2))], 0)
/// };
/// let mut reader = Reader::new(Syntax::Dsl);
/// assert_eq!(slo::read(&mut reader, &0, &group("99.95%")).unwrap().availability.unwrap().ppm(), 999_500);
///
/// let mut reader = Reader::new(Syntax::Dsl);
/// assert_eq!(slo::read(&mut reader, &0, &group("100%")), None);
/// assert_eq!(
///     reader.problems()[0].message,
///     "`availability` is a percentage below 100 (no service meets 100%, and it leaves no error budget), e.g. \"99.9%\""
/// );
/// ```
pub fn read<P: Clone>(reader: &mut Reader<P>, at: &P, value: &Value<P>) -> Option<Slo> {
    let entries = reader.table(value, "slo", &EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys("slo", entries, KEYS);
    let mut slo = Slo::new();
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "availability" => {
                if let Some(text) = reader.string(v, "slo.availability", "\"99.9%\"") {
                    match availability(text) {
                        Ok(a) => slo.availability = Some(a),
                        Err(message) => reader.fail(v.at(), "slo.availability", message),
                    }
                }
            }
            "p99" => {
                // The duration grammar refuses zero.
                if let Some(d) = reader.duration(v, "slo.p99") {
                    slo.p99 = Some(d);
                }
            }
            _ => {}
        }
    }
    if keys.written.is_empty() {
        let message = format!("`slo` needs `availability`, `p99` or both, e.g. `{}`", EXAMPLE.of(reader.syntax()));
        reader.fail(at, "slo", message);
    }
    (reader.seen() == before).then_some(slo)
}

/// `"99.95%"` → 999 500 ppm: a percentage above 0 and below 100, with at most four decimals.
///
/// ```
/// use orchestrate_core::policy::slo::availability;
/// assert_eq!(availability("99.9%").unwrap().ppm(), 999_000);
/// assert_eq!(availability("99.9").unwrap_err(), "invalid `availability`: write the share with `%`, e.g. \"99.9%\"");
/// ```
pub fn availability(text: &str) -> Result<Availability, String> {
    const BELOW_100: &str = "`availability` is a percentage below 100 (no service meets 100%, and it leaves no error budget), e.g. \"99.9%\"";
    let Some(number) = text.strip_suffix('%') else {
        return Err(if parse_ppm(text).is_some() {
            format!("invalid `availability`: write the share with `%`, e.g. \"{text}%\"")
        } else {
            "invalid `availability`: write a percentage, e.g. \"99.9%\"".to_owned()
        });
    };
    match parse_ppm(number) {
        Some(ppm) if ppm >= 1_000_000 => Err(BELOW_100.to_owned()),
        Some(0) => Err("`availability` must be above 0%, e.g. \"99.9%\"".to_owned()),
        Some(ppm) => Ok(Availability::from_ppm(ppm)),
        None if number.split_once('.').is_some_and(|(_, d)| d.len() > 4 && d.bytes().all(|b| b.is_ascii_digit())) => {
            Err("invalid `availability`: at most four decimals, e.g. \"99.9999%\"".to_owned())
        }
        None => Err("invalid `availability`: write a percentage, e.g. \"99.9%\"".to_owned()),
    }
}

/// `"99.95"` → 999 500; `None` for anything but digits with at most four decimals.
fn parse_ppm(number: &str) -> Option<u32> {
    let (whole, decimals) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 3 || !digits(whole) || decimals.len() > 4 || !digits(decimals) {
        return None;
    }
    if number.ends_with('.') {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let mut part: u32 = if decimals.is_empty() { 0 } else { decimals.parse().ok()? };
    for _ in decimals.len()..4 {
        part *= 10;
    }
    whole.checked_mul(10_000)?.checked_add(part)
}

/// Why an SLO's `p99` cannot hold: it is longer than the endpoint's `timeout`, which cuts every
/// request before then. `None` when it fits.
///
/// ```
/// use orchestrate_core::policy::slo::p99_over_timeout;
/// use std::time::Duration;
/// assert_eq!(p99_over_timeout(Duration::from_millis(300), Duration::from_secs(2)), None);
/// assert_eq!(
///     p99_over_timeout(Duration::from_secs(3), Duration::from_secs(2)).unwrap(),
///     "the SLO's `p99` (3s) is longer than the endpoint's `timeout` (2s), which ends every request before then; lower `p99` or raise `timeout`"
/// );
/// ```
pub fn p99_over_timeout(p99: Duration, timeout: Duration) -> Option<String> {
    use crate::duration::format_duration;
    (p99 > timeout).then(|| {
        format!(
            "the SLO's `p99` ({}) is longer than the endpoint's `timeout` ({}), which ends every request before then; lower `p99` or raise `timeout`",
            format_duration(p99),
            format_duration(timeout)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availabilities_read_exactly_and_print_as_written() {
        for (text, ppm) in
            [("99.9%", 999_000), ("99.95%", 999_500), ("99.999%", 999_990), ("90%", 900_000), ("0.5%", 5_000)]
        {
            let a = availability(text).unwrap();
            assert_eq!(a.ppm(), ppm, "{text}");
            assert_eq!(a.to_string(), text);
        }
        assert!(availability("100%").is_err());
        assert!(availability("100.0%").is_err());
        assert!(availability("101%").is_err());
        assert!(availability("0%").is_err());
        assert!(availability("-1%").is_err());
        assert!(availability("99.%").is_err());
        assert!(availability("99.99999%").unwrap_err().contains("four decimals"));
        assert!(availability("high").unwrap_err().contains("write a percentage"));
    }

    #[test]
    fn an_empty_or_unknown_group_says_what_it_takes() {
        let mut reader = Reader::new(super::super::Syntax::Dsl);
        assert_eq!(read(&mut reader, &0, &Value::Table(Vec::new(), 0)), None);
        assert_eq!(
            reader.problems()[0].message,
            "`slo` needs `availability`, `p99` or both, e.g. `slo(availability = \"99.9%\", p99 = \"300ms\")`"
        );
    }
}
