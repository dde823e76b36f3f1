//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): parsing `traceparent`, keeping
//! `tracestate`, and a fresh parent id for every downstream call.

use http::HeaderValue;
use http::header::HeaderMap;
use std::fmt;

/// The `traceparent` header name.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::TRACEPARENT, "traceparent");
/// ```
pub const TRACEPARENT: &str = "traceparent";
/// The `traceresponse` header name (W3C Trace Context Level 2): the response's trace id and the
/// server's span id, in the format of `traceparent`.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::TRACERESPONSE, "traceresponse");
/// ```
pub const TRACERESPONSE: &str = "traceresponse";
/// The `tracestate` header name.
///
/// ```
/// assert_eq!(orchestrate_runtime::telemetry::TRACESTATE, "tracestate");
/// ```
pub const TRACESTATE: &str = "tracestate";

/// Longest `tracestate` kept (the specification's 32 members of at most 256 characters allow more,
/// but it asks vendors to propagate at least 512 characters; longer values are dropped whole).
const MAX_TRACESTATE: usize = 512;

/// A trace id: 16 bytes, never all zero; displayed as 32 lowercase hex digits.
///
/// ```
/// use orchestrate_runtime::telemetry::TraceContext;
/// let tc = TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
/// assert_eq!(tc.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 16]);

/// A span id (the `parent-id` of `traceparent`): 8 bytes, never all zero; displayed as 16
/// lowercase hex digits.
///
/// ```
/// use orchestrate_runtime::telemetry::TraceContext;
/// let tc = TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
/// assert_eq!(tc.parent_id().to_string(), "b7ad6b7169203331");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(pub [u8; 8]);

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let mut text = [0; 32];
    let text = hex_into(&mut text, bytes);
    f.write_str(std::str::from_utf8(text).unwrap_or_default())
}

/// Writes `bytes` as lowercase hex at the start of `out` and returns what it wrote. (One table
/// lookup per byte: `traceparent` is written for every downstream call, and `{:02x}` per byte
/// through the formatting machinery cost about twenty times more.)
fn hex_into<'a>(out: &'a mut [u8], bytes: &[u8]) -> &'a [u8] {
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(*byte)]);
    }
    &out[..2 * bytes.len()]
}

/// The two lowercase hex digits of every byte.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut i = 0;
    while i < 256 {
        pairs[i] = [DIGITS[i >> 4], DIGITS[i & 0x0f]];
        i += 1;
    }
    pairs
};

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl TraceId {
    /// A random, non-zero trace id.
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::TraceId;
    /// assert_ne!(TraceId::random(), TraceId::random());
    /// ```
    pub fn random() -> Self {
        Self(fastrand::u128(1..).to_be_bytes())
    }
}

impl SpanId {
    /// A random, non-zero span id.
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::SpanId;
    /// assert_ne!(SpanId::random().0, [0; 8]);
    /// ```
    pub fn random() -> Self {
        Self(fastrand::u64(1..).to_be_bytes())
    }
}

/// Where a request sits in a distributed trace: the trace id, the id of the span that sent it,
/// the trace flags and the vendors' `tracestate`.
///
/// The router continues the client's `traceparent` when it is valid and starts a new trace when it
/// is absent or malformed; every downstream request carries the same trace id with a fresh parent
/// id ([`child`](Self::child)), so the downstream's spans hang under this request's call.
///
/// ```
/// use orchestrate_runtime::telemetry::TraceContext;
/// let inbound = TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
/// let call = inbound.child();
/// assert_eq!(call.trace_id(), inbound.trace_id());
/// assert_ne!(call.parent_id(), inbound.parent_id());
/// assert!(call.sampled());
/// assert!(call.traceparent().to_str().unwrap().starts_with("00-0af7651916cd43dd8448eb211c80319c-"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: TraceId,
    parent_id: SpanId,
    flags: u8,
    state: Option<HeaderValue>,
}

impl TraceContext {
    /// A new trace: random ids, sampled.
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::TraceContext;
    /// let root = TraceContext::new_root();
    /// let header = root.traceparent();
    /// assert_eq!(TraceContext::parse(header.to_str().unwrap()), Some(root));
    /// ```
    pub fn new_root() -> Self {
        Self { trace_id: TraceId::random(), parent_id: SpanId::random(), flags: 0x01, state: None }
    }

    /// A context from its parts (e.g. an OpenTelemetry span's ids).
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::{SpanId, TraceContext, TraceId};
    /// let tc = TraceContext::from_parts(TraceId([1; 16]), SpanId([2; 8]), 0x01);
    /// assert_eq!(tc.traceparent(), "00-01010101010101010101010101010101-0202020202020202-01");
    /// ```
    pub fn from_parts(trace_id: TraceId, parent_id: SpanId, flags: u8) -> Self {
        Self { trace_id, parent_id, flags, state: None }
    }

    /// Parses a `traceparent` value; `None` when it is not valid.
    ///
    /// Version `00` must be exactly `00-<32 hex>-<16 hex>-<2 hex>` in lowercase with non-zero ids;
    /// a later version is read by its first four fields, as the specification asks; version `ff`
    /// is invalid.
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::TraceContext;
    /// assert!(TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").is_some());
    /// assert!(TraceContext::parse("00-00000000000000000000000000000000-b7ad6b7169203331-01").is_none());
    /// assert!(TraceContext::parse("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01").is_none());
    /// assert!(TraceContext::parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future").is_some());
    /// ```
    pub fn parse(value: &str) -> Option<Self> {
        let bytes = value.as_bytes();
        if bytes.len() < 55 || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let version = hex_byte(&bytes[0..2])?;
        match version {
            0xff => return None,
            0x00 if bytes.len() != 55 => return None,
            _ if bytes.len() > 55 && bytes[55] != b'-' => return None,
            _ => {}
        }
        let mut trace_id = [0; 16];
        for (i, byte) in trace_id.iter_mut().enumerate() {
            *byte = hex_byte(&bytes[3 + 2 * i..5 + 2 * i])?;
        }
        let mut parent_id = [0; 8];
        for (i, byte) in parent_id.iter_mut().enumerate() {
            *byte = hex_byte(&bytes[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&bytes[53..55])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self { trace_id: TraceId(trace_id), parent_id: SpanId(parent_id), flags, state: None })
    }

    /// The context of an inbound request: its valid `traceparent` with its `tracestate` (several
    /// `tracestate` lines joined by commas), or `None`.
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::TraceContext;
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().unwrap());
    /// headers.append("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
    /// headers.append("tracestate", "rojo=00f067aa0ba902b7".parse().unwrap());
    /// let tc = TraceContext::from_headers(&headers).unwrap();
    /// assert_eq!(tc.tracestate().unwrap(), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    /// ```
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut values = headers.get_all(TRACEPARENT).iter();
        let first = values.next()?;
        if values.next().is_some() {
            return None; // two traceparents: ambiguous, start a new trace
        }
        let mut context = Self::parse(first.to_str().ok()?)?;
        context.state = tracestate(headers);
        Some(context)
    }

    /// The same trace (flags and `tracestate` included) sent by the span `parent_id`.
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::{SpanId, TraceContext};
    /// let root = TraceContext::new_root();
    /// let call = root.with_parent_id(SpanId([7; 8]));
    /// assert_eq!((call.trace_id(), call.parent_id()), (root.trace_id(), SpanId([7; 8])));
    /// ```
    pub fn with_parent_id(&self, parent_id: SpanId) -> Self {
        Self { trace_id: self.trace_id, parent_id, flags: self.flags, state: self.state.clone() }
    }

    /// The same trace with a fresh parent id: what one downstream request carries.
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::TraceContext;
    /// let tc = TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
    /// assert_eq!(tc.child().trace_id(), tc.trace_id());
    /// ```
    pub fn child(&self) -> Self {
        Self { trace_id: self.trace_id, parent_id: SpanId::random(), flags: self.flags, state: self.state.clone() }
    }

    /// The `traceparent` of [`child`](Self::child) without building the child (its `tracestate`
    /// is not needed for the header).
    pub(crate) fn child_traceparent(&self) -> HeaderValue {
        header(self.trace_id, SpanId::random(), self.flags)
    }

    /// The trace id.
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::TraceContext;
    /// let tc = TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
    /// assert_eq!(tc.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
    /// ```
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The id of the span that sent the request (for an inbound context: the client's span).
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::TraceContext;
    /// let tc = TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
    /// assert_eq!(tc.parent_id().to_string(), "b7ad6b7169203331");
    /// ```
    pub fn parent_id(&self) -> SpanId {
        self.parent_id
    }

    /// The trace flags byte.
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::TraceContext;
    /// assert_eq!(TraceContext::new_root().flags(), 0x01);
    /// ```
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller sampled (recorded) the trace.
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::TraceContext;
    /// let tc = TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
    /// assert!(tc.sampled());
    /// ```
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// The `tracestate` to pass on, if any.
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::TraceContext;
    /// let tc = TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
    /// assert!(tc.tracestate().is_none());
    /// ```
    pub fn tracestate(&self) -> Option<&HeaderValue> {
        self.state.as_ref()
    }

    /// The `traceparent` value, always version `00`.
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::TraceContext;
    /// let tc = TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
    /// assert_eq!(tc.traceparent(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    /// ```
    pub fn traceparent(&self) -> HeaderValue {
        header(self.trace_id, self.parent_id, self.flags)
    }

    /// The `traceresponse` value (W3C Trace Context Level 2) of the server span `span` handling
    /// a request in this trace: `00-<trace id>-<span>-<flags>`, so that a client can report which
    /// trace its request belonged to.
    ///
    /// ```
    /// use orchestrate_runtime::telemetry::{SpanId, TraceContext};
    /// let tc = TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
    /// assert_eq!(
    ///     tc.traceresponse(SpanId([0xab; 8])),
    ///     "00-0af7651916cd43dd8448eb211c80319c-abababababababab-01"
    /// );
    /// ```
    pub fn traceresponse(&self, span: SpanId) -> HeaderValue {
        header(self.trace_id, span, self.flags)
    }
}

/// `00-<trace id>-<span id>-<flags>`: the format of `traceparent` and `traceresponse`.
fn header(trace_id: TraceId, span_id: SpanId, flags: u8) -> HeaderValue {
    // `00-` + 32 + `-` + 16 + `-` + 2 hex digits.
    let mut text = *b"00-00000000000000000000000000000000-0000000000000000-00";
    hex_into(&mut text[3..35], &trace_id.0);
    hex_into(&mut text[36..52], &span_id.0);
    hex_into(&mut text[53..55], &[flags]);
    // Hex digits and dashes only: always a valid header value.
    HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `tracestate` lines joined with commas, when short enough and valid text.
fn tracestate(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut joined = String::new();
    for value in headers.get_all(TRACESTATE) {
        let value = value.to_str().ok()?.trim();
        if value.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(value);
    }
    if joined.is_empty() || joined.len() > MAX_TRACESTATE {
        return None;
    }
    HeaderValue::from_str(&joined).ok()
}

/// Two lowercase hex digits.
fn hex_byte(pair: &[u8]) -> Option<u8> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    Some(digit(pair[0])? << 4 | digit(pair[1])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn round_trips_and_rejects_the_invalid_forms() {
        let tc = TraceContext::parse(VALID).unwrap();
        assert_eq!(tc.traceparent(), VALID);
        assert!(tc.sampled());
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
            "0x-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0é",
            "02-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
        // A later version: the first four fields, the rest ignored.
        let future = TraceContext::parse("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-09-what").unwrap();
        assert_eq!(future.flags(), 0x09);
        assert_eq!(future.traceparent(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-09");
    }

    #[test]
    fn two_traceparents_or_an_invalid_one_give_no_context_and_tracestate_follows_its_traceparent() {
        let mut headers = HeaderMap::new();
        headers.append(TRACEPARENT, HeaderValue::from_static(VALID));
        headers.append(TRACESTATE, HeaderValue::from_static("a=1"));
        let tc = TraceContext::from_headers(&headers).unwrap();
        assert_eq!(tc.child().tracestate().unwrap(), "a=1");
        headers.append(TRACEPARENT, HeaderValue::from_static(VALID));
        assert_eq!(TraceContext::from_headers(&headers), None);
        headers.insert(TRACESTATE, HeaderValue::from_str(&"k=v,".repeat(200)).unwrap());
        headers.insert(TRACEPARENT, HeaderValue::from_static(VALID));
        assert_eq!(TraceContext::from_headers(&headers).unwrap().tracestate(), None);
    }
}
