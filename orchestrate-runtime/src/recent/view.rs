//! What a reader gets of a kept request: owned copies, made under the store's lock and read
//! after it is released.

use crate::breaker::BreakerState;
use crate::error::CallErrorKind;
use crate::telemetry::TraceId;
use crate::timeline::{AttemptTimes, Ending};
use std::time::Duration;
use tokio::time::Instant;

/// Which of an endpoint's sets keep a request (see [`Recent`](super::Recent)).
///
/// ```
/// use orchestrate_runtime::recent::Kept;
/// let kept = Kept::LAST.or(Kept::FAILED);
/// assert!(kept.last && kept.failed && !kept.slowest);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Kept {
    /// Among the last requests.
    pub last: bool,
    /// Among the slowest of the window.
    pub slowest: bool,
    /// Among the last requests of the window in which a call failed.
    pub failed: bool,
}

impl Kept {
    /// Kept by the last requests only.
    pub const LAST: Kept = Kept { last: true, slowest: false, failed: false };
    /// Kept by the slowest only.
    pub const SLOWEST: Kept = Kept { last: false, slowest: true, failed: false };
    /// Kept by the failed only.
    pub const FAILED: Kept = Kept { last: false, slowest: false, failed: true };

    /// Kept by either.
    ///
    /// ```
    /// use orchestrate_runtime::recent::Kept;
    /// assert_eq!(Kept::SLOWEST.or(Kept::SLOWEST), Kept::SLOWEST);
    /// ```
    pub fn or(self, other: Kept) -> Kept {
        Kept {
            last: self.last || other.last,
            slowest: self.slowest || other.slowest,
            failed: self.failed || other.failed,
        }
    }
}

/// One kept request of an endpoint: its ids, status and timing, and each call's record. No body
/// and no header value but the request id is ever kept.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecentRequest {
    /// The request's number among the endpoint's recorded requests (1 for the first).
    pub seq: u64,
    /// The `x-request-id` the response carried.
    pub request_id: String,
    /// The W3C trace id of the request (its `traceparent` and `traceresponse`).
    pub trace_id: TraceId,
    /// When the request started.
    pub started: Instant,
    /// The status of the response.
    pub status: u16,
    /// Whether an optional call failed (`partialData: true`).
    pub partial: bool,
    /// From the request's arrival to its answer, inputs read and body written included.
    pub duration: Duration,
    /// The time of the endpoint's graph (the time axis of its calls).
    pub graph: Duration,
    /// Which sets keep it.
    pub kept: Kept,
    /// Every call that started, in the order they finished.
    pub calls: Vec<RecentCall>,
}

impl RecentRequest {
    /// Whether the request failed (a status other than 2xx).
    ///
    /// ```
    /// # use orchestrate_runtime::recent::{Recent, RecentRequests, Served};
    /// # use orchestrate_runtime::telemetry::TraceId;
    /// # use orchestrate_runtime::{CallOutcome, CallRecord, EndpointSpec, Method, Timeline};
    /// # use std::time::Duration;
    /// # static SPEC: EndpointSpec = EndpointSpec::new("Empty", Method::Get, "/", Duration::from_millis(500), &[], &[]);
    /// # let ms = Duration::from_millis;
    /// # let timeline = Timeline::new(vec![CallRecord::new("a", "a", ms(1), ms(4), CallOutcome::Ok)], ms(5));
    /// # let (recent, now) = (Recent::new(RecentRequests::DEFAULT), tokio::time::Instant::now());
    /// # recent.record(&SPEC, &Served::new(&timeline, 502, b"r-1", TraceId([1; 16]), now, ms(6)), now);
    /// let request = &recent.requests(&SPEC, now)[0];
    /// assert!(request.status == 502 && request.failed());
    /// ```
    pub fn failed(&self) -> bool {
        !(200..300).contains(&self.status)
    }

    /// How long ago the request started, seen at `now`.
    ///
    /// ```
    /// # use orchestrate_runtime::recent::{Recent, RecentRequests, Served};
    /// # use orchestrate_runtime::telemetry::TraceId;
    /// # use orchestrate_runtime::{CallOutcome, CallRecord, EndpointSpec, Method, Timeline};
    /// # use std::time::Duration;
    /// # static SPEC: EndpointSpec = EndpointSpec::new("Empty", Method::Get, "/", Duration::from_millis(500), &[], &[]);
    /// # let ms = Duration::from_millis;
    /// # let timeline = Timeline::new(vec![CallRecord::new("a", "a", ms(1), ms(4), CallOutcome::Ok)], ms(5));
    /// # let (recent, now) = (Recent::new(RecentRequests::DEFAULT), tokio::time::Instant::now());
    /// # recent.record(&SPEC, &Served::new(&timeline, 502, b"r-1", TraceId([1; 16]), now, ms(6)), now);
    /// let request = &recent.requests(&SPEC, now)[0];
    /// assert_eq!(request.age(now + Duration::from_secs(3)), Duration::from_secs(3));
    /// ```
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }
}

/// One call of a kept request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecentCall {
    /// Index of the call's node in [`EndpointSpec::nodes`](crate::EndpointSpec::nodes).
    pub node: usize,
    /// The call's field name.
    pub call: &'static str,
    /// The service called.
    pub service: &'static str,
    /// Whether the call is required.
    pub required: bool,
    /// Start, from the start of the graph.
    pub start: Duration,
    /// End, from the start of the graph.
    pub end: Duration,
    /// Requests sent (0 when none was).
    pub attempts: u32,
    /// When the attempts ran (see [`AttemptTimes`] for which are kept).
    pub attempt_times: AttemptTimes,
    /// How the call ended.
    pub ending: Ending,
    /// Why it failed, when it did.
    pub error: Option<CallErrorKind>,
    /// The status of the last response, if one arrived.
    pub status: Option<u16>,
    /// The state of the service's circuit breaker when the call ended.
    pub breaker: Option<BreakerState>,
    /// Which instance of the service answered, once services have several.
    pub instance: Option<u16>,
}

impl RecentCall {
    /// How long the call took.
    ///
    /// ```
    /// # use orchestrate_runtime::recent::{Recent, RecentRequests, Served};
    /// # use orchestrate_runtime::telemetry::TraceId;
    /// # use orchestrate_runtime::{CallOutcome, CallRecord, CallSpec, CallTarget, EndpointSpec, Method, NodeKind, NodeSpec, Timeline};
    /// # use std::time::Duration;
    /// # const A: CallSpec = CallSpec::new("a", 0, CallTarget::Http { method: Method::Get, path: "/" }, Duration::from_millis(100));
    /// static SPEC: EndpointSpec = EndpointSpec::new("A", Method::Get, "/a", Duration::from_millis(500), &[],
    ///     &[NodeSpec::new("a", "A", &[], &[], NodeKind::Call(A))]);
    /// let ms = Duration::from_millis;
    /// let timeline = Timeline::new(vec![CallRecord::new("a", "a", ms(1), ms(4), CallOutcome::Ok)], ms(5));
    /// let (recent, now) = (Recent::new(RecentRequests::DEFAULT), tokio::time::Instant::now());
    /// recent.record(&SPEC, &Served::new(&timeline, 200, b"r-1", TraceId([1; 16]), now, ms(6)), now);
    /// let call = &recent.requests(&SPEC, now)[0].calls[0];
    /// assert_eq!((call.call, call.duration()), ("a", ms(3)));
    /// ```
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// Which kept requests a reader asks for.
///
/// ```
/// use orchestrate_runtime::recent::Filter;
/// assert_eq!(Filter::parse("failed"), Some(Filter::Failed));
/// assert_eq!(Filter::parse("nope"), None);
/// assert_eq!(Filter::Slow.as_str(), "slow");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Filter {
    /// Every kept request, newest first.
    #[default]
    All,
    /// The slowest of the window and those that missed the endpoint's target, slowest first.
    Slow,
    /// Requests that failed (a status other than 2xx), newest first.
    Failed,
    /// Requests that came back partial (an optional call failed), newest first.
    Partial,
}

impl Filter {
    /// Every filter, in the order the page offers them.
    pub const ALL: &[Filter] = &[Self::All, Self::Slow, Self::Failed, Self::Partial];

    /// The filter named `name` (`all`, `slow`, `failed`, `partial`).
    ///
    /// ```
    /// use orchestrate_runtime::recent::Filter;
    /// assert_eq!(Filter::parse("slow"), Some(Filter::Slow));
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.as_str() == name)
    }

    /// Its name, as in `?show=failed`.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::recent::Filter::Failed.as_str(), "failed");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Slow => "slow",
            Self::Failed => "failed",
            Self::Partial => "partial",
        }
    }

    /// Its name for people.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::recent::Filter::Partial.title(), "Partial");
    /// ```
    pub const fn title(self) -> &'static str {
        match self {
            Self::All => "All",
            Self::Slow => "Slow",
            Self::Failed => "Failed",
            Self::Partial => "Partial",
        }
    }
}
