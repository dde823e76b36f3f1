//! Which inbound headers may be forwarded to a downstream service.
//!
//! ```
//! use orchestrate_core::headers::{forwardable, settable};
//! assert_eq!(forwardable("X-Tenant-Id"), Ok("x-tenant-id".to_owned()));
//! assert!(forwardable("Connection").unwrap_err().contains("hop-by-hop"));
//! assert!(settable("Host").unwrap_err().contains("cannot set"));
//! ```

/// Headers that describe one connection and never pass a proxy (RFC 9110 §7.6.1), plus those the
/// client computes itself.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// The lower-case name of a header that may be configured for forwarding.
///
/// # Errors
///
/// A sentence when `name` is not a valid header name (RFC 9110 token) or is hop-by-hop.
pub fn forwardable(name: &str) -> Result<String, String> {
    let lower = name.to_ascii_lowercase();
    let token =
        !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(format!("`{name}` is not a valid header name"));
    }
    if HOP_BY_HOP.contains(&lower.as_str()) {
        return Err(format!("`{lower}` is a hop-by-hop header and is never forwarded"));
    }
    Ok(lower)
}

/// Whether a call may set the header `name` itself (`#[call(headers = ..)]`,
/// `CallClient::header`): not a hop-by-hop header, nor `host` or `content-length`, which the
/// client computes from the service's address and the body.
///
/// # Errors
///
/// A sentence naming the header and why a call cannot set it.
pub fn settable(name: &str) -> Result<(), String> {
    let Some(known) = HOP_BY_HOP.iter().find(|h| h.eq_ignore_ascii_case(name)) else {
        return Ok(());
    };
    Err(match *known {
        "host" => "a call cannot set `host`: the client sets it to the service's address".to_owned(),
        "content-length" => "a call cannot set `content-length`: the client computes it from the body".to_owned(),
        other => format!("a call cannot set `{other}`: it is a hop-by-hop header, which describes one connection"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_sets_ordinary_headers_only() {
        assert_eq!(settable("X-Tenant-Id"), Ok(()));
        assert_eq!(settable("authorization"), Ok(()));
        for name in ["Host", "content-length", "Connection", "transfer-encoding", "upgrade", "TE"] {
            assert!(settable(name).unwrap_err().contains("cannot set"), "{name}");
        }
    }
}
