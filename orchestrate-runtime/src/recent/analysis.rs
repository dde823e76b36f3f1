//! Why a kept request took as long as it did: its critical path (the chain of calls that ended
//! last, each waiting for the one before), the share of the request that path accounts for, and,
//! when the request missed the endpoint's target, the call on that path during which it did.

use super::view::RecentRequest;
use crate::spec::{EndpointSpec, NodeKind};
use crate::timeline::Ending;
use std::time::Duration;

/// Where an endpoint's target comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TargetSource {
    /// The endpoint's `timeout`: the request missed it when the deadline cut it.
    Timeout,
    /// The `p99` of the endpoint's service-level objective (`slo(p99 = "300ms")`): the request
    /// missed it when it took longer.
    Slo,
}

impl TargetSource {
    /// How the views name it: `timeout` or `slo`.
    ///
    /// ```
    /// assert_eq!(orchestrate_runtime::recent::TargetSource::Timeout.as_str(), "timeout");
    /// assert_eq!(orchestrate_runtime::recent::TargetSource::Slo.as_str(), "slo");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Slo => "slo",
        }
    }
}

/// The time a request of an endpoint is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Target {
    /// The longest a request may take.
    pub limit: Duration,
    /// Where the limit comes from.
    pub source: TargetSource,
}

/// The target of `spec`'s requests: the `p99` of its service-level objective when it declares
/// one (`#[endpoint(.., slo(p99 = "300ms"))]`), else its `timeout`.
///
/// This is the one place that decides it; every view (the waterfall's target line, "missed its
/// target during `tax`", `requests.json`'s `missedTarget`) follows.
///
/// ```
/// use orchestrate_runtime::recent::{TargetSource, target};
/// use orchestrate_runtime::{EndpointSpec, Method, Slo};
/// use std::time::Duration;
/// static EMPTY: EndpointSpec = EndpointSpec::new("Empty", Method::Get, "/", Duration::from_millis(300), &[], &[]);
/// let empty = target(&EMPTY);
/// assert_eq!((empty.limit, empty.source), (Duration::from_millis(300), TargetSource::Timeout));
///
/// static FAST: EndpointSpec = EndpointSpec::new("Fast", Method::Get, "/", Duration::from_secs(2), &[], &[])
///     .with_slo(Slo::new().with_p99(Duration::from_millis(100)));
/// assert_eq!(target(&FAST).limit, Duration::from_millis(100));
/// assert_eq!(target(&FAST).source, TargetSource::Slo);
/// ```
pub fn target(spec: &EndpointSpec) -> Target {
    match spec.slo.and_then(|slo| slo.p99) {
        Some(p99) => Target { limit: p99, source: TargetSource::Slo },
        None => Target { limit: spec.timeout, source: TargetSource::Timeout },
    }
}

impl Target {
    /// Whether a request that took `took` missed it: the deadline cuts a request exactly at its
    /// `timeout`, so reaching it is missing it; an objective is missed by going over.
    ///
    /// ```
    /// use orchestrate_runtime::recent::target;
    /// use orchestrate_runtime::{EndpointSpec, Method, Slo};
    /// use std::time::Duration;
    /// static FAST: EndpointSpec = EndpointSpec::new("Fast", Method::Get, "/", Duration::from_secs(2), &[], &[])
    ///     .with_slo(Slo::new().with_p99(Duration::from_millis(100)));
    /// assert!(!target(&FAST).missed_by(Duration::from_millis(100)));
    /// assert!(target(&FAST).missed_by(Duration::from_millis(101)));
    /// ```
    pub fn missed_by(&self, took: Duration) -> bool {
        match self.source {
            TargetSource::Timeout => took >= self.limit,
            TargetSource::Slo => took > self.limit,
        }
    }
}

/// What [`analyse`] reads off one request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Analysis {
    /// The critical path: positions in [`RecentRequest::calls`], first call first.
    pub critical_path: Vec<usize>,
    /// The time the calls on the critical path took, added up.
    pub critical_time: Duration,
    /// `critical_time` as a share of the request's graph time (0 to 1).
    pub critical_share: f64,
    /// The endpoint's target.
    pub target: Target,
    /// Whether the request took longer than the target.
    pub missed: bool,
    /// When it did: the call on the critical path that was running when the target passed
    /// (a position in [`RecentRequest::calls`]); `None` when no call was (the time went
    /// elsewhere) or the target was met.
    pub missed_during: Option<usize>,
}

/// The critical path of `request` (of endpoint `spec`), its share of the request and whether and
/// where the request missed the endpoint's [`target`].
///
/// The path ends at the call that ended last (of calls that ended together, a call that finished
/// rather than one cancelled with the request, then the one that started first, which ran the
/// longest), and each call before it is the dependency that finished last, the one it waited for.
/// Dependencies through computed fields count: a call using a computed field waits for the calls
/// that field uses.
///
/// ```
/// # use orchestrate_runtime::recent::{Recent, RecentRequests, Served, analyse};
/// # use orchestrate_runtime::{CallOutcome, CallRecord, CallSpec, CallTarget, EndpointSpec, Method, NodeKind, NodeSpec, Timeline};
/// # use orchestrate_runtime::telemetry::TraceId;
/// # use std::time::Duration;
/// # use tokio::time::Instant;
/// # const fn call(service: &'static str) -> CallSpec {
/// #     CallSpec::new(service, 0, CallTarget::Http { method: Method::Get, path: "/" }, Duration::from_millis(100))
/// # }
/// // a → b, a → c: `c` ends last, so the path is a → c.
/// static SPEC: EndpointSpec = EndpointSpec::new("Abc", Method::Get, "/abc", Duration::from_millis(500), &[], &[
///     NodeSpec::new("a", "A", &[], &[], NodeKind::Call(call("a"))),
///     NodeSpec::new("b", "B", &[0], &[], NodeKind::Call(call("b"))),
///     NodeSpec::new("c", "C", &[0], &[], NodeKind::Call(call("c"))),
/// ]);
/// let ms = Duration::from_millis;
/// let record = |call, start, end| CallRecord::new(call, call, ms(start), ms(end), CallOutcome::Ok);
/// let timeline = Timeline::new(vec![record("a", 0, 40), record("b", 40, 60), record("c", 40, 90)], ms(100));
/// let recent = Recent::new(RecentRequests::DEFAULT);
/// let now = Instant::now();
/// recent.record(&SPEC, &Served::new(&timeline, 200, b"r-1", TraceId([1; 16]), now, ms(100)), now);
/// let request = &recent.requests(&SPEC, now)[0];
/// let analysis = analyse(&SPEC, request);
/// let path: Vec<&str> = analysis.critical_path.iter().map(|&i| request.calls[i].call).collect();
/// assert_eq!(path, ["a", "c"]);
/// assert_eq!(analysis.critical_time, ms(90));
/// assert!((analysis.critical_share - 0.9).abs() < 1e-9);
/// assert!(!analysis.missed);
/// ```
pub fn analyse(spec: &EndpointSpec, request: &RecentRequest) -> Analysis {
    let target = target(spec);
    let calls = &request.calls;
    let waits_for = call_dependencies(spec);
    let mut path = Vec::new();
    // The last to end: later end, then finished over cancelled, then earlier start.
    let last = (0..calls.len()).max_by(|&a, &b| {
        let (a, b) = (&calls[a], &calls[b]);
        a.end
            .cmp(&b.end)
            .then((a.ending != Ending::Cancelled).cmp(&(b.ending != Ending::Cancelled)))
            .then(b.start.cmp(&a.start))
    });
    let mut at = last;
    while let Some(i) = at {
        path.push(i);
        let deps = waits_for.get(calls[i].node).copied().unwrap_or(0);
        at = (0..calls.len())
            .filter(|&j| calls[j].node < 64 && deps & (1 << calls[j].node) != 0 && !path.contains(&j))
            .max_by(|&a, &b| calls[a].end.cmp(&calls[b].end));
    }
    path.reverse();
    let critical_time: Duration = path.iter().map(|&i| calls[i].duration()).sum();
    let critical_share = if request.graph.is_zero() {
        0.0
    } else {
        (critical_time.as_secs_f64() / request.graph.as_secs_f64()).min(1.0)
    };
    let missed = target.missed_by(request.duration) || target.missed_by(request.graph);
    let missed_during = if missed {
        path.iter().copied().find(|&i| calls[i].start <= target.limit && target.limit <= calls[i].end)
    } else {
        None
    };
    Analysis { critical_path: path, critical_time, critical_share, target, missed, missed_during }
}

/// For each node, the call nodes it waits for (a bit mask), through computed fields.
fn call_dependencies(spec: &EndpointSpec) -> Vec<u64> {
    let mut masks: Vec<u64> = Vec::with_capacity(spec.nodes.len());
    // Nodes are in topological order: a dependency's mask is known before its dependents'.
    for node in spec.nodes {
        let mut mask = 0u64;
        for &dep in node.deps.iter().filter(|&&d| d < masks.len() && d < 64) {
            match spec.nodes[dep].kind {
                NodeKind::Call(_) => mask |= 1 << dep,
                NodeKind::Compute { .. } => mask |= masks[dep],
            }
        }
        masks.push(mask);
    }
    masks
}
