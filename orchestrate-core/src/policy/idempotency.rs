//! Idempotent replay of client retries: an endpoint with `idempotent_requests` honours an inbound
//! `Idempotency-Key`. The first request's final response is kept for [`DEFAULT_TTL`]; a retry
//! with the same key and body gets it back without any downstream call, the same key with another
//! body is refused (422), and a retry while the first still runs is refused (409) — or, with a
//! `wait`, waits up to that long for the first's response and gets it (409 if it did not come).
//!
//! Written `#[endpoint(POST "/orders", timeout = "3s", idempotent_requests)]` (or
//! `idempotent_requests = false` to turn off the default: on for a POST endpoint with a
//! side-effecting call), or `idempotent_requests(wait = "5s")` to wait instead of refusing.

use super::value::{Reader, Value};
use std::time::Duration;

/// The inbound header.
///
/// ```
/// assert_eq!(orchestrate_core::policy::idempotency::HEADER, "idempotency-key");
/// ```
pub const HEADER: &str = "idempotency-key";

/// How long a response is kept for replay: 24 hours.
///
/// ```
/// assert_eq!(orchestrate_core::policy::idempotency::DEFAULT_TTL.as_secs(), 86_400);
/// ```
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest key accepted, in bytes.
///
/// ```
/// assert_eq!(orchestrate_core::policy::idempotency::MAX_KEY_LEN, 255);
/// ```
pub const MAX_KEY_LEN: usize = 255;

/// The response headers kept with a response and replayed with it.
///
/// ```
/// assert!(orchestrate_core::policy::idempotency::REPLAYED_HEADERS.contains(&"content-type"));
/// ```
pub const REPLAYED_HEADERS: &[&str] = &["content-type", "x-partial-data", "x-failed-services", "retry-after"];

/// The header a replayed response carries.
///
/// ```
/// assert_eq!(orchestrate_core::policy::idempotency::REPLAYED, "idempotent-replayed");
/// ```
pub const REPLAYED: &str = "idempotent-replayed";

/// The 409 message: the first request with this key is still running.
///
/// ```
/// assert!(orchestrate_core::policy::idempotency::IN_PROGRESS.contains("still running"));
/// ```
pub const IN_PROGRESS: &str =
    "a request with this `Idempotency-Key` is still running; retry once it has answered to get its response";

/// The 422 message: the key was used with another body.
///
/// ```
/// assert!(orchestrate_core::policy::idempotency::KEY_REUSED.contains("another request body"));
/// ```
pub const KEY_REUSED: &str =
    "this `Idempotency-Key` was used with another request body; use a new key for a new request";

/// The 400 message for a key that is empty, longer than [`MAX_KEY_LEN`] or not visible ASCII.
///
/// ```
/// assert!(orchestrate_core::policy::idempotency::INVALID_KEY.starts_with("`Idempotency-Key`"));
/// ```
pub const INVALID_KEY: &str = "`Idempotency-Key` must be 1 to 255 visible ASCII characters";

/// Whether an endpoint replays by default: a POST with a side-effecting call.
///
/// ```
/// use orchestrate_core::policy::idempotency::on_by_default;
/// assert!(on_by_default("POST", true));
/// assert!(!on_by_default("POST", false) && !on_by_default("GET", true));
/// ```
pub fn on_by_default(method: &str, side_effect: bool) -> bool {
    method == "POST" && side_effect
}

/// The keys of `idempotent_requests(..)`.
///
/// ```
/// assert_eq!(orchestrate_core::policy::idempotency::KEYS, &["wait"]);
/// ```
pub const KEYS: &[&str] = &["wait"];

/// The longest `wait`: a minute (a client waiting longer is better told to retry).
///
/// ```
/// assert_eq!(orchestrate_core::policy::idempotency::MAX_WAIT.as_secs(), 60);
/// ```
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// The message for a `wait` over [`MAX_WAIT`].
///
/// ```
/// assert!(orchestrate_core::policy::idempotency::LONG_WAIT.starts_with("`wait` is at most \"60s\""));
/// ```
pub const LONG_WAIT: &str = "`wait` is at most \"60s\": a client held longer is better answered 409 and left to retry";

/// Reads `idempotent_requests(wait = "5s")` (`value` the table in the parentheses): how long a
/// retry waits for the first request's response; `None` with the problems reported.
///
/// ```
/// use orchestrate_core::policy::{Entry, Reader, Syntax, Value, idempotency};
/// let table = Value::Table(vec![Entry::new("wait", 1, Value::Str("5s".into(), 2))], 0);
/// let mut reader = Reader::new(Syntax::Dsl);
/// assert_eq!(idempotency::read(&mut reader, &table), Some(std::time::Duration::from_secs(5)));
///
/// let table = Value::Table(vec![Entry::new("wait", 1, Value::Str("2m".into(), 2))], 0);
/// let mut reader = Reader::new(Syntax::Dsl);
/// assert_eq!(idempotency::read(&mut reader, &table), None);
/// assert_eq!(reader.problems()[0].message, idempotency::LONG_WAIT);
/// ```
pub fn read<P: Clone>(reader: &mut Reader<P>, value: &Value<P>) -> Option<Duration> {
    let Value::Table(entries, _) = value else { return None };
    let before = reader.seen();
    let keys = reader.keys("idempotent_requests", entries, KEYS);
    let mut wait = None;
    for entry in &keys.entries {
        if entry.key == "wait"
            && let Some(d) = reader.duration(&entry.value, "idempotent_requests.wait")
        {
            // The duration reader refuses zero itself.
            if d > MAX_WAIT {
                reader.fail(entry.value.at(), "idempotent_requests.wait", LONG_WAIT);
            } else {
                wait = Some(d);
            }
        }
    }
    if reader.seen() != before {
        return None;
    }
    if wait.is_none() {
        let message = "`idempotent_requests(..)` takes `wait`, e.g. `idempotent_requests(wait = \"5s\")`; write `idempotent_requests` alone to answer 409 at once";
        reader.fail(value.at(), "idempotent_requests", message);
    }
    wait
}
