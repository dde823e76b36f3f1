//! Base URLs of downstream services, as written in `services!`, the configuration file and
//! `ORCHESTRATE_<SERVICE>_URL`.
//!
//! ```
//! use orchestrate_core::url::check_base_url;
//! assert!(check_base_url("http://cart.internal:8080").is_ok());
//! assert!(check_base_url("http://127.0.0.1:3000/prefix").is_ok());
//! assert_eq!(check_base_url("cart.internal").unwrap_err(), "must start with `http://` or `https://`");
//! ```

/// The base URLs of a text that lists several instances separated by commas (one without a
/// comma is one instance).
///
/// ```
/// use orchestrate_core::url::base_urls;
/// assert_eq!(base_urls("http://a:1, http://b:2").collect::<Vec<_>>(), ["http://a:1", "http://b:2"]);
/// ```
pub fn base_urls(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim)
}

/// Checks every base URL of a comma-separated list ([`base_urls`]), as [`check_base_url`] does.
///
/// # Errors
///
/// As [`check_base_url`] for a single URL; for a list, which instance and what is wrong with it.
///
/// ```
/// use orchestrate_core::url::check_base_urls;
/// assert!(check_base_urls("http://a:1, http://b:2").is_ok());
/// assert_eq!(check_base_urls("http://a:1, b").unwrap_err(), "lists `b`, which must start with `http://` or `https://`");
/// assert_eq!(check_base_urls("http://a:1,").unwrap_err(), "lists an empty URL; separate the instances' URLs with one comma");
/// ```
pub fn check_base_urls(text: &str) -> Result<(), String> {
    if !text.contains(',') {
        return check_base_url(text);
    }
    for url in base_urls(text) {
        if url.is_empty() {
            return Err("lists an empty URL; separate the instances' URLs with one comma".to_owned());
        }
        check_base_url(url).map_err(|reason| format!("lists `{url}`, which {reason}"))?;
    }
    Ok(())
}

/// Checks that `url` is an absolute `http://` or `https://` URL with a host, a valid port if any,
/// no whitespace and no query or fragment.
///
/// # Errors
///
/// The rest of a sentence that starts with the URL: "must start with `http://` or `https://`",
/// "has no host; ..", "has an invalid port `x`", "contains whitespace", "must not have a query
/// or fragment".
pub fn check_base_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("must start with `http://` or `https://`")?;
    if url.contains(char::is_whitespace) {
        return Err("contains whitespace".to_owned());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if host.is_empty() || host.starts_with(':') {
        return Err("has no host; write e.g. \"http://cart.internal:8080\"".to_owned());
    }
    if url.contains(['?', '#']) {
        return Err("must not have a query or fragment".to_owned());
    }
    if host.starts_with('[') {
        let Some(end) = host.find(']') else {
            return Err("has an unclosed `[` in its IPv6 host".to_owned());
        };
        let after = &host[end + 1..];
        if let Some(port) = after.strip_prefix(':')
            && port.parse::<u16>().is_err()
        {
            return Err(format!("has an invalid port `{port}`"));
        }
        return Ok(());
    }
    if let Some((name, port)) = host.rsplit_once(':') {
        if port.parse::<u16>().is_err() {
            return Err(format!("has an invalid port `{port}`"));
        }
        if name.is_empty() {
            return Err("has no host; write e.g. \"http://cart.internal:8080\"".to_owned());
        }
    }
    if !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:".contains(&b)) {
        return Err("has a host that is not a valid name or address".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_urls() {
        assert!(check_base_url("http://a:80").is_ok());
        assert!(check_base_url("https://a/b").is_ok());
        assert!(check_base_url("http://[::1]:80").is_ok());
        assert!(check_base_url("https://user:secret@tax.internal:8443/v1").is_ok());
        assert!(check_base_url("http://a:port").unwrap_err().contains("port"));
        assert!(check_base_url("http://").unwrap_err().contains("no host"));
        assert!(check_base_url("http://a?x").unwrap_err().contains("query"));
        assert!(check_base_url("http://x/?a=1").unwrap_err().contains("query"));
        assert!(check_base_url("ftp://x").unwrap_err().contains("http://"));
        assert!(check_base_url("http://exa mple").unwrap_err().contains("whitespace"));
        assert!(check_base_url("http://a<b").unwrap_err().contains("not a valid"));
    }
}
