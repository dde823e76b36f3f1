//! Why a downstream call failed.

use http::{HeaderValue, StatusCode};
use std::fmt;

/// A boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The kind of a call failure; decides retries, breaker accounting and the endpoint's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallErrorKind {
    /// The attempt's timeout passed.
    Timeout,
    /// The endpoint's deadline passed before or during the call.
    DeadlineExceeded,
    /// No connection could be made, or it broke before a response.
    Connect,
    /// Another transport failure while sending or reading.
    Transport,
    /// The service answered with a non-success status.
    Status,
    /// The answer was not the declared type (malformed JSON, wrong shape).
    Decode,
    /// The answer was larger than the service's body cap.
    BodyTooLarge,
    /// The circuit breaker is open: no request was made.
    BreakerOpen,
    /// The service's concurrency limit was reached: no request was made (the call was shed).
    BulkheadFull,
    /// The service's outbound rate limit was reached (and the call could not wait for its turn):
    /// no request was made (the call was shed).
    RateLimited,
    /// The request could not be built (a body or query that does not serialize).
    Encode,
    /// A value cannot be placed in the downstream URL: it is empty or `.`/`..` as a path
    /// segment, which every URL parser would resolve to another path.
    InvalidInput,
    /// Custom logic (`with = ..`) reported a failure.
    Custom,
    /// The service is not configured in this runtime.
    UnknownService,
}

impl CallErrorKind {
    /// Short snake-case name, used in metrics labels and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::DeadlineExceeded => "deadline",
            Self::Connect => "connect",
            Self::Transport => "transport",
            Self::Status => "status",
            Self::Decode => "decode",
            Self::BodyTooLarge => "body_too_large",
            Self::BreakerOpen => "breaker_open",
            Self::BulkheadFull => "bulkhead_full",
            Self::RateLimited => "rate_limited",
            Self::Encode => "encode",
            Self::InvalidInput => "invalid_input",
            Self::Custom => "custom",
            Self::UnknownService => "unknown_service",
        }
    }

    /// Whether the failure is a timeout (of the attempt or of the endpoint).
    pub const fn is_timeout(self) -> bool {
        matches!(self, Self::Timeout | Self::DeadlineExceeded)
    }

    /// Whether the BFF refused the call itself to protect its own capacity or the service's (its
    /// concurrency limit or the service's outbound rate limit was reached): load shedding, not a
    /// failure of the service.
    ///
    /// ```
    /// assert!(orchestrate_runtime::CallErrorKind::BulkheadFull.is_shed());
    /// ```
    pub const fn is_shed(self) -> bool {
        matches!(self, Self::BulkheadFull | Self::RateLimited)
    }
}

/// A failed downstream call.
///
/// ```
/// use orchestrate_runtime::{CallError, CallErrorKind};
/// let e = CallError::custom("loyalty service returned no tier");
/// assert_eq!(e.kind(), CallErrorKind::Custom);
/// ```
#[derive(Debug)]
pub struct CallError {
    kind: CallErrorKind,
    status: Option<StatusCode>,
    retry_after: Option<HeaderValue>,
    source: Option<BoxError>,
}

impl CallError {
    /// A failure of the given kind.
    pub fn new(kind: CallErrorKind) -> Self {
        Self { kind, status: None, retry_after: None, source: None }
    }

    /// A failure with an underlying cause.
    pub fn with_source(kind: CallErrorKind, source: impl Into<BoxError>) -> Self {
        Self { kind, status: None, retry_after: None, source: Some(source.into()) }
    }

    /// The service answered `status` (with its `Retry-After`, if any).
    pub fn status(status: StatusCode, retry_after: Option<HeaderValue>) -> Self {
        Self { kind: CallErrorKind::Status, status: Some(status), retry_after, source: None }
    }

    /// A failure reported by custom call logic.
    pub fn custom(message: impl Into<String>) -> Self {
        Self::with_source(CallErrorKind::Custom, message.into())
    }

    /// The kind of failure.
    pub fn kind(&self) -> CallErrorKind {
        self.kind
    }

    /// The downstream status, for [`CallErrorKind::Status`].
    pub fn http_status(&self) -> Option<StatusCode> {
        self.status
    }

    /// The downstream `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<&HeaderValue> {
        self.retry_after.as_ref()
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, self.status) {
            (CallErrorKind::Status, Some(status)) => write!(f, "answered {status}"),
            (CallErrorKind::Timeout, _) => f.write_str("timed out"),
            (CallErrorKind::DeadlineExceeded, _) => f.write_str("endpoint deadline passed"),
            (CallErrorKind::Connect, _) => f.write_str("connection failed"),
            (CallErrorKind::Transport, _) => f.write_str("transport error"),
            (CallErrorKind::Decode, _) => f.write_str("answer is not the declared type"),
            (CallErrorKind::BodyTooLarge, _) => f.write_str("answer exceeds the body size cap"),
            (CallErrorKind::BreakerOpen, _) => f.write_str("circuit breaker open"),
            (CallErrorKind::BulkheadFull, _) => f.write_str("too many calls in flight"),
            (CallErrorKind::RateLimited, _) => f.write_str("outbound rate limit reached"),
            (CallErrorKind::Encode, _) => f.write_str("request could not be encoded"),
            (CallErrorKind::InvalidInput, _) => f.write_str("value cannot be placed in a URL"),
            (CallErrorKind::Custom, _) => f.write_str("custom call failed"),
            (CallErrorKind::UnknownService, _) => f.write_str("service not configured"),
            (CallErrorKind::Status, None) => f.write_str("unsuccessful status"),
        }?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}
