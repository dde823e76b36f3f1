//! Downstream paths built from templates, with every interpolated value percent-encoded.
//!
//! A value becomes exactly one path segment or one query value: `/`, `?`, `#`, `%`, `.` and every
//! other byte outside the URL "unreserved" set are encoded, so `"../admin"` reaches the service as
//! `..%2Fadmin`, never as another path. A value that would still be resolved as a dot segment by
//! any URL parser (`.` or `..`, encoded or not) or that is empty is refused with
//! [`CallErrorKind::InvalidInput`](crate::CallErrorKind::InvalidInput).

use crate::error::{CallError, CallErrorKind};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use std::fmt::{self, Display, Write};

/// Bytes encoded in a path segment: everything but `A-Z a-z 0-9 - _ ~`. The dot is encoded as
/// well so that no value can form a `..` segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');
/// Bytes encoded in a query value: everything but `A-Z a-z 0-9 - _ ~ .`.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~').remove(b'.');

/// A downstream path and query under construction.
///
/// ```
/// use orchestrate_runtime::Target;
/// let mut t = Target::new();
/// t.literal("/carts/");
/// t.segment(&"a/b?c#d");
/// t.literal("?q=");
/// t.query_value(&"x y&z");
/// assert_eq!(t.as_str(), "/carts/a%2Fb%3Fc%23d?q=x%20y%26z");
/// ```
#[derive(Debug, Default)]
pub struct Target {
    buf: String,
    /// The first value that could not be placed, out of line: a target is moved with its request.
    error: Option<Box<CallError>>,
}

impl Target {
    /// An empty target.
    pub fn new() -> Self {
        Self { buf: String::with_capacity(64), error: None }
    }

    /// A target from already-encoded text, e.g. `"/carts/c1"`.
    pub fn from_encoded(path: impl Into<String>) -> Self {
        Self { buf: path.into(), error: None }
    }

    /// Appends template text as written.
    pub fn literal(&mut self, text: &str) -> &mut Self {
        self.buf.push_str(text);
        self
    }

    /// Appends a value as (part of) one path segment.
    pub fn segment(&mut self, value: &dyn Display) -> &mut Self {
        self.encoded(value, SEGMENT)
    }

    /// Appends a value as (part of) one query value.
    pub fn query_value(&mut self, value: &dyn Display) -> &mut Self {
        self.encoded(value, QUERY_VALUE)
    }

    fn encoded(&mut self, value: &dyn Display, set: &'static AsciiSet) -> &mut Self {
        let start = self.buf.len();
        let mut writer = Encoder { out: &mut self.buf, set, dots_only: true, written: 0 };
        // Writing into a String cannot fail; a Display impl that fails leaves a partial value,
        // which is reported below.
        let formatted = write!(writer, "{value}").is_ok();
        let (dots_only, written) = (writer.dots_only, writer.written);
        if !formatted {
            self.fail("a value's `Display` implementation failed");
        } else if written == 0 {
            self.fail("an empty value would change the downstream path");
        } else if dots_only && written <= 2 {
            self.fail("a value of `.` or `..` would change the downstream path");
        }
        if self.error.is_some() {
            self.buf.truncate(start);
        }
        self
    }

    fn fail(&mut self, message: &str) {
        if self.error.is_none() {
            self.error = Some(Box::new(CallError::with_source(CallErrorKind::InvalidInput, message.to_owned())));
        }
    }

    /// Appends `value` serialized as `application/x-www-form-urlencoded` to the query.
    pub fn query<T: Serialize + ?Sized>(&mut self, value: &T) -> &mut Self {
        match serde_urlencoded::to_string(value) {
            Ok(query) if query.is_empty() => {}
            Ok(query) => {
                let separator = if self.buf.contains('?') { '&' } else { '?' };
                if !self.buf.ends_with(['?', '&']) {
                    self.buf.push(separator);
                }
                self.buf.push_str(&query);
            }
            Err(error) => {
                if self.error.is_none() {
                    self.error = Some(Box::new(CallError::with_source(CallErrorKind::Encode, error)));
                }
            }
        }
        self
    }

    /// The path and query so far.
    pub fn as_str(&self) -> &str {
        &self.buf
    }

    /// The finished path and query, or the first value that could not be encoded.
    ///
    /// # Errors
    ///
    /// [`CallErrorKind::InvalidInput`] for a value that cannot be placed in the path,
    /// [`CallErrorKind::Encode`] for a query that does not serialize.
    pub fn finish(self) -> Result<String, CallError> {
        match self.error {
            Some(error) => Err(*error),
            None => Ok(self.buf),
        }
    }
}

impl From<&str> for Target {
    fn from(path: &str) -> Self {
        Self::from_encoded(path)
    }
}

impl From<String> for Target {
    fn from(path: String) -> Self {
        Self::from_encoded(path)
    }
}

struct Encoder<'a> {
    out: &'a mut String,
    set: &'static AsciiSet,
    dots_only: bool,
    written: usize,
}

impl Write for Encoder<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.written += s.len();
        self.dots_only &= s.bytes().all(|b| b == b'.');
        for piece in utf8_percent_encode(s, self.set) {
            self.out.push_str(piece);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(value: &str) -> Result<String, CallErrorKind> {
        let mut t = Target::new();
        t.literal("/carts/").segment(&value).literal("/items");
        t.finish().map_err(|e| e.kind())
    }

    #[test]
    fn values_stay_one_segment() {
        assert_eq!(path("c1").unwrap(), "/carts/c1/items");
        assert_eq!(path("../admin").unwrap(), "/carts/%2E%2E%2Fadmin/items");
        assert_eq!(path("a?b#c").unwrap(), "/carts/a%3Fb%23c/items");
        assert_eq!(path("%2e%2e").unwrap(), "/carts/%252e%252e/items");
        assert_eq!(path("x y").unwrap(), "/carts/x%20y/items");
        assert_eq!(path("é").unwrap(), "/carts/%C3%A9/items");
        assert_eq!(path("http://evil.example").unwrap(), "/carts/http%3A%2F%2Fevil%2Eexample/items");
        assert_eq!(path("...").unwrap(), "/carts/%2E%2E%2E/items");
    }

    #[test]
    fn dot_segments_and_empty_values_are_refused() {
        assert_eq!(path(".").unwrap_err(), CallErrorKind::InvalidInput);
        assert_eq!(path("..").unwrap_err(), CallErrorKind::InvalidInput);
        assert_eq!(path("").unwrap_err(), CallErrorKind::InvalidInput);
    }

    #[test]
    fn query_values_and_serialized_queries() {
        let mut t = Target::new();
        t.literal("/search?q=").query_value(&"a&b=c").literal("&limit=10");
        #[derive(Serialize)]
        struct Q<'a> {
            page: u32,
            tag: &'a str,
        }
        t.query(&Q { page: 2, tag: "x y" });
        assert_eq!(t.finish().unwrap(), "/search?q=a%26b%3Dc&limit=10&page=2&tag=x+y");
        let mut t = Target::from("/list");
        t.query(&[("a", "1")]);
        assert_eq!(t.finish().unwrap(), "/list?a=1");
    }
}
