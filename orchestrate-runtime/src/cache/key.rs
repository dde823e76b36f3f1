//! Cache keys: a SHA-256 digest of what the answer depends on, so that two requests share an entry
//! only when the service would see the same request.
//!
//! The default key of a call is its whole request: the service, the method, the encoded path and
//! query, every header it carries (the forwarded `authorization` among them, so one user's answer
//! is never another's) except those that change on every request without changing the answer
//! (`traceparent`, `tracestate`, `x-request-id`), and the body. `cache(key = ..)` replaces all of
//! that by the service and the key the code gives (one catalog shared by every user). The digest
//! is what is stored (and, in Redis, all that is stored of the request): no credential is kept.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::fmt;

/// The digest an entry is stored under.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(pub(crate) [u8; 32]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.hex())
    }
}

impl Key {
    /// The key a call's or an endpoint's code gives: `scope` is the service (or the endpoint).
    ///
    /// ```
    /// use orchestrate_runtime::cache::Key;
    /// assert_eq!(Key::named("catalog", "all"), Key::named("catalog", "all"));
    /// assert_ne!(Key::named("catalog", "all"), Key::named("pricing", "all"));
    /// ```
    pub fn named(scope: &str, key: &str) -> Self {
        let mut hash = Sha256::new();
        part(&mut hash, b"named");
        part(&mut hash, scope.as_bytes());
        part(&mut hash, key.as_bytes());
        Self(hash.finalize().into())
    }

    /// The default key of a call: its whole request, as sent to `service`.
    pub(crate) fn of_request(service: &str, request: &http::Request<Bytes>) -> Self {
        let mut hash = Sha256::new();
        part(&mut hash, b"request");
        part(&mut hash, service.as_bytes());
        part(&mut hash, request.method().as_str().as_bytes());
        part(&mut hash, request.uri().path_and_query().map_or("/", |p| p.as_str()).as_bytes());
        let mut headers: Vec<(&str, &[u8])> = request
            .headers()
            .iter()
            .filter(|(name, _)| !VARYING.contains(&name.as_str()))
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect();
        headers.sort_unstable();
        for (name, value) in headers {
            part(&mut hash, name.as_bytes());
            part(&mut hash, value);
        }
        part(&mut hash, request.body());
        Self(hash.finalize().into())
    }

    /// The default key of an endpoint's answer: its method and route, the request's path,
    /// query and body, and the caller's identity (`authorization` and `cookie`).
    pub(crate) fn of_inbound(endpoint: &str, path_and_query: &str, identity: &[(&str, &[u8])], body: &[u8]) -> Self {
        let mut hash = Sha256::new();
        part(&mut hash, b"endpoint");
        part(&mut hash, endpoint.as_bytes());
        part(&mut hash, path_and_query.as_bytes());
        for (name, value) in identity {
            part(&mut hash, name.as_bytes());
            part(&mut hash, value);
        }
        part(&mut hash, body);
        Self(hash.finalize().into())
    }

    /// Lower-case hexadecimal.
    pub fn hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
        out
    }
}

/// Headers that differ on every request without changing the answer.
const VARYING: &[&str] = &["traceparent", "tracestate", "x-request-id"];

/// A length-prefixed part, so that no two different lists of parts hash alike.
fn part(hash: &mut Sha256, bytes: &[u8]) {
    hash.update((bytes.len() as u64).to_le_bytes());
    hash.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(authorization: &str, traceparent: &str) -> http::Request<Bytes> {
        http::Request::builder()
            .uri("http://profile.internal/users/u1?x=1")
            .header("authorization", authorization)
            .header("traceparent", traceparent)
            .header("x-request-id", traceparent)
            .body(Bytes::new())
            .unwrap()
    }

    #[test]
    fn the_default_key_follows_what_changes_the_answer_and_nothing_else() {
        let a = Key::of_request("profile", &request("Bearer a", "00-1"));
        assert_eq!(a, Key::of_request("profile", &request("Bearer a", "00-2")), "trace ids do not matter");
        assert_ne!(a, Key::of_request("profile", &request("Bearer b", "00-1")), "the caller does");
        assert_ne!(a, Key::of_request("orders", &request("Bearer a", "00-1")), "and the service");
        assert_eq!(a.hex().len(), 64);
    }
}
