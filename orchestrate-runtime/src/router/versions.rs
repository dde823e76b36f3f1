//! The handler glue of a route with canary versions: which version answers a request (the
//! forcing header, else each canary's key), and what it answered, for the rollback rule.
//! The state and the rule are [`canary`](crate::canary)'s.

use crate::Runtime;
use crate::canary::{VERSION_HEADER, Versions};
use axum::response::Response;
use http::{HeaderMap, HeaderValue};
use orchestrate_core::policy::CanaryKey;
use tokio::time::Instant;

/// The version of `versions` that answers a request with `headers`, and when it was chosen.
///
/// `x-orchestrate-version` names one; otherwise each canary's key is read: the verified token's
/// `sub` (a token that does not verify is the stable version's to refuse), a header, or
/// `x-request-id`.
pub async fn choose(runtime: &Runtime, versions: &Versions, headers: &HeaderMap) -> (usize, Instant) {
    let started = Instant::now();
    if let Some(index) = headers.get(VERSION_HEADER).and_then(|v| versions.forced(v.as_bytes())) {
        return (index, started);
    }
    let mut subject = None;
    if versions.by_subject()
        && let Some(auth) = runtime.auth()
    {
        subject = auth.subject(headers).await;
    }
    let key_of = |key: &CanaryKey| -> Option<Vec<u8>> {
        match key {
            CanaryKey::Subject => subject.as_ref().map(|s| s.as_bytes().to_vec()),
            CanaryKey::Header(name) => headers.get(*name).map(|v| v.as_bytes().to_vec()),
            CanaryKey::RequestId => headers.get(crate::telemetry::REQUEST_ID).map(|v| v.as_bytes().to_vec()),
        }
    };
    let index = match versions.spec(0) {
        // The stable version is the one refusing a request that cannot be authenticated.
        Some(stable) if stable.auth == crate::auth::Auth::Jwt && versions.by_subject() && subject.is_none() => 0,
        _ => versions.pick(key_of),
    };
    (index, started)
}

/// Records what version `index` answered and names it in the response's `x-orchestrate-version`.
pub fn answered(versions: &Versions, index: usize, started: Instant, mut response: Response) -> Response {
    let elapsed = Instant::now().saturating_duration_since(started);
    versions.record(index, response.status().as_u16(), elapsed);
    if let Some(spec) = versions.spec(index) {
        response.headers_mut().insert(VERSION_HEADER, HeaderValue::from_static(spec.version()));
    }
    response
}
