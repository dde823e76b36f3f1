//! What the listener allows a client: how long it may take to send a request's head and its
//! body, and how many connections and requests it may hold at once.
//!
//! Written `[server]` in the configuration file (there is no DSL form: it is a property of the
//! listener, not of an endpoint):
//!
//! ```toml
//! [server]
//! header_read_timeout = "10s"   # the request line and headers (and the wait between keep-alive requests)
//! body_read_timeout = "30s"     # the whole body, once the head is in
//! max_connections = 10000       # open connections per listener; more wait in the accept backlog
//! max_requests = 4096           # requests being answered per listener; more get 503 `OVERLOADED`
//! ```

use super::value::{Example, Reader, Value};
use std::time::Duration;

/// The listener's protection against slow and abusive clients.
///
/// ```
/// use orchestrate_core::policy::ServerLimits;
/// use std::time::Duration;
/// let limits = ServerLimits::DEFAULT;
/// assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
/// assert_eq!(limits.body_read_timeout, Duration::from_secs(30));
/// assert_eq!((limits.max_connections, limits.max_requests), (10_000, 4096));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
#[non_exhaustive]
pub struct ServerLimits {
    /// How long a client may take to send a request's line and headers, counted from when the
    /// listener starts waiting for them (so it also bounds how long a keep-alive connection may
    /// sit idle between requests). Past it the connection is closed.
    #[cfg_attr(feature = "serde", serde(rename = "headerReadTimeoutMs", serialize_with = "super::millis"))]
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body once its head is in. Past it the
    /// request is answered 408 `REQUEST_TIMEOUT`.
    #[cfg_attr(feature = "serde", serde(rename = "bodyReadTimeoutMs", serialize_with = "super::millis"))]
    pub body_read_timeout: Duration,
    /// Connections a listener holds open at once; the next ones wait in the operating system's
    /// accept backlog until one closes.
    pub max_connections: u32,
    /// Requests a listener answers at once; one more is answered 503 `OVERLOADED` with
    /// `Retry-After` at once.
    pub max_requests: u32,
}

impl ServerLimits {
    /// Heads in 10 s, bodies in 30 s, 10 000 connections, 4096 requests at once.
    pub const DEFAULT: Self = Self {
        header_read_timeout: Duration::from_secs(10),
        body_read_timeout: Duration::from_secs(30),
        max_connections: 10_000,
        max_requests: 4096,
    };

    /// The same with another header read timeout (brought within
    /// [`MIN_TIMEOUT`]..=[`MAX_TIMEOUT`]).
    ///
    /// ```
    /// use orchestrate_core::policy::ServerLimits;
    /// use std::time::Duration;
    /// let limits = ServerLimits::DEFAULT.with_header_read_timeout(Duration::from_millis(300));
    /// assert_eq!(limits.header_read_timeout, Duration::from_millis(300));
    /// ```
    pub const fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = clamp_timeout(timeout);
        self
    }

    /// The same with another body read timeout (brought within
    /// [`MIN_TIMEOUT`]..=[`MAX_TIMEOUT`]).
    ///
    /// ```
    /// use orchestrate_core::policy::ServerLimits;
    /// use std::time::Duration;
    /// let limits = ServerLimits::DEFAULT.with_body_read_timeout(Duration::from_millis(1));
    /// assert_eq!(limits.body_read_timeout, orchestrate_core::policy::server::MIN_TIMEOUT);
    /// ```
    pub const fn with_body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = clamp_timeout(timeout);
        self
    }

    /// The same with another connection cap (at least 1, at most [`MAX_COUNT`]).
    ///
    /// ```
    /// use orchestrate_core::policy::ServerLimits;
    /// assert_eq!(ServerLimits::DEFAULT.with_max_connections(0).max_connections, 1);
    /// ```
    pub const fn with_max_connections(mut self, max: u32) -> Self {
        self.max_connections = clamp_count(max);
        self
    }

    /// The same with another cap on requests answered at once (at least 1, at most
    /// [`MAX_COUNT`]).
    ///
    /// ```
    /// use orchestrate_core::policy::ServerLimits;
    /// assert_eq!(ServerLimits::DEFAULT.with_max_requests(64).max_requests, 64);
    /// ```
    pub const fn with_max_requests(mut self, max: u32) -> Self {
        self.max_requests = clamp_count(max);
        self
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

const fn clamp_timeout(timeout: Duration) -> Duration {
    if timeout.as_millis() < MIN_TIMEOUT.as_millis() {
        MIN_TIMEOUT
    } else if timeout.as_millis() > MAX_TIMEOUT.as_millis() {
        MAX_TIMEOUT
    } else {
        timeout
    }
}

const fn clamp_count(n: u32) -> u32 {
    if n == 0 {
        1
    } else if n > MAX_COUNT {
        MAX_COUNT
    } else {
        n
    }
}

/// Shortest read timeout: 50 ms (a shorter one would cut ordinary clients on a slow network).
///
/// ```
/// assert_eq!(orchestrate_core::policy::server::MIN_TIMEOUT.as_millis(), 50);
/// ```
pub const MIN_TIMEOUT: Duration = Duration::from_millis(50);
/// Longest read timeout: 10 minutes.
///
/// ```
/// assert_eq!(orchestrate_core::policy::server::MAX_TIMEOUT.as_secs(), 600);
/// ```
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// Largest `max_connections` and `max_requests`.
///
/// ```
/// assert_eq!(orchestrate_core::policy::server::MAX_COUNT, 1_000_000);
/// ```
pub const MAX_COUNT: u32 = 1_000_000;

/// The name of the section in the configuration file.
///
/// ```
/// assert_eq!(orchestrate_core::policy::server::SECTION, "server");
/// ```
pub const SECTION: &str = "server";

/// The keys of `[server]`.
///
/// ```
/// assert!(orchestrate_core::policy::server::KEYS.contains(&"max_requests"));
/// ```
pub const KEYS: &[&str] = &["header_read_timeout", "body_read_timeout", "max_connections", "max_requests"];

const EXAMPLE: Example = Example {
    dsl: "server(header_read_timeout = \"10s\", body_read_timeout = \"30s\", max_connections = 10000, max_requests = 4096)",
    toml: "[server]\nheader_read_timeout = \"10s\"\nbody_read_timeout = \"30s\"\nmax_connections = 10000\nmax_requests = 4096",
};

/// Reads a `[server]` table, merged key by key into `declared` (what the runtime builder set;
/// [`ServerLimits::DEFAULT`] without one). Every key is optional.
///
/// ```
/// use orchestrate_core::policy::{Entry, Reader, ServerLimits, Syntax, Value, server};
/// let table = Value::Table(vec![Entry::new("header_read_timeout", 1, Value::Str("10ms".into(), 2))], 0);
/// let mut reader = Reader::new(Syntax::Toml);
/// assert_eq!(server::read(&mut reader, &table, None), None);
/// assert_eq!(
///     reader.problems()[0].message,
///     "`header_read_timeout` must be at least \"50ms\": a shorter one cuts ordinary clients on a slow network"
/// );
///
/// let table = Value::Table(vec![Entry::new("max_requests", 1, Value::Number(64, 2))], 0);
/// let mut reader = Reader::new(Syntax::Toml);
/// assert_eq!(server::read(&mut reader, &table, None), Some(ServerLimits::DEFAULT.with_max_requests(64)));
/// ```
pub fn read<P: Clone>(
    reader: &mut Reader<P>,
    value: &Value<P>,
    declared: Option<ServerLimits>,
) -> Option<ServerLimits> {
    let entries = reader.table(value, SECTION, &EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys(SECTION, entries, KEYS);
    let mut limits = declared.unwrap_or(ServerLimits::DEFAULT);
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            name @ ("header_read_timeout" | "body_read_timeout") => {
                let key = if name == "header_read_timeout" {
                    "server.header_read_timeout"
                } else {
                    "server.body_read_timeout"
                };
                let Some(d) = reader.duration(v, key) else { continue };
                if d < MIN_TIMEOUT {
                    let message = format!(
                        "`{name}` must be at least \"50ms\": a shorter one cuts ordinary clients on a slow network"
                    );
                    reader.fail(v.at(), key, message);
                } else if d > MAX_TIMEOUT {
                    let message = format!(
                        "`{name}` is at most \"10m\": a client slower than that holds a connection an attacker could use"
                    );
                    reader.fail(v.at(), key, message);
                } else if name == "header_read_timeout" {
                    limits.header_read_timeout = d;
                } else {
                    limits.body_read_timeout = d;
                }
            }
            "max_connections" => {
                if let Some(n) = reader.number(v, "server.max_connections", 1, u64::from(MAX_COUNT)) {
                    limits.max_connections = n as u32;
                }
            }
            "max_requests" => {
                if let Some(n) = reader.number(v, "server.max_requests", 1, u64::from(MAX_COUNT)) {
                    limits.max_requests = n as u32;
                }
            }
            _ => {}
        }
    }
    (reader.seen() == before).then_some(limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Entry;

    type V = Value<u32>;

    fn read_all(entries: Vec<Entry<u32>>) -> Result<ServerLimits, Vec<(u32, String, String)>> {
        let mut reader = Reader::new(super::super::Syntax::Toml);
        match read(&mut reader, &V::Table(entries, 0), None) {
            Some(limits) => Ok(limits),
            None => Err(reader.into_problems().into_iter().map(|p| (p.at, p.key, p.message)).collect()),
        }
    }

    #[test]
    fn every_key_merges_into_the_defaults() {
        let limits = read_all(vec![
            Entry::new("header_read_timeout", 1, V::Str("300ms".into(), 2)),
            Entry::new("max_connections", 3, V::Number(100, 4)),
        ])
        .unwrap();
        assert_eq!(
            limits,
            ServerLimits {
                header_read_timeout: Duration::from_millis(300),
                max_connections: 100,
                ..ServerLimits::DEFAULT
            }
        );
    }

    #[test]
    fn every_mistake_is_reported_at_its_value() {
        let problems = read_all(vec![
            Entry::new("header_read_timeout", 1, V::Str("11m".into(), 2)),
            Entry::new("body_read_timeout", 3, V::Number(30, 4)),
            Entry::new("max_connections", 5, V::Number(0, 6)),
            Entry::new("max_requests", 7, V::Number(2_000_000, 8)),
            Entry::new("max_conections", 9, V::Number(3, 10)),
        ])
        .unwrap_err();
        let expected: Vec<(u32, &str, &str)> = vec![
            (
                2,
                "server.header_read_timeout",
                "`header_read_timeout` is at most \"10m\": a client slower than that holds a connection an attacker could use",
            ),
            (
                4,
                "server.body_read_timeout",
                "`body_read_timeout` takes a duration, e.g. `body_read_timeout = \"100ms\"`; found a number",
            ),
            (6, "server.max_connections", "`max_connections` must be at least 1"),
            (8, "server.max_requests", "`max_requests` must be at most 1000000"),
            (
                9,
                "server.max_conections",
                "unknown key `max_conections` in `server` (expected one of: header_read_timeout, body_read_timeout, max_connections, max_requests)",
            ),
        ];
        let mut got: Vec<(u32, &str, &str)> = problems.iter().map(|(at, k, m)| (*at, k.as_str(), m.as_str())).collect();
        got.sort();
        assert_eq!(got, expected);
    }
}
