//! Who sent a request: its client address (the peer, or what a trusted proxy says) and its user.

use axum::extract::ConnectInfo;
use http::HeaderName;
use http::request::Parts;
use orchestrate_core::policy::rate_limit::Network;
use std::net::{IpAddr, SocketAddr};

/// Where per-user limits (`per_user`, `per_endpoint`) find the user of a request.
///
/// The default, [`UserKey::Authorization`], counts each distinct `authorization` header as one
/// user (only a 64-bit keyed hash of it is kept in memory, a SHA-256 digest in Redis; never the
/// credential). [`UserKey::Header`] reads a header that a gateway in front of the application
/// sets after authenticating (`[rate_limit] user_header = "x-user-id"`). A request without a user
/// counts under its client address.
///
/// ```
/// use orchestrate_runtime::rate_limit::UserKey;
/// let request = http::Request::builder().header("x-user-id", "u1").body(()).unwrap();
/// let (parts, ()) = request.into_parts();
/// assert_eq!(UserKey::Header(http::HeaderName::from_static("x-user-id")).of(&parts), Some(&b"u1"[..]));
/// assert_eq!(UserKey::Authorization.of(&parts), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserKey {
    /// The `authorization` header, whole.
    #[default]
    Authorization,
    /// A header naming the user.
    Header(HeaderName),
}

impl UserKey {
    /// The bytes that identify the user of `parts`, if it has one.
    pub fn of<'a>(&self, parts: &'a Parts) -> Option<&'a [u8]> {
        let name = match self {
            Self::Authorization => &http::header::AUTHORIZATION,
            Self::Header(name) => name,
        };
        parts.headers.get(name).map(http::HeaderValue::as_bytes).filter(|v| !v.is_empty())
    }
}

/// The client address of `parts`: the peer's (axum's `ConnectInfo<SocketAddr>`, present when the
/// application is served with `into_make_service_with_connect_info::<SocketAddr>()`), or, when
/// the peer is one of `trusted` proxies, the last address in `Forwarded` (RFC 7239) or else
/// `X-Forwarded-For` that is not itself a trusted proxy.
pub(crate) fn client_ip(parts: &Parts, trusted: &[Network]) -> Option<IpAddr> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        v4 => v4,
    };
    if !trusted.iter().any(|n| n.contains(peer)) {
        return Some(peer);
    }
    let forwarded = hops(parts, &http::header::FORWARDED, forwarded_for);
    let hops =
        if forwarded.is_empty() { hops(parts, &X_FORWARDED_FOR, |item| item.trim().parse().ok()) } else { forwarded };
    // Right to left: the first address that is not one of ours is the client; every hop after it
    // was added by a proxy we trust.
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) => {
                client = *ip;
                if !trusted.iter().any(|n| n.contains(*ip)) {
                    break;
                }
            }
            // An obfuscated or malformed hop: nothing before it can be believed.
            None => break,
        }
    }
    Some(client)
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Every comma-separated item of every `name` header, in order, read by `read`.
fn hops(parts: &Parts, name: &HeaderName, read: fn(&str) -> Option<IpAddr>) -> Vec<Option<IpAddr>> {
    parts
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|item| !item.trim().is_empty())
        .map(read)
        .collect()
}

/// The `for=` address of one `Forwarded` element: `for=192.0.2.60`, `for="[2001:db8::1]:4711"`.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then_some(value.trim())
    })?;
    let value = value.trim_matches('"');
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    value.parse().ok().or_else(|| value.rsplit_once(':')?.0.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::builder();
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts.extensions.insert(ConnectInfo::<SocketAddr>(peer.parse().unwrap()));
        parts
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let trusted: Vec<Network> = vec!["10.0.0.0/8".parse().unwrap()];
        let spoofed = parts("198.51.100.9:5000", &[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(client_ip(&spoofed, &trusted), Some("198.51.100.9".parse().unwrap()));
        let proxied = parts("10.0.0.2:5000", &[("x-forwarded-for", "1.2.3.4, 203.0.113.5, 10.0.0.7")]);
        assert_eq!(client_ip(&proxied, &trusted), Some("203.0.113.5".parse().unwrap()), "the client spoofs the first");
        let forwarded =
            parts("10.0.0.2:5000", &[("forwarded", "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"")]);
        assert_eq!(client_ip(&forwarded, &trusted), Some("2001:db8::1".parse().unwrap()));
        let hidden = parts("10.0.0.2:5000", &[("forwarded", "for=_hidden")]);
        assert_eq!(client_ip(&hidden, &trusted), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(client_ip(&proxied, &[]), Some("10.0.0.2".parse().unwrap()), "no trusted proxy: the peer");
    }
}
