//! The recent requests of each endpoint, kept so that `/_orchestrate` can show what they did:
//! each call's start, end, attempts, outcome, status and breaker state, on one time axis.
//!
//! [`router::serve`](crate::router::serve) records every request whose graph ran (a request
//! rejected for its inputs has no calls to show and is not kept) into the store of its endpoint:
//!
//! - the **last** `last` requests, whatever their outcome (a ring: the oldest is overwritten);
//! - the **slowest** `slowest` requests of the last `within` (a request takes the place of the
//!   fastest one kept once the set is full, if it is slower);
//! - the **failed**: the last `failed` requests of the last `within` in which a call failed
//!   (the request failed, or came back partial).
//!
//! The numbers are [`RecentRequests`] (default: 50, 10 and 20 over five minutes), set with
//! [`RuntimeBuilder::recent_requests`](crate::RuntimeBuilder::recent_requests) or the `[recent]`
//! table of the configuration file, which can also switch recording off.
//!
//! # What is kept, and what it costs
//!
//! Per request: the route's endpoint, the `x-request-id`, the trace id, the status, the partial
//! flag, the duration, and per call the [`CallRecord`](crate::CallRecord)'s start, end, attempts
//! (with the times of up to four), outcome, error kind, status, breaker state and instance. Never
//! a body, a header value other than the request id, a query or a downstream URL.
//!
//! Memory is fixed: each endpoint's store is `last + slowest + failed` entries of a fixed size
//! ([`Recent::entry_bytes`]: 272 bytes plus 56 per call node on 64-bit Linux, 552 bytes for
//! the checkout endpoint's five calls), allocated when the endpoint serves its first request; nothing is allocated or grows
//! after that. Recording a request is one short critical section under the endpoint's own mutex:
//! the entry is written in place into the ring (and copied into the slowest or failed set when it
//! belongs there). Finding the endpoint's store takes no lock (a fixed table of
//! [`OnceLock`]s holding each endpoint's store, compared by the spec's address,
//! then by method and route). `BENCHMARKS.md`
//! has the cost per request with recording on and off.
//!
//! # Reading
//!
//! [`Recent::requests`] copies out what a store keeps, each request once with the sets that keep
//! it ([`Kept`]); [`filter`] picks what a [`Filter`] shows; [`analyse`] reads the critical path
//! off a request and whether (and during which call) it missed the endpoint's [`target`].
//!
//! ```
//! use orchestrate_runtime::recent::{Filter, Recent, RecentRequests, Served, filter};
//! use orchestrate_runtime::telemetry::TraceId;
//! use orchestrate_runtime::{CallErrorKind, CallOutcome, CallRecord, EndpointSpec, Method, Timeline};
//! use std::time::Duration;
//! use tokio::time::Instant;
//!
//! static SPEC: EndpointSpec = EndpointSpec::new("Empty", Method::Get, "/", Duration::from_millis(500), &[], &[]);
//! let recent = Recent::new(RecentRequests::new(2, 1, 1, Duration::from_secs(60)));
//! let now = Instant::now();
//! let timeline = Timeline::default();
//! for (i, status) in [200, 502, 200, 200].into_iter().enumerate() {
//!     let id = format!("r-{i}");
//!     let took = Duration::from_millis(if i == 0 { 900 } else { 10 });
//!     recent.record(&SPEC, &Served::new(&timeline, status, id.as_bytes(), TraceId([1; 16]), now, took), now);
//! }
//! let kept = recent.requests(&SPEC, now);
//! let ids: Vec<&str> = kept.iter().map(|r| r.request_id.as_str()).collect();
//! // The last two, the slowest (r-0) and the failed one (r-1), newest first.
//! assert_eq!(ids, ["r-3", "r-2", "r-1", "r-0"]);
//! assert!(kept[3].kept.slowest && !kept[3].kept.last);
//! let failed = filter(&SPEC, kept, Filter::Failed);
//! assert_eq!(failed[0].request_id, "r-1");
//! assert_eq!(recent.recorded(&SPEC), 4);
//! ```

mod analysis;
mod ring;
mod view;

pub use analysis::{Analysis, Target, TargetSource, analyse, target};
pub use orchestrate_core::policy::RecentRequests;
pub use view::{Filter, Kept, RecentCall, RecentRequest};

use crate::spec::EndpointSpec;
use crate::telemetry::TraceId;
use crate::timeline::Timeline;
use ring::Store;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::time::Instant;

/// Endpoints whose requests are kept; the ones served after the first 256 are not.
///
/// ```
/// assert_eq!(orchestrate_runtime::recent::MAX_ENDPOINTS, 256);
/// ```
pub const MAX_ENDPOINTS: usize = 256;

/// One finished request, as [`Recent::record`] takes it: everything `serve` knows about it that
/// may be kept, and nothing that may not (no body, no other header).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Served<'a> {
    /// The run's calls.
    pub timeline: &'a Timeline,
    /// The response's status.
    pub status: u16,
    /// Whether an optional call failed.
    pub partial: bool,
    /// The `x-request-id` (at most 200 bytes are kept; the router accepts no longer one).
    pub request_id: &'a [u8],
    /// The W3C trace id.
    pub trace_id: TraceId,
    /// When the request arrived.
    pub started: Instant,
    /// From its arrival to its answer.
    pub duration: Duration,
}

impl<'a> Served<'a> {
    /// A request with `timeline` answered `status` (not partial), with its ids, arrival and
    /// duration.
    ///
    /// ```
    /// use orchestrate_runtime::recent::Served;
    /// use orchestrate_runtime::telemetry::TraceId;
    /// use orchestrate_runtime::Timeline;
    /// let timeline = Timeline::default();
    /// let served = Served::new(&timeline, 200, b"r-1", TraceId([1; 16]), tokio::time::Instant::now(), Default::default())
    ///     .with_partial(true);
    /// assert!(served.partial);
    /// ```
    pub fn new(
        timeline: &'a Timeline,
        status: u16,
        request_id: &'a [u8],
        trace_id: TraceId,
        started: Instant,
        duration: Duration,
    ) -> Self {
        Self { timeline, status, partial: false, request_id, trace_id, started, duration }
    }

    /// The same, partial or not.
    ///
    /// ```
    /// use orchestrate_runtime::recent::Served;
    /// use orchestrate_runtime::telemetry::TraceId;
    /// let timeline = orchestrate_runtime::Timeline::default();
    /// let served = Served::new(&timeline, 200, b"r-1", TraceId([1; 16]), tokio::time::Instant::now(), Default::default());
    /// assert!(!served.partial && served.with_partial(true).partial);
    /// ```
    pub fn with_partial(mut self, partial: bool) -> Self {
        self.partial = partial;
        self
    }
}

/// The recent requests of every endpoint of a runtime (see the [module docs](self)).
///
/// [`Runtime::recent`](crate::Runtime::recent) is the runtime's; the router records into it and
/// `/_orchestrate` reads it.
pub struct Recent {
    settings: RecentRequests,
    /// One store per endpoint, in the order endpoints were first served; empty when off.
    stores: Box<[OnceLock<Box<Store>>]>,
}

impl std::fmt::Debug for Recent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let endpoints: Vec<&str> = self.stores().map(|s| s.spec().name).collect();
        f.debug_struct("Recent").field("settings", &self.settings).field("endpoints", &endpoints).finish()
    }
}

impl Recent {
    /// Stores for the recent requests of up to [`MAX_ENDPOINTS`] endpoints, as `settings` says;
    /// nothing is allocated for an endpoint until it serves a request.
    ///
    /// ```
    /// use orchestrate_runtime::recent::{Recent, RecentRequests};
    /// assert!(Recent::new(RecentRequests::DEFAULT).is_recording());
    /// assert!(!Recent::new(RecentRequests::OFF).is_recording());
    /// ```
    pub fn new(settings: RecentRequests) -> Self {
        let endpoints = if settings.enabled { MAX_ENDPOINTS } else { 0 };
        Self { settings, stores: (0..endpoints).map(|_| OnceLock::new()).collect() }
    }

    /// What is kept.
    ///
    /// ```
    /// use orchestrate_runtime::recent::{Recent, RecentRequests};
    /// assert_eq!(Recent::new(RecentRequests::DEFAULT).settings().last, 50);
    /// ```
    pub fn settings(&self) -> RecentRequests {
        self.settings
    }

    /// Whether requests are recorded.
    ///
    /// ```
    /// use orchestrate_runtime::recent::{Recent, RecentRequests};
    /// assert!(Recent::new(RecentRequests::DEFAULT).is_recording());
    /// ```
    pub fn is_recording(&self) -> bool {
        self.settings.enabled
    }

    /// Records a finished request of `spec` (`now`: when it finished, for the window of the
    /// slowest and failed sets). Does nothing when recording is off.
    ///
    /// ```
    /// # use orchestrate_runtime::recent::{Recent, RecentRequests, Served};
    /// # use orchestrate_runtime::telemetry::TraceId;
    /// # use orchestrate_runtime::{EndpointSpec, Method, Timeline};
    /// # use std::time::Duration;
    /// static SPEC: EndpointSpec = EndpointSpec::new("Empty", Method::Get, "/", Duration::from_millis(500), &[], &[]);
    /// let recent = Recent::new(RecentRequests::OFF);
    /// let (timeline, now) = (Timeline::default(), tokio::time::Instant::now());
    /// recent.record(&SPEC, &Served::new(&timeline, 200, b"r-1", TraceId([1; 16]), now, Duration::ZERO), now);
    /// assert!(recent.requests(&SPEC, now).is_empty());
    /// ```
    #[inline]
    pub fn record(&self, spec: &'static EndpointSpec, served: &Served<'_>, now: Instant) {
        if self.settings.enabled
            && let Some(store) = self.store(spec)
        {
            store.record(served, now);
        }
    }

    /// The store of `spec`, made on its first request.
    fn store(&self, spec: &'static EndpointSpec) -> Option<&Store> {
        for slot in &self.stores {
            let store = slot.get_or_init(|| Box::new(Store::new(spec, &self.settings)));
            if same_endpoint(store.spec(), spec) {
                return Some(store);
            }
        }
        None
    }

    /// The store of `spec`, if it served a request.
    fn find(&self, spec: &EndpointSpec) -> Option<&Store> {
        self.stores().find(|store| same_endpoint(store.spec(), spec))
    }

    fn stores(&self) -> impl Iterator<Item = &Store> {
        self.stores.iter().map_while(|slot| slot.get()).map(|store| &**store)
    }

    /// Every request of `spec` kept at `now`, each once, newest first (see [`filter`] for the
    /// other orders).
    ///
    /// ```
    /// # use orchestrate_runtime::recent::{Recent, RecentRequests};
    /// # use orchestrate_runtime::{EndpointSpec, Method};
    /// # use std::time::Duration;
    /// static SPEC: EndpointSpec = EndpointSpec::new("Empty", Method::Get, "/", Duration::from_millis(500), &[], &[]);
    /// let recent = Recent::new(RecentRequests::DEFAULT);
    /// assert!(recent.requests(&SPEC, tokio::time::Instant::now()).is_empty());
    /// ```
    pub fn requests(&self, spec: &EndpointSpec, now: Instant) -> Vec<RecentRequest> {
        self.find(spec).map(|store| store.requests(now)).unwrap_or_default()
    }

    /// Requests of `spec` recorded so far.
    ///
    /// ```
    /// # use orchestrate_runtime::recent::{Recent, RecentRequests};
    /// # use orchestrate_runtime::{EndpointSpec, Method};
    /// # use std::time::Duration;
    /// static SPEC: EndpointSpec = EndpointSpec::new("Empty", Method::Get, "/", Duration::from_millis(500), &[], &[]);
    /// assert_eq!(Recent::new(RecentRequests::DEFAULT).recorded(&SPEC), 0);
    /// ```
    pub fn recorded(&self, spec: &EndpointSpec) -> u64 {
        self.find(spec).map_or(0, Store::recorded)
    }

    /// Bytes one kept request of `spec` takes: a fixed-size entry (ids, status, timings) and one
    /// fixed-size place per call node of the endpoint.
    ///
    /// ```
    /// # use orchestrate_runtime::recent::Recent;
    /// # use orchestrate_runtime::{EndpointSpec, Method};
    /// # use std::time::Duration;
    /// static EMPTY: EndpointSpec = EndpointSpec::new("Empty", Method::Get, "/", Duration::from_millis(500), &[], &[]);
    /// assert!(Recent::entry_bytes(&EMPTY) < 300);
    /// ```
    pub fn entry_bytes(spec: &EndpointSpec) -> usize {
        ring::entry_bytes(spec)
    }

    /// Bytes the store of `spec` takes once it exists: [`entry_bytes`](Self::entry_bytes) ×
    /// (`last + slowest + failed`), the same after one request as after a million.
    ///
    /// ```
    /// # use orchestrate_runtime::recent::{Recent, RecentRequests};
    /// # use orchestrate_runtime::{EndpointSpec, Method};
    /// # use std::time::Duration;
    /// static EMPTY: EndpointSpec = EndpointSpec::new("Empty", Method::Get, "/", Duration::from_millis(500), &[], &[]);
    /// let recent = Recent::new(RecentRequests::DEFAULT);
    /// assert_eq!(recent.store_bytes(&EMPTY), 80 * Recent::entry_bytes(&EMPTY));
    /// ```
    pub fn store_bytes(&self, spec: &EndpointSpec) -> usize {
        let entries = (self.settings.last.max(1) + self.settings.slowest + self.settings.failed) as usize;
        if self.settings.enabled { entries * ring::entry_bytes(spec) } else { 0 }
    }

    /// Bytes every store made so far takes, plus the table that finds them.
    ///
    /// ```
    /// use orchestrate_runtime::recent::{Recent, RecentRequests};
    /// assert_eq!(Recent::new(RecentRequests::OFF).memory_bytes(), 0);
    /// ```
    pub fn memory_bytes(&self) -> usize {
        let table = self.stores.len() * std::mem::size_of::<OnceLock<Box<Store>>>();
        table + self.stores().map(|s| std::mem::size_of::<Store>() + self.store_bytes(s.spec())).sum::<usize>()
    }
}

/// Whether `a` and `b` describe the same endpoint. Usually the same `&'static` (a pointer
/// comparison), but `Endpoint::SPEC` is an associated `const`, which the compiler may place at a
/// different address in each crate or codegen unit that uses it; then its name, method and route
/// say it (no two endpoints of an application share a method and route).
fn same_endpoint(a: &EndpointSpec, b: &EndpointSpec) -> bool {
    std::ptr::eq(a, b) || (a.method == b.method && a.route == b.route && a.name == b.name)
}

impl Filter {
    /// Whether the filter shows `request`, a kept request of `spec`.
    ///
    /// ```
    /// # use orchestrate_runtime::recent::{Filter, Recent, RecentRequests, Served};
    /// # use orchestrate_runtime::telemetry::TraceId;
    /// # use orchestrate_runtime::{EndpointSpec, Method, Timeline};
    /// # use std::time::Duration;
    /// static SPEC: EndpointSpec = EndpointSpec::new("Empty", Method::Get, "/", Duration::from_millis(500), &[], &[]);
    /// let (recent, timeline, now) = (Recent::new(RecentRequests::DEFAULT), Timeline::default(), tokio::time::Instant::now());
    /// let took = Duration::from_millis(600); // over the endpoint's 500ms timeout
    /// recent.record(&SPEC, &Served::new(&timeline, 504, b"r-1", TraceId([1; 16]), now, took), now);
    /// let request = &recent.requests(&SPEC, now)[0];
    /// assert!(Filter::Slow.shows(&SPEC, request) && Filter::Failed.shows(&SPEC, request));
    /// assert!(!Filter::Partial.shows(&SPEC, request));
    /// ```
    pub fn shows(self, spec: &EndpointSpec, request: &RecentRequest) -> bool {
        match self {
            Self::All => true,
            Self::Failed => request.failed(),
            Self::Partial => request.partial,
            Self::Slow => request.kept.slowest || target(spec).missed_by(request.duration),
        }
    }
}

/// The requests of `requests` (kept requests of `spec`) that `show` shows, in its order: the
/// slowest first for [`Filter::Slow`], else newest first.
///
/// ```
/// # use orchestrate_runtime::recent::{Filter, filter};
/// # use orchestrate_runtime::{EndpointSpec, Method};
/// # use std::time::Duration;
/// static SPEC: EndpointSpec = EndpointSpec::new("Empty", Method::Get, "/", Duration::from_millis(500), &[], &[]);
/// assert!(filter(&SPEC, Vec::new(), Filter::Slow).is_empty());
/// ```
pub fn filter(spec: &EndpointSpec, mut requests: Vec<RecentRequest>, show: Filter) -> Vec<RecentRequest> {
    requests.retain(|r| show.shows(spec, r));
    if show == Filter::Slow {
        requests.sort_by_key(|r| std::cmp::Reverse(r.duration));
    }
    requests
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{CallSpec, CallTarget, Method, NodeKind, NodeSpec};
    use crate::timeline::{CallOutcome, CallRecord};

    const fn call(service: &'static str) -> CallSpec {
        CallSpec::new(service, 0, CallTarget::Http { method: Method::Get, path: "/" }, Duration::from_millis(100))
    }
    static SPEC: EndpointSpec = EndpointSpec::new(
        "Two",
        Method::Get,
        "/two",
        Duration::from_millis(500),
        &[],
        &[
            NodeSpec::new("a", "A", &[], &[], NodeKind::Call(call("a"))),
            NodeSpec::new("b", "B", &[0], &[], NodeKind::Call(call("b"))),
        ],
    );

    fn timeline() -> Timeline {
        let ms = Duration::from_millis;
        Timeline::new(
            vec![
                CallRecord::new("a", "a", ms(0), ms(5), CallOutcome::Ok),
                CallRecord::new("b", "b", ms(5), ms(9), CallOutcome::Ok),
            ],
            ms(10),
        )
    }

    fn record(recent: &Recent, id: &str, status: u16, took_ms: u64, at: Instant) {
        let timeline = timeline();
        let served =
            Served::new(&timeline, status, id.as_bytes(), TraceId([7; 16]), at, Duration::from_millis(took_ms));
        recent.record(&SPEC, &served, at);
    }

    fn ids(recent: &Recent, now: Instant) -> Vec<String> {
        recent.requests(&SPEC, now).into_iter().map(|r| r.request_id).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn the_ring_keeps_the_last_and_the_window_keeps_the_slowest_and_failed() {
        let recent = Recent::new(RecentRequests::new(3, 2, 2, Duration::from_secs(60)));
        let start = Instant::now();
        record(&recent, "slow", 200, 900, start);
        record(&recent, "failed", 504, 20, start);
        record(&recent, "slower", 200, 950, start);
        for i in 0..100 {
            record(&recent, &format!("fast-{i}"), 200, 10, start);
        }
        let kept = recent.requests(&SPEC, start);
        let shown: Vec<&str> = kept.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(shown, ["fast-99", "fast-98", "fast-97", "slower", "failed", "slow"]);
        assert_eq!(kept[3].kept, Kept::SLOWEST);
        assert_eq!(kept[4].kept, Kept::FAILED);
        assert_eq!(kept[0].calls.len(), 2);
        assert_eq!(recent.recorded(&SPEC), 103);

        // A slower request replaces the fastest of the slowest.
        record(&recent, "slowest", 200, 2000, start);
        assert!(ids(&recent, start).contains(&"slowest".to_owned()));
        assert!(!ids(&recent, start).contains(&"slow".to_owned()));

        // Past the window, the slowest and failed sets are no longer shown, and the next fast
        // request takes an expired place.
        let later = start + Duration::from_secs(61);
        assert_eq!(ids(&recent, later), ["slowest", "fast-99", "fast-98"]);
        record(&recent, "fast-new", 200, 10, later);
        let kept = recent.requests(&SPEC, later);
        assert!(kept[0].kept.last && kept[0].kept.slowest, "{:?}", kept[0].kept);
    }

    #[tokio::test(start_paused = true)]
    async fn off_records_nothing_and_allocates_nothing() {
        let recent = Recent::new(RecentRequests::OFF);
        record(&recent, "r", 200, 1, Instant::now());
        assert!(ids(&recent, Instant::now()).is_empty());
        assert_eq!(recent.memory_bytes(), 0);
    }

    #[test]
    fn memory_is_fixed_per_endpoint() {
        let recent = Recent::new(RecentRequests::new(4, 1, 1, Duration::from_secs(1)));
        let now = Instant::now();
        record(&recent, "r", 200, 1, now);
        let after_one = recent.memory_bytes();
        for i in 0..1000 {
            record(&recent, &format!("r-{i}"), if i % 3 == 0 { 502 } else { 200 }, i, now);
        }
        assert_eq!(recent.memory_bytes(), after_one);
        assert_eq!(recent.store_bytes(&SPEC), 6 * Recent::entry_bytes(&SPEC));
        // At most 4 + 1 + 1 (one request may be kept by several sets, and is then shown once).
        let shown = recent.requests(&SPEC, now).len();
        assert!((4..=6).contains(&shown), "{shown}");
    }

    /// a → {b, c}; the deadline (100 ms) cut `b` while `c` had finished: the path is a → b, and
    /// the request missed its target during `b`.
    #[test]
    fn a_request_cut_by_its_deadline_missed_its_target_during_the_call_in_flight() {
        static ABC: EndpointSpec = EndpointSpec::new(
            "Abc",
            Method::Get,
            "/abc",
            Duration::from_millis(100),
            &[],
            &[
                NodeSpec::new("a", "A", &[], &[], NodeKind::Call(call("a"))),
                NodeSpec::new("b", "B", &[0], &[], NodeKind::Call(call("b"))),
                NodeSpec::new("sum", "u8", &[0], &[], NodeKind::Compute { expr: "a + 1" }),
                NodeSpec::new("c", "C", &[2], &[], NodeKind::Call(call("c"))),
            ],
        );
        let ms = Duration::from_millis;
        let timeline = Timeline::new(
            vec![
                CallRecord::new("a", "a", ms(0), ms(30), CallOutcome::Ok),
                CallRecord::new("c", "c", ms(30), ms(50), CallOutcome::Ok),
                CallRecord::new("b", "b", ms(30), ms(100), CallOutcome::Cancelled),
            ],
            ms(100),
        );
        let recent = Recent::new(RecentRequests::DEFAULT);
        let now = Instant::now();
        recent.record(&ABC, &Served::new(&timeline, 504, b"cut", TraceId([1; 16]), now, ms(101)), now);
        let request = &recent.requests(&ABC, now)[0];
        let analysis = analyse(&ABC, request);
        let path: Vec<&str> = analysis.critical_path.iter().map(|&i| request.calls[i].call).collect();
        assert_eq!(path, ["a", "b"]);
        assert!(analysis.missed);
        assert_eq!(analysis.missed_during.map(|i| request.calls[i].call), Some("b"));
        assert!(Filter::Slow.shows(&ABC, request), "a missed target counts as slow");

        // `c` waits for `a` through the computed `sum`: cut by a failure of `c`, `b` cancelled at
        // the same instant, the path ends on `c`, the call that failed.
        let failed = CallOutcome::Failed(crate::error::CallErrorKind::Status);
        let timeline = Timeline::new(
            vec![
                CallRecord::new("a", "a", ms(0), ms(30), CallOutcome::Ok),
                CallRecord::new("c", "c", ms(30), ms(40), failed),
                CallRecord::new("b", "b", ms(30), ms(40), CallOutcome::Cancelled),
            ],
            ms(40),
        );
        recent.record(&ABC, &Served::new(&timeline, 502, b"failed", TraceId([1; 16]), now, ms(41)), now);
        let request = &recent.requests(&ABC, now)[0];
        let analysis = analyse(&ABC, request);
        let path: Vec<&str> = analysis.critical_path.iter().map(|&i| request.calls[i].call).collect();
        assert_eq!(path, ["a", "c"]);
        assert!(!analysis.missed && analysis.missed_during.is_none());
    }

    #[test]
    fn a_long_request_id_is_kept_to_the_routers_limit() {
        let recent = Recent::new(RecentRequests::DEFAULT);
        let id = "x".repeat(250);
        record(&recent, &id, 200, 1, Instant::now());
        assert_eq!(ids(&recent, Instant::now())[0].len(), 200);
    }
}
