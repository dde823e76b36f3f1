//! Canary versions of an endpoint: which version of a route answers a request, what each
//! version did over the last window, and the automatic rollback of a canary that does worse
//! than the stable version.
//!
//! # Declaring
//!
//! ```text
//! #[endpoint(POST "/checkout/summary", timeout = "2s")]                       // stable
//! pub struct Summary { .. }
//!
//! #[endpoint(POST "/checkout/summary", timeout = "2s",
//!            canary(version = "v2", weight = 5, key = "header:x-user-id"))]   // 5% of the users
//! pub struct SummaryV2 { .. }
//! ```
//!
//! The grammar, defaults and messages are [`orchestrate_core::policy::canary`]'s; `#[api]`
//! refuses two unversioned endpoints on one route, a canary without a stable version, two
//! canaries with one version and weights adding up to more than 100.
//!
//! # Assignment
//!
//! A request carrying `x-orchestrate-version: v2` (or `stable`) is served by that version, rolled
//! back or not (a name no version has is ignored). Otherwise each canary hashes its `key` (the
//! verified token's `sub`, a header, or the `x-request-id`) with the route into one of 10 000
//! slots (SHA-256, so the same key lands in the same slot on every instance and every release);
//! the canaries of a route own consecutive ranges of `weight × 100` slots, the stable version the
//! rest. A request without the key's value (no token, no header, no request id) is placed at
//! random. The response names the version that answered in `x-orchestrate-version`.
//!
//! # Rollback
//!
//! Every version counts its requests, its server errors (5xx) and its latencies (a histogram of
//! 43 buckets from 1 ms to 60 s, over a bucketed sliding window of [`Rollback::window`]). After
//! each of a canary's requests, once both it and the stable version have at least
//! `min_requests` in the window, the canary is rolled back when its error rate is more than
//! `error_margin` points above the stable one's, or its p99 more than `p99_margin` above. Its
//! weight is then 0 until the process restarts: the reason is logged (`warn`), counted in
//! `orchestrate_canary_rollbacks_total{endpoint, version}` and shown on `/health` (`canaries`)
//! and `/_orchestrate/canaries.json`.
//!
//! Written here rather than taken from a crate: the assignment is a hash and a range, the window
//! is the runtime's own bucketed sliding window and the rule is two comparisons; no crate does
//! canary judgement inside a process.

use crate::spec::EndpointSpec;
use crate::telemetry::metrics;
use crate::window::Window;
use orchestrate_core::policy::{CanaryKey, CanaryOverride, CanarySettings, Rollback};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

pub use orchestrate_core::policy::canary::{STABLE, VERSION_HEADER};

/// The slots a key hashes into; a weight of 1% is 100 of them.
const SLOTS: u64 = 10_000;

/// Upper bounds of the latency buckets, in milliseconds (the last bucket holds the rest).
const BOUNDS_MS: [u64; 42] = [
    1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400, 500, 600, 800,
    1_000, 1_200, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 6_000, 8_000, 10_000, 15_000, 20_000, 30_000, 60_000,
];
/// Requests, server errors, then one counter per latency bucket.
const COUNTERS: usize = 2 + BOUNDS_MS.len() + 1;

/// The canary routes of a runtime and the configuration file's changes to their weights and
/// rollback rules (`[canary.<Endpoint>]`).
///
/// ```
/// use orchestrate_runtime::Runtime;
/// let runtime = Runtime::builder(&[]).read_env(false).build().unwrap();
/// assert!(runtime.canaries().routes().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Canaries {
    overrides: CanarySettings,
    routes: Mutex<Vec<Versions>>,
}

impl Canaries {
    pub(crate) fn new(overrides: CanarySettings) -> Self {
        Self { overrides, routes: Mutex::new(Vec::new()) }
    }

    /// Every route with versions whose router was built on this runtime.
    pub fn routes(&self) -> Vec<Versions> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The report of every canary of every route, for `/health`.
    pub fn report(&self) -> Vec<CanaryReport> {
        self.routes().iter().flat_map(Versions::report).collect()
    }

    fn change_of(&self, endpoint: &str) -> Option<&CanaryOverride> {
        self.overrides.iter().find(|(name, _)| name == endpoint).map(|(_, change)| change)
    }
}

/// The versions of one route: the stable one (index 0) and its canaries, with their state.
/// Made once by the generated `router()`; cloning shares it.
///
/// ```
/// use orchestrate_runtime::canary::{Canaries, Versions};
/// use orchestrate_runtime::{Canary, CanaryKey, EndpointSpec, Method, Rollback};
/// use std::time::Duration;
/// static STABLE: EndpointSpec = EndpointSpec::new("Ping", Method::Get, "/ping", Duration::from_secs(1), &[], &[]);
/// static V2: EndpointSpec = EndpointSpec::new("PingV2", Method::Get, "/ping", Duration::from_secs(1), &[], &[])
///     .with_canary(Canary::new("v2", 30, CanaryKey::RequestId, Rollback::DEFAULT));
/// let versions = Versions::new(&Canaries::default(), &[&STABLE, &V2]);
/// assert_eq!(versions.forced(b"v2"), Some(1));
/// let key = |_: &CanaryKey| Some(b"user-7".to_vec());
/// assert_eq!(versions.pick(key), versions.pick(key)); // the same key, the same version
/// ```
#[derive(Debug, Clone)]
pub struct Versions {
    inner: Arc<Group>,
}

#[derive(Debug)]
struct Group {
    /// `POST /checkout/summary`: what the slots are hashed with.
    route: String,
    versions: Box<[Version]>,
}

#[derive(Debug)]
struct Version {
    spec: &'static EndpointSpec,
    /// The canary's weight and rule after the file's changes (`None` for the stable version).
    canary: Option<(u32, CanaryKey, Rollback)>,
    /// The slots `[start, end)` it owns while not rolled back.
    slots: (u64, u64),
    rolled_back: AtomicBool,
    reason: Mutex<Option<String>>,
    window: Mutex<Window<COUNTERS>>,
}

impl Versions {
    /// The versions of one route: `specs` are the endpoints of one method and path (the one
    /// without `canary(..)` is the stable version), with the file's changes `canaries` holds; the
    /// route is registered there for `/health`. Canaries whose changed weights would add up to
    /// more than 100 keep their declared ones (the runtime builder refuses such a file when it
    /// knows the endpoints).
    pub fn new(canaries: &Canaries, specs: &[&'static EndpointSpec]) -> Self {
        let mut ordered: Vec<&'static EndpointSpec> = specs.iter().copied().filter(|s| s.canary.is_none()).collect();
        ordered.extend(specs.iter().copied().filter(|s| s.canary.is_some()));
        let changed = |spec: &EndpointSpec| {
            let canary = spec.canary?;
            Some(canaries.change_of(spec.name).map_or(canary, |change| change.apply(canary)))
        };
        let total: u32 = ordered.iter().filter_map(|s| changed(s)).map(|c| c.weight).sum();
        let use_changes = total <= 100;
        if !use_changes {
            tracing::error!(
                route = ordered.first().map_or("", |s| s.route),
                "{}; the declared weights are kept",
                orchestrate_core::policy::canary::weights_over(ordered.first().map_or("", |s| s.route), total)
            );
        }
        let window_of = |rollback: Option<Rollback>| Window::new(rollback.unwrap_or_default().window);
        let mut start = 0;
        let mut versions = Vec::with_capacity(ordered.len());
        for spec in &ordered {
            let canary = if use_changes { changed(spec) } else { spec.canary };
            let canary = canary.map(|c| (c.weight, c.key, c.rollback));
            let slots = match canary {
                Some((weight, ..)) => {
                    let end = start + u64::from(weight) * (SLOTS / 100);
                    let slots = (start, end.min(SLOTS));
                    start = slots.1;
                    slots
                }
                None => (0, 0),
            };
            // Every version is measured over the window of the route's (first) canary.
            let rule = ordered.iter().find_map(|s| s.canary).map(|c| c.rollback);
            versions.push(Version {
                spec,
                canary,
                slots,
                rolled_back: AtomicBool::new(false),
                reason: Mutex::new(None),
                window: Mutex::new(window_of(canary.map(|c| c.2).or(rule))),
            });
        }
        let route = ordered.first().map_or_else(String::new, |s| format!("{} {}", s.method.as_str(), s.route));
        let versions = Self { inner: Arc::new(Group { route, versions: versions.into_boxed_slice() }) };
        canaries.routes.lock().unwrap_or_else(PoisonError::into_inner).push(versions.clone());
        versions
    }

    /// The route, `POST /checkout/summary`.
    pub fn route(&self) -> &str {
        &self.inner.route
    }

    /// The spec of version `index` (0 is the stable version).
    pub fn spec(&self, index: usize) -> Option<&'static EndpointSpec> {
        self.inner.versions.get(index).map(|v| v.spec)
    }

    /// Whether some canary assigns by the verified token's subject.
    pub fn by_subject(&self) -> bool {
        self.inner.versions.iter().any(|v| matches!(v.canary, Some((_, CanaryKey::Subject, _))))
    }

    /// The version an `x-orchestrate-version` value names, if one does.
    pub fn forced(&self, name: &[u8]) -> Option<usize> {
        self.inner.versions.iter().position(|v| v.spec.version().as_bytes() == name)
    }

    /// The version for a request whose key values `key_of` gives (`None`: the request lacks it,
    /// and is placed at random).
    pub fn pick(&self, key_of: impl Fn(&CanaryKey) -> Option<Vec<u8>>) -> usize {
        let mut random = None;
        for (index, version) in self.inner.versions.iter().enumerate() {
            let Some((_, key, _)) = &version.canary else { continue };
            if version.slots.0 == version.slots.1 || version.rolled_back.load(Ordering::Relaxed) {
                continue;
            }
            let slot = match key_of(key) {
                Some(value) => self.slot(&value),
                None => *random.get_or_insert_with(|| fastrand::u64(..SLOTS)),
            };
            if (version.slots.0..version.slots.1).contains(&slot) {
                return index;
            }
        }
        0
    }

    /// The slot of a key value on this route.
    fn slot(&self, value: &[u8]) -> u64 {
        let mut hasher = Sha256::new();
        hasher.update(self.inner.route.as_bytes());
        hasher.update([0]);
        hasher.update(value);
        let digest = hasher.finalize();
        let mut first = [0; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % SLOTS
    }

    /// Version `index` answered `status` after `elapsed`; after a canary's answer, checks whether
    /// it must be rolled back.
    pub fn record(&self, index: usize, status: u16, elapsed: Duration) {
        let Some(version) = self.inner.versions.get(index) else { return };
        let now = Instant::now();
        {
            let mut window = version.window.lock().unwrap_or_else(PoisonError::into_inner);
            window.add(now, 0, 1);
            if status >= 500 {
                window.add(now, 1, 1);
            }
            window.add(now, 2 + bucket(elapsed), 1);
        }
        if version.canary.is_some() && !version.rolled_back.load(Ordering::Relaxed) {
            self.judge(version, now);
        }
    }

    fn judge(&self, canary: &Version, now: Instant) {
        let Some((_, _, rule)) = canary.canary else { return };
        let Some(stable) = self.inner.versions.first() else { return };
        let ours = Stats::of(canary, now);
        let theirs = Stats::of(stable, now);
        let min = u64::from(rule.min_requests);
        if ours.requests < min || theirs.requests < min {
            return;
        }
        let margin = f64::from(rule.error_margin_percent) / 100.0;
        let reason = if ours.error_rate() > theirs.error_rate() + margin {
            format!(
                "error rate {:.1}% against the stable version's {:.1}% (margin {}%) over {}",
                ours.error_rate() * 100.0,
                theirs.error_rate() * 100.0,
                rule.error_margin_percent,
                orchestrate_core::duration::format_duration(rule.window)
            )
        } else if ours.p99 > theirs.p99 + rule.p99_margin {
            format!(
                "p99 {} against the stable version's {} (margin {}) over {}",
                orchestrate_core::duration::format_duration(ours.p99),
                orchestrate_core::duration::format_duration(theirs.p99),
                orchestrate_core::duration::format_duration(rule.p99_margin),
                orchestrate_core::duration::format_duration(rule.window)
            )
        } else {
            return;
        };
        if canary.rolled_back.swap(true, Ordering::Relaxed) {
            return;
        }
        let (endpoint, version) = (canary.spec.name, canary.spec.version());
        tracing::warn!(endpoint, version, route = %self.inner.route, "canary rolled back: {reason}; its weight is now 0");
        metrics::canary_rollback(endpoint, version);
        *canary.reason.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    /// Each canary's state.
    pub fn report(&self) -> Vec<CanaryReport> {
        let now = Instant::now();
        self.inner
            .versions
            .iter()
            .filter_map(|v| {
                let (weight, key, _) = v.canary?;
                let rolled_back = v.rolled_back.load(Ordering::Relaxed);
                let stats = Stats::of(v, now);
                Some(CanaryReport {
                    route: self.inner.route.clone(),
                    endpoint: v.spec.name,
                    version: v.spec.version(),
                    key: key.to_string(),
                    weight: if rolled_back { 0 } else { weight },
                    configured_weight: weight,
                    rolled_back,
                    reason: v.reason.lock().unwrap_or_else(PoisonError::into_inner).clone(),
                    recent_requests: stats.requests,
                    recent_errors: stats.errors,
                })
            })
            .collect()
    }
}

/// What one version did over the window.
struct Stats {
    requests: u64,
    errors: u64,
    p99: Duration,
}

impl Stats {
    fn of(version: &Version, now: Instant) -> Self {
        let sums = version.window.lock().unwrap_or_else(PoisonError::into_inner).sums(now);
        let (requests, errors) = (sums[0], sums[1]);
        // The smallest bucket bound under which 99% of the requests ended.
        let needed = (requests * 99).div_ceil(100);
        let mut seen = 0;
        let mut p99 = Duration::from_millis(BOUNDS_MS[BOUNDS_MS.len() - 1] * 2);
        for (i, count) in sums[2..].iter().enumerate() {
            seen += count;
            if seen >= needed && needed > 0 {
                p99 = BOUNDS_MS.get(i).map_or(p99, |ms| Duration::from_millis(*ms));
                break;
            }
        }
        Self { requests, errors, p99: if requests == 0 { Duration::ZERO } else { p99 } }
    }

    fn error_rate(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.errors as f64 / self.requests as f64 }
    }
}

/// The latency bucket of `elapsed`.
fn bucket(elapsed: Duration) -> usize {
    let ms = u64::try_from(elapsed.as_micros().div_ceil(1_000)).unwrap_or(u64::MAX);
    BOUNDS_MS.iter().position(|bound| ms <= *bound).unwrap_or(BOUNDS_MS.len())
}

/// One canary in `/health` and `/_orchestrate/canaries.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryReport {
    /// `POST /checkout/summary`.
    pub route: String,
    /// The canary endpoint's name.
    pub endpoint: &'static str,
    /// Its version.
    pub version: &'static str,
    /// What keeps a user on one version (`sub`, `header:x-user-id`, `request_id`).
    pub key: String,
    /// The percentage of the route's requests it gets now (0 once rolled back).
    pub weight: u32,
    /// The percentage declared (after the configuration file's change).
    pub configured_weight: u32,
    /// Whether it was rolled back.
    pub rolled_back: bool,
    /// Why it was rolled back.
    pub reason: Option<String>,
    /// Its requests over the rollback window.
    pub recent_requests: u64,
    /// Its server errors (5xx) over the rollback window.
    pub recent_errors: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Method;
    use orchestrate_core::policy::Canary;

    static STABLE_SPEC: EndpointSpec =
        EndpointSpec::new("Summary", Method::Post, "/summary", Duration::from_secs(1), &[], &[]);
    static V2: EndpointSpec =
        EndpointSpec::new("SummaryV2", Method::Post, "/summary", Duration::from_secs(1), &[], &[]).with_canary(
            Canary::new(
                "v2",
                5,
                CanaryKey::Header("x-user-id"),
                Rollback::DEFAULT.with_margins(5, Duration::from_millis(100)).with_window(Duration::from_secs(10), 20),
            ),
        );
    static V3: EndpointSpec =
        EndpointSpec::new("SummaryV3", Method::Post, "/summary", Duration::from_secs(1), &[], &[])
            .with_canary(Canary::new("v3", 10, CanaryKey::Header("x-user-id"), Rollback::DEFAULT));

    fn share(versions: &Versions, users: u32) -> [u32; 3] {
        let mut counts = [0; 3];
        for user in 0..users {
            let key = user.to_string().into_bytes();
            counts[versions.pick(|_| Some(key.clone()))] += 1;
        }
        counts
    }

    #[test]
    fn ten_thousand_users_split_by_the_weights() {
        let versions = Versions::new(&Canaries::default(), &[&V3, &STABLE_SPEC, &V2]);
        assert_eq!(versions.spec(0).map(|s| s.name), Some("Summary"));
        let [stable, v3, v2] = share(&versions, 10_000);
        assert!((400..=600).contains(&v2), "v2 got {v2} of 10 000");
        assert!((900..=1_100).contains(&v3), "v3 got {v3} of 10 000");
        assert_eq!(stable + v2 + v3, 10_000);
    }

    #[test]
    fn the_file_changes_a_weight_by_the_endpoints_name() {
        let change = CanaryOverride { weight: Some(0), ..CanaryOverride::default() };
        let canaries = Canaries::new(vec![("SummaryV2".to_owned(), change)]);
        let versions = Versions::new(&canaries, &[&STABLE_SPEC, &V2]);
        assert_eq!(share(&versions, 2_000), [2_000, 0, 0]);
        assert_eq!(canaries.report()[0].configured_weight, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slower_canary_is_rolled_back_and_its_users_go_to_stable() {
        let versions = Versions::new(&Canaries::default(), &[&STABLE_SPEC, &V2]);
        for _ in 0..20 {
            versions.record(0, 200, Duration::from_millis(40));
        }
        for _ in 0..19 {
            versions.record(1, 200, Duration::from_millis(400));
        }
        assert!(!versions.report()[0].rolled_back, "judged before 20 requests");
        versions.record(1, 200, Duration::from_millis(400));
        let report = &versions.report()[0];
        assert!(report.rolled_back);
        assert_eq!(report.weight, 0);
        assert_eq!(
            report.reason.as_deref(),
            Some("p99 400ms against the stable version's 40ms (margin 100ms) over 10s")
        );
        assert_eq!(share(&versions, 1_000)[0], 1_000);
        // Forcing still reaches it.
        assert_eq!(versions.forced(b"v2"), Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn errors_within_the_margin_keep_the_canary() {
        let versions = Versions::new(&Canaries::default(), &[&STABLE_SPEC, &V2]);
        for i in 0..100 {
            versions.record(0, if i < 2 { 502 } else { 200 }, Duration::from_millis(10));
        }
        for i in 0..100 {
            versions.record(1, if i >= 94 { 502 } else { 200 }, Duration::from_millis(10));
        }
        assert!(!versions.report()[0].rolled_back, "6% against 2% is within 5 points");
        // Old requests leave the window: 20 new failures are judged against what is recent.
        tokio::time::advance(Duration::from_secs(11)).await;
        for _ in 0..20 {
            versions.record(0, 200, Duration::from_millis(10));
        }
        for _ in 0..20 {
            versions.record(1, 503, Duration::from_millis(10));
        }
        assert!(versions.report()[0].rolled_back);
    }

    #[test]
    fn latencies_fall_in_their_buckets() {
        assert_eq!(bucket(Duration::from_micros(900)), 0);
        assert_eq!(bucket(Duration::from_millis(1)), 0);
        assert_eq!(bucket(Duration::from_millis(41)), 14);
        assert_eq!(bucket(Duration::from_secs(120)), BOUNDS_MS.len());
    }
}
