//! The shared store's settings: the keys of `[store]` in the configuration file, their defaults,
//! ranges and messages.
//!
//! The store is where the features whose state must be shared between instances (response cache,
//! rate limits, idempotency records, the saga journal) keep it: Redis when a URL is given, the
//! in-memory implementation of each feature otherwise. Only the configuration file, the
//! `ORCHESTRATE_REDIS_URL` variable and the runtime builder set it (there is no DSL form).
//!
//! ```toml
//! [store]
//! redis_url = "redis://127.0.0.1:6379/0"
//! command_timeout = "50ms"
//! connect_timeout = "1s"
//! key_prefix = "checkout:"
//! ```
//!
//! ```
//! use orchestrate_core::policy::{Entry, Reader, Syntax, Value, store};
//! let table = Value::Table(vec![Entry::new("redis_url", 1, Value::Str("redis//cache:6379".into(), 2))], 0);
//! let mut reader = Reader::new(Syntax::Toml);
//! assert!(store::read(&mut reader, &table, None).is_none());
//! let problem = &reader.problems()[0];
//! assert_eq!((problem.at, problem.key.as_str()), (2, "store.redis_url"));
//! assert!(problem.message.starts_with("`redis//cache:6379` must start with `redis://`"), "{}", problem.message);
//! ```

use super::value::{Example, Reader, Value};
use std::time::Duration;

/// How long a store command may take by default: the store holds shared state that a request
/// waits for, so a slow store must cost a request little.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(50);
/// How long one connection attempt may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The default namespace of every key the features write.
pub const DEFAULT_KEY_PREFIX: &str = "orchestrate:";
/// The longest `command_timeout`: a store command holds the request that waits for it.
pub const MAX_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `connect_timeout`.
pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest `key_prefix`, in bytes.
pub const MAX_KEY_PREFIX: usize = 100;

/// Where the shared state lives and how long the runtime waits for it.
///
/// ```
/// use orchestrate_core::policy::StoreSettings;
/// use std::time::Duration;
/// let settings = StoreSettings::default();
/// assert_eq!(settings.redis_url, None); // in memory
/// assert_eq!((settings.command_timeout, settings.key_prefix.as_str()), (Duration::from_millis(50), "orchestrate:"));
/// let settings = settings.with_redis_url("redis://127.0.0.1:6379/0").with_key_prefix("checkout:");
/// assert_eq!(settings.redis_url.as_deref(), Some("redis://127.0.0.1:6379/0"));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreSettings {
    /// The Redis server (`redis://[user:password@]host[:port][/db]`, `redis+unix:///path`); `None`
    /// keeps every feature's state in memory.
    pub redis_url: Option<String>,
    /// Longest wait for one command, pipeline or script, connecting included.
    pub command_timeout: Duration,
    /// Longest wait for one connection attempt (in the background; commands still wait at most
    /// `command_timeout`).
    pub connect_timeout: Duration,
    /// Put before every key, so several applications can share one Redis.
    pub key_prefix: String,
}

/// The URL's password is hidden.
///
/// ```
/// use orchestrate_core::policy::StoreSettings;
/// let settings = StoreSettings::default().with_redis_url("redis://:hunter2@cache");
/// assert!(!format!("{settings:?}").contains("hunter2"));
/// ```
impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("redis_url", &self.redis_url.as_deref().map(redact))
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
        }
    }
}

impl StoreSettings {
    /// These settings with the Redis server at `url`.
    pub fn with_redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// These settings with another command timeout.
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// These settings with another connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// These settings with another key prefix.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Every value that breaks a rule of this module, as `(key, message)`: for settings given as
    /// Rust values (the runtime builder), with the messages the file gets.
    ///
    /// ```
    /// use orchestrate_core::policy::StoreSettings;
    /// use std::time::Duration;
    /// let settings = StoreSettings::default().with_redis_url("localhost:6379").with_command_timeout(Duration::ZERO);
    /// let problems = settings.problems();
    /// assert_eq!(problems[0].0, "store.redis_url");
    /// assert_eq!(problems[1], ("store.command_timeout", "`command_timeout` must be at least 1ms".to_owned()));
    /// ```
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(url) = &self.redis_url
            && let Err(reason) = check_redis_url(url)
        {
            out.push(("store.redis_url", format!("`{}` {reason}", redact(url))));
        }
        for (key, value, max) in [
            ("store.command_timeout", self.command_timeout, MAX_COMMAND_TIMEOUT),
            ("store.connect_timeout", self.connect_timeout, MAX_CONNECT_TIMEOUT),
        ] {
            if let Err(message) = check_timeout(key, value, max) {
                out.push((key, message));
            }
        }
        if let Err(message) = check_key_prefix(&self.key_prefix) {
            out.push(("store.key_prefix", message));
        }
        out
    }
}

/// The keys of `[store]`.
pub const KEYS: &[&str] = &["redis_url", "command_timeout", "connect_timeout", "key_prefix"];

/// The configuration file's table of these settings.
///
/// ```
/// assert_eq!(orchestrate_core::policy::store::SECTION, "store");
/// ```
pub const SECTION: &str = "store";

const EXAMPLE: Example = Example {
    dsl: "[store] redis_url = \"redis://127.0.0.1:6379/0\"",
    toml: "store = { redis_url = \"redis://127.0.0.1:6379/0\" }",
};

const URL_EXAMPLE: &str = "\"redis://127.0.0.1:6379/0\"";

/// Reads the `[store]` table `value`, merged key by key into `declared` (the runtime builder's
/// settings), else into the defaults.
///
/// ```
/// use orchestrate_core::policy::{Entry, Reader, StoreSettings, Syntax, Value, store};
/// use std::time::Duration;
/// let table = Value::Table(vec![Entry::new("command_timeout", 1, Value::Str("20ms".into(), 2))], 0);
/// let declared = StoreSettings::default().with_redis_url("redis://cache:6379");
/// let settings = store::read(&mut Reader::new(Syntax::Toml), &table, Some(&declared)).unwrap();
/// assert_eq!(settings.command_timeout, Duration::from_millis(20));
/// assert_eq!(settings.redis_url.as_deref(), Some("redis://cache:6379"));
/// ```
pub fn read<P: Clone>(
    reader: &mut Reader<P>,
    value: &Value<P>,
    declared: Option<&StoreSettings>,
) -> Option<StoreSettings> {
    let entries = reader.table(value, SECTION, &EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys(SECTION, entries, KEYS);
    let mut settings = declared.cloned().unwrap_or_default();
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "redis_url" => {
                if let Some(url) = reader.string(v, "store.redis_url", URL_EXAMPLE) {
                    match check_redis_url(url) {
                        Ok(()) => settings.redis_url = Some(url.to_owned()),
                        Err(reason) => reader.fail(v.at(), "store.redis_url", format!("`{}` {reason}", redact(url))),
                    }
                }
            }
            "command_timeout" => {
                if let Some(d) = read_timeout(reader, v, "store.command_timeout", MAX_COMMAND_TIMEOUT) {
                    settings.command_timeout = d;
                }
            }
            "connect_timeout" => {
                if let Some(d) = read_timeout(reader, v, "store.connect_timeout", MAX_CONNECT_TIMEOUT) {
                    settings.connect_timeout = d;
                }
            }
            "key_prefix" => {
                if let Some(prefix) = reader.string(v, "store.key_prefix", "\"checkout:\"") {
                    match check_key_prefix(prefix) {
                        Ok(()) => settings.key_prefix = prefix.to_owned(),
                        Err(message) => reader.fail(v.at(), "store.key_prefix", message),
                    }
                }
            }
            _ => {}
        }
    }
    (reader.seen() == before).then_some(settings)
}

fn read_timeout<P: Clone>(reader: &mut Reader<P>, value: &Value<P>, key: &str, max: Duration) -> Option<Duration> {
    let duration = reader.duration(value, key)?;
    match check_timeout(key, duration, max) {
        Ok(()) => Some(duration),
        Err(message) => {
            reader.fail(value.at(), key, message);
            None
        }
    }
}

/// A timeout from 1 ms to `max`.
fn check_timeout(key: &str, value: Duration, max: Duration) -> Result<(), String> {
    let name = key.rsplit('.').next().unwrap_or(key);
    if value < Duration::from_millis(1) {
        return Err(format!("`{name}` must be at least 1ms"));
    }
    if value > max {
        let why = if name == "command_timeout" {
            "a store command holds the request that waits for it"
        } else {
            "the store is reconnected in the background, a longer wait only hides an outage"
        };
        return Err(format!("`{name}` must be at most {}s: {why}", max.as_secs()));
    }
    Ok(())
}

/// A key prefix: at most [`MAX_KEY_PREFIX`] bytes, no whitespace or control characters (it shows
/// in `redis-cli` and in `SCAN` patterns). Empty is allowed (a Redis of its own).
///
/// ```
/// use orchestrate_core::policy::store::check_key_prefix;
/// assert!(check_key_prefix("checkout:").is_ok());
/// assert_eq!(check_key_prefix("check out:").unwrap_err(), "`key_prefix` has whitespace or a control character; write e.g. \"checkout:\"");
/// ```
///
/// # Errors
///
/// A sentence saying what is wrong.
pub fn check_key_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() > MAX_KEY_PREFIX {
        return Err(format!("`key_prefix` must be at most {MAX_KEY_PREFIX} bytes: it is part of every key"));
    }
    if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("`key_prefix` has whitespace or a control character; write e.g. \"checkout:\"".to_owned());
    }
    Ok(())
}

/// The URL schemes of a Redis (or Valkey) server the store accepts.
const SCHEMES: &[&str] = &["redis", "rediss", "valkey", "valkeys", "redis+unix", "valkey+unix", "unix"];

/// Checks that `url` names a Redis server: `redis://` (or `rediss://`, `valkey://`, `valkeys://`)
/// with a host that is not a wildcard address, an optional port and an optional numeric database
/// (`/0`), or `redis+unix://` / `unix://` with a socket path. No whitespace.
///
/// ```
/// use orchestrate_core::policy::store::check_redis_url;
/// assert!(check_redis_url("redis://127.0.0.1:6379/0").is_ok());
/// assert!(check_redis_url("redis://:secret@cache.internal").is_ok());
/// assert!(check_redis_url("redis+unix:///run/redis.sock").is_ok());
/// assert_eq!(check_redis_url("redis://cache:70000").unwrap_err(), "has an invalid port `70000`");
/// ```
///
/// # Errors
///
/// The rest of a sentence that starts with the URL: "must start with `redis://` ..", "has no
/// host ..", "has an invalid port `x`", "has a database `x` that is not a number ..", "contains
/// whitespace".
pub fn check_redis_url(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://").filter(|(scheme, _)| SCHEMES.contains(scheme)) else {
        return Err(format!("must start with `redis://` (or `rediss://`, `redis+unix://`), e.g. {URL_EXAMPLE}"));
    };
    if url.contains(char::is_whitespace) {
        return Err("contains whitespace".to_owned());
    }
    if scheme.ends_with("unix") {
        let path = rest.split(['?', '#']).next().unwrap_or_default();
        if path.is_empty() || !path.starts_with('/') {
            return Err(format!("has no socket path; write e.g. \"{scheme}:///run/redis/redis.sock\""));
        }
        return Ok(());
    }
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let Some((name, after)) = v6.split_once(']') else {
            return Err("has an unclosed `[` in its IPv6 host".to_owned());
        };
        (name, after.strip_prefix(':'))
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if name.is_empty() {
        return Err(format!("has no host; write e.g. {URL_EXAMPLE}"));
    }
    if matches!(name, "0.0.0.0" | "::" | "0:0:0:0:0:0:0:0") {
        return Err(format!("names a wildcard address, which cannot be connected to; write e.g. {URL_EXAMPLE}"));
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!("has an invalid port `{port}`"));
    }
    let db = path.trim_matches('/');
    if !db.is_empty() && db.parse::<u32>().is_err() {
        return Err(format!("has a database `{db}` that is not a number; write e.g. `/0`"));
    }
    Ok(())
}

/// `url` with its password replaced by `***`, for messages, logs and `/health`.
///
/// ```
/// use orchestrate_core::policy::store::redact;
/// assert_eq!(redact("redis://:hunter2@cache:6379/0"), "redis://:***@cache:6379/0");
/// assert_eq!(redact("redis://app:hunter2@cache"), "redis://app:***@cache");
/// assert_eq!(redact("redis://cache:6379"), "redis://cache:6379");
/// ```
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let shown = match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:***"),
                None => userinfo.to_owned(),
            };
            format!("{scheme}://{shown}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Entry, Syntax};

    type V = Value<u32>;

    fn read_table(entries: Vec<Entry<u32>>) -> Result<StoreSettings, Vec<(u32, String, String)>> {
        let mut reader = Reader::new(Syntax::Toml);
        match read(&mut reader, &V::Table(entries, 0), None) {
            Some(settings) => Ok(settings),
            None => Err(reader.into_problems().into_iter().map(|p| (p.at, p.key, p.message)).collect()),
        }
    }

    #[test]
    fn reads_every_key() {
        let settings = read_table(vec![
            Entry::new("redis_url", 1, V::Str("redis://cache:6379/2".into(), 2)),
            Entry::new("command_timeout", 3, V::Str("20ms".into(), 4)),
            Entry::new("connect_timeout", 5, V::Str("2s".into(), 6)),
            Entry::new("key_prefix", 7, V::Str("checkout:".into(), 8)),
        ])
        .unwrap();
        assert_eq!(
            settings,
            StoreSettings::default()
                .with_redis_url("redis://cache:6379/2")
                .with_command_timeout(Duration::from_millis(20))
                .with_connect_timeout(Duration::from_secs(2))
                .with_key_prefix("checkout:")
        );
    }

    #[test]
    fn every_mistake_is_reported_at_its_value() {
        let problems = read_table(vec![
            Entry::new("redis_url", 1, V::Str("http://cache".into(), 2)),
            Entry::new("command_timeout", 3, V::Str("50 ms".into(), 4)),
            Entry::new("connect_timeout", 5, V::Str("2m".into(), 6)),
            Entry::new("key_prefx", 7, V::Str("x".into(), 8)),
            Entry::new("key_prefix", 9, V::Number(3, 10)),
        ])
        .unwrap_err();
        let expected = [
            (
                2,
                "store.redis_url",
                "`http://cache` must start with `redis://` (or `rediss://`, `redis+unix://`), e.g. \"redis://127.0.0.1:6379/0\"",
            ),
            (4, "store.command_timeout", "invalid `command_timeout`: durations have no spaces; write \"50ms\""),
            (
                6,
                "store.connect_timeout",
                "`connect_timeout` must be at most 60s: the store is reconnected in the background, a longer wait only hides an outage",
            ),
            // `key_prefix` is written too, so it is not suggested.
            (
                7,
                "store.key_prefx",
                "unknown key `key_prefx` in `store` (expected one of: redis_url, command_timeout, connect_timeout, key_prefix)",
            ),
            (10, "store.key_prefix", "`key_prefix` takes a string, e.g. `key_prefix = \"checkout:\"`; found a number"),
        ];
        // In the order written, as the configuration reader reports them.
        let mut got: Vec<(u32, &str, &str)> = problems.iter().map(|(at, k, m)| (*at, k.as_str(), m.as_str())).collect();
        got.sort_by_key(|(at, ..)| *at);
        assert_eq!(got, expected);
    }

    #[test]
    fn a_store_that_is_not_a_table_says_how_to_write_one() {
        let mut reader = Reader::new(Syntax::Toml);
        assert!(read(&mut reader, &V::Str("redis://x".into(), 1), None).is_none());
        assert_eq!(
            reader.problems()[0].message,
            "`store` is a group of settings, e.g. `store = { redis_url = \"redis://127.0.0.1:6379/0\" }`; found a string"
        );
    }

    #[test]
    fn redis_urls() {
        for ok in [
            "redis://127.0.0.1",
            "redis://127.0.0.1:6379/0",
            "redis://[::1]:6379",
            "rediss://user:p%40ss@cache.internal:6380/3",
            "redis://cache/?protocol=resp3",
            "valkey://cache",
            "unix:///run/redis.sock",
            "redis+unix:///run/redis.sock?db=1",
        ] {
            assert_eq!(check_redis_url(ok), Ok(()), "{ok}");
        }
        for (bad, message) in [
            ("127.0.0.1:6379", "must start with"),
            ("redis://", "has no host"),
            ("redis://:6379", "has no host"),
            ("redis://cache:port", "invalid port `port`"),
            ("redis://cache/zero", "database `zero`"),
            ("redis://0.0.0.0:6379", "wildcard"),
            ("redis://[::1", "unclosed"),
            ("redis://ca che", "whitespace"),
            ("unix://", "no socket path"),
        ] {
            let error = check_redis_url(bad).unwrap_err();
            assert!(error.contains(message), "{bad}: {error}");
        }
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("rediss://user:secret@cache:6380/1?protocol=resp3"),
            "rediss://user:***@cache:6380/1?protocol=resp3"
        );
        assert_eq!(redact("redis://user@cache"), "redis://user@cache");
        assert_eq!(redact("unix:///run/redis.sock"), "unix:///run/redis.sock");
        let problems = StoreSettings::default().with_redis_url("redis://:secret@cache:x").problems();
        assert_eq!(problems, [("store.redis_url", "`redis://:***@cache:x` has an invalid port `x`".to_owned())]);
    }
}
