//! Endpoint inputs read from an inbound request, with errors that name the field and what was
//! expected: 400 (malformed JSON, bad path/query/header value), 408 (body not received within the
//! body read timeout), 413 (body over the endpoint's limit), 415 (body not JSON), 422 (JSON of the
//! wrong shape).

use crate::auth::{Claims, Reason, challenge};
use axum::extract::RawPathParams;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::time::Duration;

/// Where an input was read from, for error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// The JSON body.
    Body,
    /// A route parameter.
    Path,
    /// The query string.
    Query,
    /// A header.
    Header,
    /// A claim of the verified bearer token.
    Token,
}

/// A rejected request: the status and a JSON body naming the field.
///
/// Body: `{"error":{"code","message","location","field"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    status: StatusCode,
    code: &'static str,
    location: Location,
    field: Option<String>,
    message: String,
}

impl InputError {
    /// A rejection with every part given.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        location: Location,
        field: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self { status, code, location, field, message: message.into() }
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The field at fault (a JSON path such as `items[0].qty`, or a parameter name).
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 401 for a claim input: the verified token does not fit the endpoint (counted as an
    /// authentication failure, `claim`).
    fn unauthorized(field: &str, message: impl Into<String>) -> Self {
        crate::telemetry::metrics::auth_failure(Reason::Claim.as_str());
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", Location::Token, Some(field.to_owned()), message)
    }

    fn invalid(location: Location, field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_INPUT", location, Some(field.to_owned()), message)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    location: Location,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for InputError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Detail {
                code: self.code,
                message: &self.message,
                location: self.location,
                field: self.field.as_deref(),
            },
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge(Reason::Claim));
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of a trickled body is not worth waiting for: the connection is not reused.
            response.headers_mut().insert(header::CONNECTION, http::HeaderValue::from_static("close"));
        }
        response
    }
}

/// A type an endpoint can read from a route parameter, a query parameter or a header.
///
/// Implemented for `String` and the standard number, `bool`, `char` and address types. For your
/// own types (an id newtype, an enum), implement it, usually through `FromStr`:
///
/// ```
/// use orchestrate_runtime::router::FromParam;
/// struct CartId(String);
/// impl FromParam for CartId {
///     fn from_param(value: &str) -> Result<Self, String> {
///         if value.starts_with('c') { Ok(CartId(value.to_owned())) } else { Err("a cart id starts with `c`".into()) }
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be read from a route parameter, query parameter or header",
    label = "not readable from request text",
    note = "use `String` or a number, or `impl orchestrate::router::FromParam for {Self}` (e.g. through its `FromStr`)"
)]
pub trait FromParam: Sized {
    /// Parses the (percent-decoded) text; the error says what was expected.
    ///
    /// # Errors
    ///
    /// A sentence saying what was expected, used in the 400 response.
    fn from_param(value: &str) -> Result<Self, String>;
}

macro_rules! from_param_via_from_str {
    ($($ty:ty => $expected:literal),* $(,)?) => {$(
        impl FromParam for $ty {
            fn from_param(value: &str) -> Result<Self, String> {
                value.parse().map_err(|e| format!("expected {}: {e}", $expected))
            }
        }
    )*};
}

from_param_via_from_str! {
    u8 => "an integer from 0 to 255", u16 => "an integer from 0 to 65535", u32 => "a non-negative integer",
    u64 => "a non-negative integer", u128 => "a non-negative integer", usize => "a non-negative integer",
    i8 => "an integer", i16 => "an integer", i32 => "an integer", i64 => "an integer", i128 => "an integer",
    isize => "an integer", f32 => "a number", f64 => "a number", bool => "`true` or `false`", char => "one character",
    std::net::IpAddr => "an IP address", std::net::Ipv4Addr => "an IPv4 address",
    std::net::Ipv6Addr => "an IPv6 address", std::net::SocketAddr => "an address with a port",
    std::num::NonZeroU32 => "a positive integer", std::num::NonZeroU64 => "a positive integer",
}

impl FromParam for String {
    fn from_param(value: &str) -> Result<Self, String> {
        Ok(value.to_owned())
    }
}

impl FromParam for Box<str> {
    fn from_param(value: &str) -> Result<Self, String> {
        Ok(value.into())
    }
}

impl FromParam for std::sync::Arc<str> {
    fn from_param(value: &str) -> Result<Self, String> {
        Ok(value.into())
    }
}

/// What the generated code reads inputs from: route parameters, query, headers and the body.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct Inbound {
    params: Vec<(String, String)>,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
    claims: Option<Claims>,
}

/// How long a request's body may take to arrive, set by the listener that accepted it
/// ([`server::serve`](crate::server::serve) puts its own limit in every request's extensions);
/// without it, the runtime's [`server_limits`](crate::Runtime::server_limits) apply, so a body
/// that trickles is answered 408 under `axum::serve` too.
///
/// ```
/// use orchestrate_runtime::router::BodyReadTimeout;
/// use std::time::Duration;
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(BodyReadTimeout(Duration::from_secs(5)));
/// assert_eq!(request.extensions().get::<BodyReadTimeout>(), Some(&BodyReadTimeout(Duration::from_secs(5))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyReadTimeout(pub Duration);

/// Default limit of a request body: 1 MiB (`#[endpoint(.., max_body = "..")]` changes it).
pub const DEFAULT_MAX_BODY: u64 = 1024 * 1024;

impl Inbound {
    /// An inbound request from parts (for tests and custom routing).
    pub fn new(params: Vec<(String, String)>, query: Option<String>, headers: HeaderMap, body: Bytes) -> Self {
        Self { params, query, headers, body, claims: None }
    }

    /// The same request with the claims of its verified bearer token.
    pub fn with_claims(mut self, claims: Option<Claims>) -> Self {
        self.claims = claims;
        self
    }

    /// The verified token's claim `name` as a `T`, for input `field`.
    ///
    /// # Errors
    ///
    /// 401 when the claim is absent or not a `T` (the token does not fit this endpoint).
    pub fn claim<T: DeserializeOwned>(&self, name: &str, field: &str) -> Result<T, InputError> {
        self.claim_opt(name, field)?.ok_or_else(|| {
            InputError::unauthorized(field, format!("the token has no `{name}` claim, which this endpoint reads"))
        })
    }

    /// The verified token's optional claim `name` as a `T`, for input `field`.
    ///
    /// # Errors
    ///
    /// 401 when the claim is present but not a `T`.
    pub fn claim_opt<T: DeserializeOwned>(&self, name: &str, field: &str) -> Result<Option<T>, InputError> {
        let Some(claims) = &self.claims else {
            return Err(InputError::unauthorized(field, "this endpoint reads claims but verified no token"));
        };
        claims.get::<T>(name).map_err(|e| {
            InputError::unauthorized(field, format!("the token's `{name}` claim is not what this endpoint reads: {e}"))
        })
    }

    /// Reads what an endpoint needs from `parts` and `body`: the route parameters, and the body
    /// (checking its content type and size) when `read_body` is set.
    ///
    /// # Errors
    ///
    /// 400 for a route parameter that is not UTF-8, 415 for a body that is not JSON, 413 for a
    /// body over `max_body` bytes, 408 for a body not received within `body_timeout`, 400 when
    /// the body cannot be read.
    pub async fn read(
        parts: &mut http::request::Parts,
        body: axum::body::Body,
        read_body: bool,
        max_body: u64,
        body_timeout: Duration,
    ) -> Result<Self, InputError> {
        use axum::extract::FromRequestParts;
        use axum::extract::rejection::RawPathParamsRejection;
        let params = match RawPathParams::from_request_parts(parts, &()).await {
            Ok(raw) => raw.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
            // Served outside a router with parameters (tests, custom routing): there are none.
            Err(RawPathParamsRejection::MissingPathParams(_)) => Vec::new(),
            Err(rejection) => {
                return Err(InputError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_INPUT",
                    Location::Path,
                    None,
                    rejection.body_text(),
                ));
            }
        };
        let body =
            if read_body { read_json_body(&parts.headers, body, max_body, body_timeout).await? } else { Bytes::new() };
        Ok(Self {
            params,
            query: parts.uri.query().map(str::to_owned),
            headers: std::mem::take(&mut parts.headers),
            body,
            claims: None,
        })
    }

    /// The request headers (moved into the request context once inputs are read).
    pub fn into_headers(self) -> HeaderMap {
        self.headers
    }

    /// The request headers.
    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The raw body read (empty when the endpoint reads none).
    pub(crate) fn raw_body(&self) -> &[u8] {
        &self.body
    }

    /// The JSON body as `T`: 400 when it is not JSON, 422 naming the field when it is the wrong
    /// shape.
    ///
    /// # Errors
    ///
    /// As above.
    pub fn body<T: DeserializeOwned>(&self) -> Result<T, InputError> {
        let malformed = |message: &dyn std::fmt::Display| {
            InputError::new(
                StatusCode::BAD_REQUEST,
                "MALFORMED_JSON",
                Location::Body,
                None,
                format!("the body is not valid JSON: {message}"),
            )
        };
        let mut de = serde_json::Deserializer::from_slice(&self.body);
        let value: T = serde_path_to_error::deserialize(&mut de).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            let message = inner.to_string();
            if inner.is_data() {
                let field = field_of(&path, &message);
                let shown = field.as_deref().unwrap_or("body");
                InputError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "INVALID_BODY",
                    Location::Body,
                    field.clone(),
                    format!("`{shown}`: {}", strip_position(&message)),
                )
            } else {
                malformed(&message)
            }
        })?;
        de.end().map_err(|e| malformed(&e))?;
        Ok(value)
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A route parameter.
    ///
    /// # Errors
    ///
    /// 400 naming the parameter when it does not parse.
    pub fn path<T: FromParam>(&self, name: &str) -> Result<T, InputError> {
        let value = self
            .param(name)
            .ok_or_else(|| InputError::invalid(Location::Path, name, format!("missing route parameter `{name}`")))?;
        T::from_param(value)
            .map_err(|e| InputError::invalid(Location::Path, name, format!("route parameter `{name}`: {e}")))
    }

    /// The whole query string as `T`.
    ///
    /// # Errors
    ///
    /// 400 naming the field that is missing or does not parse.
    pub fn query<T: DeserializeOwned>(&self) -> Result<T, InputError> {
        let query = self.query.as_deref().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map_err(|error| {
            let path = error.path().to_string();
            let message = error.into_inner().to_string();
            let field = field_of(&path, &message);
            InputError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_INPUT",
                Location::Query,
                field.clone(),
                format!("query `{}`: {message}", field.as_deref().unwrap_or("?")),
            )
        })
    }

    fn query_value(&self, name: &str) -> Option<Cow<'_, str>> {
        let query = self.query.as_deref()?;
        form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// A required query parameter.
    ///
    /// # Errors
    ///
    /// 400 naming the parameter when it is missing or does not parse.
    pub fn query_param<T: FromParam>(&self, name: &str) -> Result<T, InputError> {
        self.query_param_opt(name)?
            .ok_or_else(|| InputError::invalid(Location::Query, name, format!("missing query parameter `{name}`")))
    }

    /// An optional query parameter.
    ///
    /// # Errors
    ///
    /// 400 naming the parameter when it does not parse.
    pub fn query_param_opt<T: FromParam>(&self, name: &str) -> Result<Option<T>, InputError> {
        self.query_value(name)
            .map(|v| {
                T::from_param(&v)
                    .map_err(|e| InputError::invalid(Location::Query, name, format!("query parameter `{name}`: {e}")))
            })
            .transpose()
    }

    /// A required header.
    ///
    /// # Errors
    ///
    /// 400 naming the header when it is missing, not text, or does not parse.
    pub fn header<T: FromParam>(&self, name: &str) -> Result<T, InputError> {
        self.header_opt(name)?
            .ok_or_else(|| InputError::invalid(Location::Header, name, format!("missing header `{name}`")))
    }

    /// An optional header.
    ///
    /// # Errors
    ///
    /// 400 naming the header when it is not text or does not parse.
    pub fn header_opt<T: FromParam>(&self, name: &str) -> Result<Option<T>, InputError> {
        let Some(value) = self.headers.get(name) else { return Ok(None) };
        let text = value.to_str().map_err(|_| {
            InputError::invalid(Location::Header, name, format!("header `{name}` is not visible ASCII text"))
        })?;
        T::from_param(text)
            .map(Some)
            .map_err(|e| InputError::invalid(Location::Header, name, format!("header `{name}`: {e}")))
    }
}

/// The field a serde error is about: the path, completed by the name in "missing field `x`".
fn field_of(path: &str, message: &str) -> Option<String> {
    let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
    let path = if path == "." { None } else { Some(path.to_owned()) };
    match (path, missing) {
        (Some(p), Some(m)) => Some(format!("{p}.{m}")),
        (None, Some(m)) => Some(m.to_owned()),
        (p, None) => p,
    }
}

/// serde_json appends " at line 1 column 17"; the field path says more to an API client.
fn strip_position(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

async fn read_json_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    max_body: u64,
    timeout: Duration,
) -> Result<Bytes, InputError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false);
    if !is_json {
        return Err(InputError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            Location::Body,
            None,
            "the body must be JSON: send `content-type: application/json`",
        ));
    }
    let too_large = || {
        InputError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            Location::Body,
            None,
            format!("the body is larger than the limit of {max_body} bytes"),
        )
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body) {
        return Err(too_large());
    }
    let collect = Limited::new(body, usize::try_from(max_body).unwrap_or(usize::MAX)).collect();
    let Ok(collected) = tokio::time::timeout(timeout, collect).await else {
        return Err(InputError::new(
            StatusCode::REQUEST_TIMEOUT,
            "REQUEST_TIMEOUT",
            Location::Body,
            None,
            format!("the body did not arrive within the body read timeout of {timeout:?}"),
        ));
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(error) => Err(InputError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
            Location::Body,
            None,
            format!("the body could not be read: {error}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Req {
        cart_id: String,
        items: Vec<Line>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Line {
        qty: u32,
    }

    fn inbound(body: &str) -> Inbound {
        Inbound::new(
            vec![("id".into(), "42".into())],
            Some("page=2&q=a%20b&flag=x".into()),
            HeaderMap::new(),
            Bytes::from(body.to_owned()),
        )
    }

    #[test]
    fn body_errors_name_the_field() {
        let e = inbound(r#"{"cartId": 5, "items": []}"#).body::<Req>().unwrap_err();
        assert_eq!((e.status(), e.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("cartId")));
        assert_eq!(e.message(), "`cartId`: invalid type: integer `5`, expected a string");
        let e = inbound(r#"{"cartId": "c", "items": [{"qty": -1}]}"#).body::<Req>().unwrap_err();
        assert_eq!(e.field(), Some("items[0].qty"));
        let e = inbound(r#"{"items": []}"#).body::<Req>().unwrap_err();
        assert_eq!((e.status(), e.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("cartId")));
        let e = inbound(r#"{"cartId": "c""#).body::<Req>().unwrap_err();
        assert_eq!((e.status(), e.code()), (StatusCode::BAD_REQUEST, "MALFORMED_JSON"));
        let e = inbound(r#"{"cartId": "c", "items": []} trailing"#).body::<Req>().unwrap_err();
        assert_eq!(e.code(), "MALFORMED_JSON");
    }

    #[test]
    fn params_query_and_headers() {
        let i = inbound("");
        assert_eq!(i.path::<u32>("id").unwrap(), 42);
        assert_eq!(i.path::<u8>("id").unwrap(), 42);
        assert_eq!(i.query_param::<u32>("page").unwrap(), 2);
        assert_eq!(i.query_param::<String>("q").unwrap(), "a b");
        assert_eq!(i.query_param_opt::<u32>("missing").unwrap(), None);
        let e = i.query_param::<bool>("flag").unwrap_err();
        assert_eq!((e.status(), e.field()), (StatusCode::BAD_REQUEST, Some("flag")));
        assert!(e.message().contains("`true` or `false`"), "{}", e.message());
        assert_eq!(i.header_opt::<String>("x-user").unwrap(), None);
        assert_eq!(i.header::<String>("x-user").unwrap_err().message(), "missing header `x-user`");
    }

    #[test]
    fn whole_query_deserializes_with_field_errors() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Page {
            page: u32,
            size: u32,
        }
        let e = inbound("").query::<Page>().unwrap_err();
        assert_eq!(e.field(), Some("size"));
    }
}
