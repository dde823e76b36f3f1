//! Which inbound headers may be forwarded to a downstream service.
//!
//! ```
//! use orchestrate_core::headers::forwardable;
//! assert_eq!(forwardable("X-Tenant-Id"), Ok("x-tenant-id".to_owned()));
//! assert!(forwardable("Connection").unwrap_err().contains("hop-by-hop"));
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
