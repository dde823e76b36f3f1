//! Inbound rate limits: how many requests a user, a client address, a user on one endpoint, and
//! everyone together may send.
//!
//! Written `rate_limit(per_user = "100/min", per_ip = "500/min", per_endpoint = "50/min",
//! global = "10000/min")` on an `#[orchestrate::api]` module or an `#[endpoint(..)]` (every key
//! optional; an endpoint's keys override its module's, key by key), and in the configuration file's
//! `[rate_limit]` section (for every endpoint) or `[rate_limit.endpoints.<Name>]` (for one), which
//! override the code key by key; `"off"` there removes a declared limit.
//!
//! A rate is a whole number of requests per unit: `"100/min"`, `"200/s"`, `"5000/h"`, `"1/d"`.
//! Each limit is a GCRA (a token bucket without a timer): up to the number at once, then one
//! request every `unit / number`.

use super::value::{Example, Reader, Value};
use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

/// A number of requests per period.
///
/// ```
/// use orchestrate_core::policy::rate_limit::{Rate, parse_rate};
/// use std::time::Duration;
/// let rate = parse_rate("100/min").unwrap();
/// assert_eq!(rate, Rate::new(100, Duration::from_secs(60)));
/// assert_eq!(rate.interval(), Duration::from_millis(600));
/// assert_eq!(rate.describe(), "100/min");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
pub struct Rate {
    /// How many requests per `per` (and at most at once).
    pub count: u32,
    /// The period.
    #[cfg_attr(feature = "serde", serde(rename = "perMs", serialize_with = "super::millis"))]
    pub per: Duration,
}

impl Rate {
    /// `count` requests per `per`.
    pub const fn new(count: u32, per: Duration) -> Self {
        Self { count, per }
    }

    /// The time one request's share takes to come back: `per / count`.
    pub const fn interval(&self) -> Duration {
        let nanos = self.per.as_nanos() / if self.count == 0 { 1 } else { self.count as u128 };
        Duration::from_nanos(if nanos > u64::MAX as u128 { u64::MAX } else { nanos as u64 })
    }

    /// The rate as written: `"100/min"`.
    ///
    /// ```
    /// use orchestrate_core::policy::rate_limit::Rate;
    /// use std::time::Duration;
    /// assert_eq!(Rate::new(200, Duration::from_secs(1)).describe(), "200/s");
    /// assert_eq!(Rate::new(5, Duration::from_secs(7)).describe(), "5/7s");
    /// ```
    pub fn describe(&self) -> String {
        let unit = match self.per.as_secs() {
            _ if self.per.subsec_nanos() != 0 => format!("{}ms", self.per.as_millis()),
            1 => "s".to_owned(),
            60 => "min".to_owned(),
            3600 => "h".to_owned(),
            86_400 => "d".to_owned(),
            secs => format!("{secs}s"),
        };
        format!("{}/{unit}", self.count)
    }
}

/// Why a rate does not parse: the offending part (a byte range of the text) and what to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateError {
    /// The offending part of the text.
    pub at: Range<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

const UNITS: &str = "`s`, `min`, `h` or `d`";

/// Parses `"100/min"`: a whole number from 1, `/`, and a unit (`s`, `min`, `h`, `d`), optionally
/// with a number of units (`"10/5s"`).
///
/// ```
/// use orchestrate_core::policy::rate_limit::parse_rate;
/// use std::time::Duration;
/// assert_eq!(parse_rate("200/s").unwrap().per, Duration::from_secs(1));
/// assert_eq!(parse_rate("5000/h").unwrap().count, 5000);
/// let e = parse_rate("100/mins").unwrap_err();
/// assert_eq!((e.at, e.message.as_str()), (4..8, "unknown unit `mins`; use `s`, `min`, `h` or `d`, e.g. \"100/min\""));
/// ```
pub fn parse_rate(text: &str) -> Result<Rate, RateError> {
    let whole = 0..text.len();
    let Some(slash) = text.find('/') else {
        let message = match text.trim().parse::<u64>() {
            Ok(n) => format!("a rate needs its period; write e.g. \"{n}/min\""),
            Err(_) => "a rate is a number of requests per unit, e.g. \"100/min\", \"200/s\" or \"5000/h\"".to_owned(),
        };
        return Err(RateError { at: whole, message });
    };
    let (count_text, unit_text) = (&text[..slash], &text[slash + 1..]);
    if text.contains(' ') {
        let compact: String = text.chars().filter(|c| *c != ' ').collect();
        return Err(RateError { at: whole, message: format!("rates have no spaces; write \"{compact}\"") });
    }
    let count = match count_text.parse::<u64>() {
        Ok(0) => {
            return Err(RateError {
                at: 0..slash,
                message: "a limit admits at least 1 request; remove the limit instead of writing 0".to_owned(),
            });
        }
        Ok(n) => u32::try_from(n)
            .map_err(|_| RateError { at: 0..slash, message: format!("at most {} requests per period", u32::MAX) })?,
        Err(_) => {
            return Err(RateError {
                at: 0..slash,
                message: format!(
                    "`{count_text}` is not a whole number of requests; write e.g. \"100/{}\"",
                    if unit_text.is_empty() { "min" } else { unit_text }
                ),
            });
        }
    };
    let digits = unit_text.chars().take_while(char::is_ascii_digit).count();
    let (times, unit) = unit_text.split_at(digits);
    let unit_at = slash + 1 + digits..text.len();
    let times = if times.is_empty() { 1 } else { times.parse::<u32>().unwrap_or(0) };
    let seconds = match unit {
        "s" | "sec" | "second" => 1,
        "min" | "minute" | "m" => 60,
        "h" | "hour" => 3600,
        "d" | "day" => 86_400,
        "" => {
            return Err(RateError {
                at: unit_at,
                message: format!("a rate needs a unit after `/`: {UNITS}, e.g. \"{count}/min\""),
            });
        }
        other => {
            return Err(RateError {
                at: unit_at,
                message: format!("unknown unit `{other}`; use {UNITS}, e.g. \"{count}/min\""),
            });
        }
    };
    if times == 0 {
        return Err(RateError {
            at: slash + 1..slash + 1 + digits,
            message: "the period must be at least 1".to_owned(),
        });
    }
    Ok(Rate::new(count, Duration::from_secs(u64::from(times) * seconds)))
}

/// Which limit a request ran into.
///
/// ```
/// use orchestrate_core::policy::rate_limit::Scope;
/// assert_eq!(Scope::PerUser.as_str(), "per_user");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// One client address (the peer, or what a trusted proxy says).
    PerIp,
    /// One user, over every endpoint that declares the same rate.
    PerUser,
    /// One user on one endpoint.
    PerEndpoint,
    /// Everyone together.
    Global,
}

impl Scope {
    /// Every scope, in the order a request is checked against them: the narrowest first, so one
    /// client over its own limit does not spend the shared one.
    pub const ALL: [Scope; 4] = [Scope::PerIp, Scope::PerUser, Scope::PerEndpoint, Scope::Global];

    /// The key as written, and the `scope` label of the metric.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PerIp => "per_ip",
            Self::PerUser => "per_user",
            Self::PerEndpoint => "per_endpoint",
            Self::Global => "global",
        }
    }

    /// Who the limit counts, for messages: "per client address".
    pub const fn describe(self) -> &'static str {
        match self {
            Self::PerIp => "per client address",
            Self::PerUser => "per user",
            Self::PerEndpoint => "per user on this endpoint",
            Self::Global => "for everyone together",
        }
    }
}

/// The inbound limits of an endpoint (or a module, or the configuration file's overrides); each
/// absent one does not limit.
///
/// ```
/// use orchestrate_core::policy::rate_limit::{Rate, RateLimits};
/// use std::time::Duration;
/// const MODULE: RateLimits = RateLimits::NONE.with_per_user(Rate::new(100, Duration::from_secs(60)));
/// const ENDPOINT: RateLimits = RateLimits::NONE.with_per_endpoint(Rate::new(50, Duration::from_secs(60)));
/// let merged = ENDPOINT.or(MODULE);
/// assert_eq!(merged.per_user, MODULE.per_user);
/// assert_eq!(merged.per_endpoint, ENDPOINT.per_endpoint);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct RateLimits {
    /// Per user (see the runtime's `rate_limit::UserKey`).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub per_user: Option<Rate>,
    /// Per client address.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub per_ip: Option<Rate>,
    /// Per user on this endpoint.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub per_endpoint: Option<Rate>,
    /// Everyone together.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub global: Option<Rate>,
}

impl RateLimits {
    /// No limit.
    pub const NONE: Self = Self { per_user: None, per_ip: None, per_endpoint: None, global: None };

    /// With a per-user limit.
    pub const fn with_per_user(mut self, rate: Rate) -> Self {
        self.per_user = Some(rate);
        self
    }

    /// With a per-address limit.
    pub const fn with_per_ip(mut self, rate: Rate) -> Self {
        self.per_ip = Some(rate);
        self
    }

    /// With a per-user-on-this-endpoint limit.
    pub const fn with_per_endpoint(mut self, rate: Rate) -> Self {
        self.per_endpoint = Some(rate);
        self
    }

    /// With a limit for everyone together.
    pub const fn with_global(mut self, rate: Rate) -> Self {
        self.global = Some(rate);
        self
    }

    /// Each limit of `self`, or `fallback`'s where `self` has none.
    pub const fn or(self, fallback: Self) -> Self {
        Self {
            per_user: if self.per_user.is_some() { self.per_user } else { fallback.per_user },
            per_ip: if self.per_ip.is_some() { self.per_ip } else { fallback.per_ip },
            per_endpoint: if self.per_endpoint.is_some() { self.per_endpoint } else { fallback.per_endpoint },
            global: if self.global.is_some() { self.global } else { fallback.global },
        }
    }

    /// The limit of `scope`.
    pub const fn get(&self, scope: Scope) -> Option<Rate> {
        match scope {
            Scope::PerIp => self.per_ip,
            Scope::PerUser => self.per_user,
            Scope::PerEndpoint => self.per_endpoint,
            Scope::Global => self.global,
        }
    }

    fn slot(&mut self, scope: Scope) -> &mut Option<Rate> {
        match scope {
            Scope::PerIp => &mut self.per_ip,
            Scope::PerUser => &mut self.per_user,
            Scope::PerEndpoint => &mut self.per_endpoint,
            Scope::Global => &mut self.global,
        }
    }

    /// Whether no limit is set.
    pub const fn is_none(&self) -> bool {
        self.per_user.is_none() && self.per_ip.is_none() && self.per_endpoint.is_none() && self.global.is_none()
    }

    /// The limits in words: `"per_user 100/min, global 10000/min"`.
    ///
    /// ```
    /// use orchestrate_core::policy::rate_limit::{Rate, RateLimits};
    /// use std::time::Duration;
    /// let limits = RateLimits::NONE.with_global(Rate::new(10_000, Duration::from_secs(60)));
    /// assert_eq!(limits.describe(), "global 10000/min");
    /// ```
    pub fn describe(&self) -> String {
        let parts: Vec<String> = Scope::ALL
            .iter()
            .filter_map(|scope| self.get(*scope).map(|rate| format!("{} {}", scope.as_str(), rate.describe())))
            .collect();
        parts.join(", ")
    }
}

/// The keys of `rate_limit(..)`.
///
/// ```
/// assert_eq!(orchestrate_core::policy::rate_limit::KEYS, &["per_user", "per_ip", "per_endpoint", "global"]);
/// ```
pub const KEYS: &[&str] = &["per_user", "per_ip", "per_endpoint", "global"];

const EXAMPLE: Example = Example {
    dsl: "rate_limit(per_user = \"100/min\", per_ip = \"500/min\")",
    toml: "[rate_limit]\nper_user = \"100/min\"",
};

fn scope_of(key: &str) -> Option<Scope> {
    Scope::ALL.into_iter().find(|s| s.as_str() == key)
}

/// Reads one rate value (`key` is dotted, e.g. `rate_limit.per_user`). `"off"` is `Some(None)`
/// when `off` is allowed (the configuration file, removing a declared limit).
fn rate<P: Clone>(reader: &mut Reader<P>, value: &Value<P>, key: &str, off: bool) -> Option<Option<Rate>> {
    let name = key.rsplit('.').next().unwrap_or(key);
    let Value::Str(text, at) = value else {
        let message = format!("`{name}` takes a rate, e.g. `{name} = \"100/min\"`; found {}", value.type_name());
        reader.fail(value.at(), key, message);
        return None;
    };
    if off && text == "off" {
        return Some(None);
    }
    match parse_rate(text) {
        Ok(rate) => Some(Some(rate)),
        Err(e) => {
            reader.fail_at(at, e.at, key, format!("invalid `{name}`: {}", e.message));
            None
        }
    }
}

/// Reads the entries of a `rate_limit(..)` group (or a configuration table) merged key by key into
/// `declared` (an endpoint's or the file's limits start from nothing: [`RateLimits::NONE`]).
///
/// ```
/// use orchestrate_core::policy::{Entry, Reader, Syntax, Value, rate_limit};
/// let table = Value::Table(vec![Entry::new("per_user", 1, Value::Str("100/mni".into(), 2))], 0);
/// let mut reader = Reader::new(Syntax::Dsl);
/// assert_eq!(rate_limit::read(&mut reader, &table, None), None);
/// assert_eq!(reader.problems()[0].message, "invalid `per_user`: unknown unit `mni`; use `s`, `min`, `h` or `d`, e.g. \"100/min\"");
/// assert_eq!(reader.problems()[0].inner, Some(4..7));
/// ```
pub fn read<P: Clone>(reader: &mut Reader<P>, value: &Value<P>, declared: Option<RateLimits>) -> Option<RateLimits> {
    let entries = reader.table(value, "rate_limit", &EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys("rate_limit", entries, KEYS);
    let off = reader.syntax() == super::Syntax::Toml;
    let mut limits = declared.unwrap_or(RateLimits::NONE);
    for entry in &keys.entries {
        let Some(scope) = scope_of(&entry.key) else { continue };
        if let Some(rate) = rate(reader, &entry.value, &format!("rate_limit.{}", entry.key), off) {
            *limits.slot(scope) = rate;
        }
    }
    (reader.seen() == before).then_some(limits)
}

/// A service's outbound limit: at most `rate` calls, and what a call over it does — fail at once
/// as shed (the BFF's own limit: 503 `OVERLOADED` when required, the service not blamed), or
/// wait for its turn when `wait` is set and the endpoint's deadline leaves time for it.
///
/// Written `rate_limit = "200/s"` or `rate_limit(rate = "200/s", wait = true)` in `services!`,
/// `rate_limit = "200/s"` or `rate_limit = { rate = "200/s", wait = true }` under
/// `[services.<name>]`.
///
/// ```
/// use orchestrate_core::policy::rate_limit::{Outbound, Rate};
/// use std::time::Duration;
/// const PRICING: Outbound = Outbound::new(Rate::new(200, Duration::from_secs(1))).waiting(true);
/// assert_eq!(PRICING.describe(), "200/s, waiting for a turn");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct Outbound {
    /// How many calls per period.
    pub rate: Rate,
    /// Whether a call over the limit waits for its turn (within its deadline) instead of failing.
    pub wait: bool,
}

impl Outbound {
    /// At most `rate`, the excess failing at once.
    pub const fn new(rate: Rate) -> Self {
        Self { rate, wait: false }
    }

    /// With calls over the limit waiting for their turn (`true`) or failing at once.
    pub const fn waiting(mut self, wait: bool) -> Self {
        self.wait = wait;
        self
    }

    /// The limit in words.
    pub fn describe(&self) -> String {
        let rate = self.rate.describe();
        if self.wait { format!("{rate}, waiting for a turn") } else { rate }
    }
}

const OUTBOUND_EXAMPLE: Example = Example {
    dsl: "rate_limit(rate = \"200/s\", wait = true)",
    toml: "rate_limit = { rate = \"200/s\", wait = true }",
};

/// Reads a service's `rate_limit`: a rate, or a group of `rate` and `wait`.
///
/// ```
/// use orchestrate_core::policy::{Reader, Syntax, Value, rate_limit};
/// let mut reader = Reader::new(Syntax::Dsl);
/// let limit = rate_limit::outbound(&mut reader, &Value::Str("200/s".into(), 0)).unwrap();
/// assert_eq!((limit.rate.count, limit.wait), (200, false));
/// assert_eq!(rate_limit::outbound(&mut reader, &Value::Number(200, 1)), None);
/// assert_eq!(
///     reader.problems()[0].message,
///     "`rate_limit` of a service takes a rate, e.g. `rate_limit = \"200/s\"`, or `rate_limit(rate = \"200/s\", wait = true)`; found a number"
/// );
/// ```
pub fn outbound<P: Clone>(reader: &mut Reader<P>, value: &Value<P>) -> Option<Outbound> {
    match value {
        Value::Str(..) => rate(reader, value, "rate_limit", false).flatten().map(Outbound::new),
        Value::Table(entries, at) => {
            let before = reader.seen();
            let keys = reader.keys("rate_limit", entries, &["rate", "wait"]);
            let (mut limit, mut wait) = (None, false);
            for entry in &keys.entries {
                match entry.key.as_str() {
                    "rate" => limit = rate(reader, &entry.value, "rate_limit.rate", false).flatten(),
                    "wait" => wait = reader.switch(&entry.value, "rate_limit.wait").unwrap_or(false),
                    _ => {}
                }
            }
            reader.require(at, "rate_limit", &keys, &["rate"], &OUTBOUND_EXAMPLE);
            if reader.seen() != before {
                return None;
            }
            limit.map(|rate| Outbound::new(rate).waiting(wait))
        }
        other => {
            let message = format!(
                "`rate_limit` of a service takes a rate, e.g. `rate_limit = \"200/s\"`, or `{}`; found {}",
                OUTBOUND_EXAMPLE.of(reader.syntax()),
                other.type_name()
            );
            reader.fail(other.at(), "rate_limit", message);
            None
        }
    }
}

/// A network of trusted proxies: an address and a prefix length (`"10.0.0.0/8"`, or one address).
///
/// ```
/// use orchestrate_core::policy::rate_limit::Network;
/// let net: Network = "10.0.0.0/8".parse().unwrap();
/// assert!(net.contains("10.1.2.3".parse().unwrap()));
/// assert!(!net.contains("11.0.0.1".parse().unwrap()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// The first address.
    pub address: IpAddr,
    /// How many leading bits are the network.
    pub prefix: u8,
}

impl Network {
    /// Whether `ip` is in the network (an IPv4 address mapped into IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| {
            format!("`{text}` is not an address or network; write e.g. \"10.0.0.0/8\" or \"192.0.2.7\"")
        })?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("`{text}` has an invalid prefix length; use 0 to {max}")),
            },
        };
        Ok(Self { address, prefix })
    }
}

/// How the runtime applies the limits: the `[rate_limit]` section of the configuration file and
/// `RuntimeBuilder::rate_limit`.
///
/// ```
/// use orchestrate_core::policy::RateLimitSettings;
/// let settings = RateLimitSettings::default();
/// assert_eq!((settings.instances, settings.max_keys), (1, 100_000));
/// assert!(settings.trusted_proxies.is_empty() && settings.user_header.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitSettings {
    /// Overrides of every endpoint's limits, key by key.
    pub limits: RateLimits,
    /// Overrides of one endpoint's limits (by the endpoint's struct name), stronger than `limits`.
    pub endpoints: Vec<(String, RateLimits)>,
    /// The proxies whose `X-Forwarded-For` / `Forwarded` is believed; without any, the client
    /// address is the peer's.
    pub trusted_proxies: Vec<Network>,
    /// How many instances share the limits: when the shared store cannot be reached, each
    /// instance admits `1 / instances` of every shared limit on its own.
    pub instances: u32,
    /// The header naming the user for `per_user` and `per_endpoint` (e.g. set by a gateway that
    /// authenticated the request); without it, the `authorization` header identifies the user.
    pub user_header: Option<String>,
    /// The most keys (users, addresses) one limit remembers in memory; keys beyond share one
    /// budget until idle ones are forgotten.
    pub max_keys: u32,
}

/// The default of [`RateLimitSettings::max_keys`].
///
/// ```
/// assert_eq!(orchestrate_core::policy::rate_limit::DEFAULT_MAX_KEYS, 100_000);
/// ```
pub const DEFAULT_MAX_KEYS: u32 = 100_000;

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            limits: RateLimits::NONE,
            endpoints: Vec::new(),
            trusted_proxies: Vec::new(),
            instances: 1,
            user_header: None,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

impl RateLimitSettings {
    /// The limits of endpoint `name` declaring `declared`: the file's endpoint table, then the
    /// file's section, then the declaration.
    ///
    /// ```
    /// use orchestrate_core::policy::RateLimitSettings;
    /// use orchestrate_core::policy::rate_limit::{Rate, RateLimits};
    /// use std::time::Duration;
    /// let declared = RateLimits::NONE.with_per_user(Rate::new(100, Duration::from_secs(60)));
    /// assert_eq!(RateLimitSettings::default().limits_of("Summary", declared), declared);
    /// ```
    pub fn limits_of(&self, name: &str, declared: RateLimits) -> RateLimits {
        let section = self.limits.or(declared);
        let mut out = match self.endpoints.iter().find(|(n, _)| n == name) {
            Some((_, own)) => own.or(section),
            None => section,
        };
        // "off" in the file is read as an absent limit of its table; an explicit removal is kept
        // as a zero count, dropped here.
        for scope in Scope::ALL {
            if out.get(scope).is_some_and(|r| r.count == 0) {
                *out.slot(scope) = None;
            }
        }
        out
    }
}

/// The name of the section in the configuration file.
///
/// ```
/// assert_eq!(orchestrate_core::policy::rate_limit::SECTION, "rate_limit");
/// ```
pub const SECTION: &str = "rate_limit";

/// The keys of `[rate_limit]`: the limits, and how they are applied.
///
/// ```
/// assert!(orchestrate_core::policy::rate_limit::SETTINGS_KEYS.contains(&"trusted_proxies"));
/// ```
pub const SETTINGS_KEYS: &[&str] = &[
    "per_user",
    "per_ip",
    "per_endpoint",
    "global",
    "endpoints",
    "trusted_proxies",
    "instances",
    "user_header",
    "max_keys",
];

const SETTINGS_EXAMPLE: Example =
    Example { dsl: "[rate_limit] per_user = \"100/min\"", toml: "[rate_limit]\nper_user = \"100/min\"" };

/// A removed limit: kept until [`RateLimitSettings::limits_of`] so that it overrides the code.
const OFF: Rate = Rate::new(0, Duration::from_secs(1));

fn overrides<P: Clone>(reader: &mut Reader<P>, group: &str, entries: &[super::Entry<P>], limits: &mut RateLimits) {
    for entry in entries {
        let Some(scope) = scope_of(&entry.key) else { continue };
        if let Some(rate) = rate(reader, &entry.value, &format!("{group}.{}", entry.key), true) {
            *limits.slot(scope) = Some(rate.unwrap_or(OFF));
        }
    }
}

/// Reads a `[rate_limit]` table, merged key by key into `declared` (the runtime builder's
/// settings; the defaults without them).
///
/// ```
/// use orchestrate_core::policy::{Entry, Reader, Syntax, Value, rate_limit};
/// let table = Value::Table(vec![Entry::new("trusted_proxies", 1, Value::List(vec![Value::Str("10.0.0.0/33".into(), 3)], 2))], 0);
/// let mut reader = Reader::new(Syntax::Toml);
/// assert_eq!(rate_limit::settings(&mut reader, &table, None), None);
/// assert_eq!(reader.problems()[0].message, "`10.0.0.0/33` has an invalid prefix length; use 0 to 32");
/// ```
pub fn settings<P: Clone>(
    reader: &mut Reader<P>,
    value: &Value<P>,
    declared: Option<RateLimitSettings>,
) -> Option<RateLimitSettings> {
    let entries = reader.table(value, SECTION, &SETTINGS_EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys(SECTION, entries, SETTINGS_KEYS);
    let mut settings = declared.unwrap_or_default();
    let limit_entries: Vec<super::Entry<P>> =
        keys.entries.iter().filter(|e| scope_of(&e.key).is_some()).map(|e| (*e).clone()).collect();
    overrides(reader, SECTION, &limit_entries, &mut settings.limits);
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "endpoints" => {
                let Some(tables) = reader.table(v, "rate_limit.endpoints", &SETTINGS_EXAMPLE) else { continue };
                for endpoint in tables {
                    let group = format!("rate_limit.endpoints.{}", endpoint.key);
                    let Some(own) = reader.table(&endpoint.value, &group, &EXAMPLE) else { continue };
                    let own_keys = reader.keys(&group, own, KEYS);
                    let own: Vec<super::Entry<P>> = own_keys.entries.iter().map(|e| (*e).clone()).collect();
                    let mut limits = RateLimits::NONE;
                    overrides(reader, &group, &own, &mut limits);
                    settings.endpoints.retain(|(name, _)| *name != endpoint.key);
                    settings.endpoints.push((endpoint.key.clone(), limits));
                }
            }
            "trusted_proxies" => {
                let example = Example { dsl: "[\"10.0.0.0/8\"]", toml: "trusted_proxies = [\"10.0.0.0/8\"]" };
                let Some(items) = reader.list(v, "rate_limit.trusted_proxies", &example) else { continue };
                let mut networks = Vec::new();
                for item in items {
                    let Some(text) = reader.string(item, "rate_limit.trusted_proxies", "\"10.0.0.0/8\"") else {
                        continue;
                    };
                    match text.parse::<Network>() {
                        Ok(net) => networks.push(net),
                        Err(message) => reader.fail(item.at(), "rate_limit.trusted_proxies", message),
                    }
                }
                settings.trusted_proxies = networks;
            }
            "instances" => {
                if let Some(n) = reader.number(v, "rate_limit.instances", 1, 10_000) {
                    settings.instances = n as u32;
                }
            }
            "max_keys" => {
                if let Some(n) = reader.number(v, "rate_limit.max_keys", 1_000, 100_000_000) {
                    settings.max_keys = n as u32;
                }
            }
            "user_header" => {
                if let Some(name) = reader.string(v, "rate_limit.user_header", "\"x-user-id\"") {
                    match crate::headers::forwardable(name) {
                        Ok(lower) => settings.user_header = Some(lower),
                        Err(message) => reader.fail(v.at(), "rate_limit.user_header", message),
                    }
                }
            }
            _ => {}
        }
    }
    (reader.seen() == before).then_some(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Entry, Syntax};

    #[test]
    fn rates_parse_in_every_unit_and_explain_every_mistake() {
        assert_eq!(parse_rate("10000/min").unwrap(), Rate::new(10_000, Duration::from_secs(60)));
        assert_eq!(parse_rate("10/5s").unwrap(), Rate::new(10, Duration::from_secs(5)));
        assert_eq!(parse_rate("1/d").unwrap().per, Duration::from_secs(86_400));
        let cases = [
            ("100", 0..3, "a rate needs its period; write e.g. \"100/min\""),
            ("0/min", 0..1, "a limit admits at least 1 request; remove the limit instead of writing 0"),
            ("lots/min", 0..4, "`lots` is not a whole number of requests; write e.g. \"100/min\""),
            ("100/", 4..4, "a rate needs a unit after `/`: `s`, `min`, `h` or `d`, e.g. \"100/min\""),
            ("100 / min", 0..9, "rates have no spaces; write \"100/min\""),
            ("5/0s", 2..3, "the period must be at least 1"),
        ];
        for (text, at, message) in cases {
            assert_eq!(parse_rate(text), Err(RateError { at, message: message.to_owned() }), "{text}");
        }
    }

    #[test]
    fn the_file_overrides_the_code_key_by_key_and_can_remove_a_limit() {
        let minute = Duration::from_secs(60);
        let table = Value::Table(
            vec![
                Entry::new("global", 1u32, Value::Str("off".into(), 2)),
                Entry::new(
                    "endpoints",
                    3,
                    Value::Table(
                        vec![Entry::new(
                            "Summary",
                            4,
                            Value::Table(vec![Entry::new("per_user", 5, Value::Str("10/min".into(), 6))], 4),
                        )],
                        3,
                    ),
                ),
                Entry::new("instances", 7, Value::Number(3, 8)),
            ],
            0,
        );
        let mut reader = Reader::new(Syntax::Toml);
        let settings = settings(&mut reader, &table, None).unwrap();
        let declared = RateLimits::NONE.with_per_user(Rate::new(100, minute)).with_global(Rate::new(10_000, minute));
        assert_eq!(settings.limits_of("Summary", declared), RateLimits::NONE.with_per_user(Rate::new(10, minute)));
        assert_eq!(settings.limits_of("Other", declared), RateLimits::NONE.with_per_user(Rate::new(100, minute)));
        assert_eq!(settings.instances, 3);
    }

    #[test]
    fn off_is_no_rate_in_the_code() {
        let table = Value::Table(vec![Entry::new("global", 1u32, Value::Str("off".into(), 2))], 0);
        let mut reader = Reader::new(Syntax::Dsl);
        assert_eq!(read(&mut reader, &table, None), None);
        assert_eq!(
            reader.problems()[0].message,
            "invalid `global`: a rate is a number of requests per unit, e.g. \"100/min\", \"200/s\" or \"5000/h\""
        );
    }

    #[test]
    fn networks_match_their_addresses() {
        let net: Network = "2001:db8::/32".parse().unwrap();
        assert!(net.contains("2001:db8::1".parse().unwrap()));
        let one: Network = "192.0.2.7".parse().unwrap();
        assert!(one.contains("::ffff:192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        assert!("10.0.0.0/8x".parse::<Network>().is_err());
    }
}
