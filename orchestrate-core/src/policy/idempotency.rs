//! Idempotent replay of client retries: an endpoint with `idempotent_requests` honours an inbound
//! `Idempotency-Key`. The first request's final response is kept for [`DEFAULT_TTL`]; a retry
//! with the same key and body gets it back without any downstream call, the same key with another
//! body is refused (422), and a retry while the first still runs is refused (409).
//!
//! Written `#[endpoint(POST "/orders", timeout = "3s", idempotent_requests)]` (or
//! `idempotent_requests = false` to turn off the default: on for a POST endpoint with a
//! side-effecting call).

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
