//! What can go wrong with a store operation, in the three kinds a feature decides on.

use std::fmt;
use std::time::Duration;

/// A store operation that did not give its answer.
///
/// A feature decides what each kind means for it (a cache miss, a local limit, a journal write
/// retried); none of them is a reason to fail the request.
///
/// ```
/// use orchestrate_runtime::store::{StoreError, StoreErrorKind};
/// fn fallback(error: &StoreError) -> &'static str {
///     match error.kind() {
///         StoreErrorKind::Timeout | StoreErrorKind::Unavailable => "use the local state",
///         _ => "a bug in the feature's key layout or script",
///     }
/// }
/// # let _ = fallback;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// No answer within the command timeout (connecting included): the store is slow, or a
    /// connection is hanging.
    Timeout {
        /// The command (`GET`), `pipeline` or `script:<name>`.
        operation: String,
        /// The timeout that passed.
        after: Duration,
    },
    /// The store cannot be reached: the connection was refused, broken or reset, the server is
    /// loading its data or refuses writes, authentication failed, or the store failed just
    /// before and is given a moment before the next attempt.
    Unavailable {
        /// The command, `pipeline` or `script:<name>`.
        operation: String,
        /// What happened.
        reason: String,
    },
    /// The store answered, with an error (`WRONGTYPE`, a script's error, ...) or with a value
    /// that does not convert to the type asked for.
    Reply {
        /// The command, `pipeline` or `script:<name>`.
        operation: String,
        /// The error code the server gave (`WRONGTYPE`, `ERR`), if any.
        code: Option<String>,
        /// What the server or the conversion said.
        message: String,
    },
}

/// The kind of a [`StoreError`], also the `kind` label of `orchestrate_store_errors_total`.
///
/// ```
/// use orchestrate_runtime::store::StoreErrorKind;
/// assert_eq!(StoreErrorKind::Unavailable.as_str(), "unavailable");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// [`StoreError::Timeout`].
    Timeout,
    /// [`StoreError::Unavailable`].
    Unavailable,
    /// [`StoreError::Reply`].
    Reply,
}

impl StoreErrorKind {
    /// `timeout`, `unavailable` or `reply`.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::store::StoreErrorKind::Timeout.as_str(), "timeout");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Reply => "reply",
        }
    }
}

impl StoreError {
    /// Its kind.
    ///
    /// ```
    /// use orchestrate_runtime::store::{StoreError, StoreErrorKind};
    /// # fn check(error: StoreError) {
    /// if error.kind() == StoreErrorKind::Timeout { /* the store is slow */ }
    /// # }
    /// ```
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            Self::Timeout { .. } => StoreErrorKind::Timeout,
            Self::Unavailable { .. } => StoreErrorKind::Unavailable,
            Self::Reply { .. } => StoreErrorKind::Reply,
        }
    }

    /// The operation that failed: the command's name (`GET`), `pipeline` or `script:<name>`.
    ///
    /// ```
    /// # fn check(error: orchestrate_runtime::store::StoreError) {
    /// tracing::debug!(operation = error.operation(), "store failed: {error}");
    /// # }
    /// ```
    pub fn operation(&self) -> &str {
        match self {
            Self::Timeout { operation, .. } | Self::Unavailable { operation, .. } | Self::Reply { operation, .. } => {
                operation
            }
        }
    }

    /// Sorts an error of redis-rs into the three kinds.
    pub(crate) fn from_redis(operation: String, error: &redis::RedisError) -> Self {
        use redis::{ErrorKind, ServerErrorKind};
        let unavailable = match error.kind() {
            ErrorKind::Io
            | ErrorKind::AuthenticationFailed
            | ErrorKind::InvalidClientConfig
            | ErrorKind::ClusterConnectionNotFound
            | ErrorKind::RESP3NotSupported => true,
            ErrorKind::Server(kind) => matches!(
                kind,
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ReadOnly
            ),
            _ => false,
        };
        if unavailable {
            Self::Unavailable { operation, reason: error.to_string() }
        } else {
            let code = error.code().map(str::to_owned);
            Self::Reply { operation, code, message: error.to_string() }
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout { operation, after } => {
                write!(f, "store `{operation}` timed out after {}ms", after.as_millis())
            }
            Self::Unavailable { operation, reason } => write!(f, "store unavailable for `{operation}`: {reason}"),
            Self::Reply { operation, message, .. } => write!(f, "store `{operation}` failed: {message}"),
        }
    }
}

impl std::error::Error for StoreError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(error: redis::RedisError) -> StoreErrorKind {
        StoreError::from_redis("GET".to_owned(), &error).kind()
    }

    #[test]
    fn redis_errors_are_sorted_into_three_kinds() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(kind(refused.into()), StoreErrorKind::Unavailable);
        let broken = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(kind(broken.into()), StoreErrorKind::Unavailable);
        let wrong_type = redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "not a number"));
        assert_eq!(kind(wrong_type), StoreErrorKind::Reply);
        let auth = redis::RedisError::from((redis::ErrorKind::AuthenticationFailed, "WRONGPASS"));
        assert_eq!(kind(auth), StoreErrorKind::Unavailable);
    }

    #[test]
    fn messages_name_the_operation() {
        let error = StoreError::Timeout { operation: "GET".to_owned(), after: Duration::from_millis(50) };
        assert_eq!(error.to_string(), "store `GET` timed out after 50ms");
        assert_eq!(error.operation(), "GET");
    }
}
