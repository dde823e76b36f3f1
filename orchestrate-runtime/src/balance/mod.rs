//! Balancing one service's calls over its instances (a base URL that lists several): power of two
//! choices over a peak-EWMA latency estimate with the requests in flight counted, and outlier
//! ejection per instance.
//!
//! Each attempt picks two instances at random among those not ejected (and not the one the
//! call's previous attempt failed on, while another is left) and sends to the one whose cost is
//! lower: `estimate × (in flight + 1)`. The estimate is Finagle's and Linkerd's peak EWMA: a
//! slower answer than the estimate replaces it at once (the peak), a faster one moves it by the
//! weight `1 - e^(-elapsed / decay)`, and between answers it decays towards zero as it is read,
//! so an instance that was slow a while ago gets a request again and is measured anew. An
//! instance with no answer yet costs the policy's `rtt` (30 ms by default).
//!
//! After `failures` failed attempts in a row (5 by default; failures as the breaker counts them:
//! timeouts, connection errors, 5xx) an instance is ejected for `eject_for × its ejection count`
//! (30 s, 60 s, ..), unless that would eject more than `max_ejected` of the instances (half by
//! default; one always stays). The count decays as Envoy's ejection multiplier does: each full
//! `eject_for` an instance spends back in the pool after its last ejection ended takes one off,
//! so an instance that failed once long ago is ejected for 30 s again, not for its history's
//! sum. The service's circuit breaker stays per service.
//!
//! Written by hand rather than with tower's `balance::p2c` + `load::PeakEwma` (whose algorithm
//! this follows): tower's balancer chooses the endpoint inside `poll_ready`, so the retry of a
//! failed attempt cannot ask for another instance than the one that failed, ejection would need
//! a `Discover` stream rebuilt on every change, and the choice would not be known to the call's
//! record; here the client asks for an instance per attempt and says which one to avoid. The
//! module knows nothing of HTTP: instances are positions in the service's list of base URLs.

use orchestrate_core::policy::BalancePolicy;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// The instances of one service and what is known of each.
#[derive(Debug)]
pub(crate) struct Instances {
    policy: BalancePolicy,
    list: Box<[Instance]>,
    /// The random generator's state (xorshift): which two instances are compared.
    seed: AtomicU64,
}

#[derive(Debug)]
struct Instance {
    /// Host and port, for `/health` and `/metrics`.
    host: String,
    pending: AtomicU32,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
struct State {
    /// The latency estimate, in seconds, at `stamp`; `None` before the first answer.
    estimate: Option<f64>,
    stamp: Instant,
    /// Failed attempts in a row.
    failures: u32,
    /// How often it was ejected, less one for each `eject_for` it has been back since.
    ejections: u32,
    ejected_until: Option<Instant>,
    /// From when its time back in the pool counts towards the next decrement of `ejections`.
    decay_from: Instant,
}

/// What `/health` and `/metrics` show of one instance.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct InstanceHealth {
    /// Host and port.
    pub host: String,
    /// The latency estimate now (the policy's `rtt` before any answer).
    pub estimate: Duration,
    /// Attempts in flight.
    pub in_flight: u32,
    /// Whether it is ejected now.
    pub ejected: bool,
    /// How often it was ejected (each `eject_for` back in the pool takes one off).
    pub ejections: u32,
}

/// An attempt under way on an instance: counted in flight until dropped.
#[derive(Debug)]
pub(crate) struct Load<'a> {
    instances: &'a Instances,
    index: usize,
}

impl Instances {
    /// The instances at `hosts`, balanced by `policy`.
    pub(crate) fn new(hosts: Vec<String>, policy: BalancePolicy, now: Instant) -> Self {
        let list = hosts
            .into_iter()
            .map(|host| Instance {
                host,
                pending: AtomicU32::new(0),
                state: Mutex::new(State {
                    estimate: None,
                    stamp: now,
                    failures: 0,
                    ejections: 0,
                    ejected_until: None,
                    decay_from: now,
                }),
            })
            .collect();
        let seed = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8) | 1;
        Self { policy, list, seed: AtomicU64::new(seed) }
    }

    fn random(&self) -> u64 {
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed.store(x, Ordering::Relaxed);
        x
    }

    /// The instance the next attempt goes to, avoiding `avoid` (the instance the call's last
    /// attempt failed on) while another is available.
    pub(crate) fn pick(&self, avoid: Option<usize>, now: Instant) -> usize {
        let mut open: Vec<usize> = (0..self.list.len()).filter(|&i| !self.ejected(i, now)).collect();
        if open.is_empty() {
            open = (0..self.list.len()).collect();
        }
        if open.len() > 1
            && let Some(avoid) = avoid
        {
            open.retain(|&i| i != avoid);
        }
        match open.len() {
            0 => 0,
            1 => open[0],
            n => {
                let r = self.random();
                let a = (r % n as u64) as usize;
                let b = (a + 1 + ((r >> 32) % (n as u64 - 1)) as usize) % n;
                let (a, b) = (open[a], open[b]);
                if self.cost(b, now) < self.cost(a, now) { b } else { a }
            }
        }
    }

    fn ejected(&self, i: usize, now: Instant) -> bool {
        self.state(i).ejected_until.is_some_and(|until| now < until)
    }

    fn state(&self, i: usize) -> State {
        *self.list[i].state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes one ejection off `state` for each full `eject_for` it has been back in the pool.
    fn decay(&self, state: &mut State, now: Instant) {
        if state.ejections == 0 || state.ejected_until.is_some_and(|until| now < until) {
            return;
        }
        let period = self.policy.eject_for.max(Duration::from_millis(1));
        let back = now.saturating_duration_since(state.decay_from);
        let periods = u32::try_from(back.as_nanos() / period.as_nanos()).unwrap_or(u32::MAX);
        let taken = periods.min(state.ejections);
        state.ejections -= taken;
        state.decay_from += period * taken;
    }

    /// The estimate of `i` at `now`, in seconds: decayed towards zero since the last answer.
    fn estimate(&self, i: usize, now: Instant) -> f64 {
        let state = self.state(i);
        match state.estimate {
            None => self.policy.rtt.as_secs_f64(),
            Some(estimate) => estimate * self.weight(now.saturating_duration_since(state.stamp)),
        }
    }

    /// `e^(-elapsed / decay)`.
    fn weight(&self, elapsed: Duration) -> f64 {
        let decay = self.policy.decay.as_secs_f64().max(1e-9);
        (-elapsed.as_secs_f64() / decay).exp()
    }

    fn cost(&self, i: usize, now: Instant) -> f64 {
        let pending = self.list[i].pending.load(Ordering::Relaxed);
        self.estimate(i, now) * f64::from(pending + 1)
    }

    /// An attempt starts on `index`.
    pub(crate) fn start(&self, index: usize) -> Load<'_> {
        self.list[index].pending.fetch_add(1, Ordering::Relaxed);
        Load { instances: self, index }
    }

    /// The attempt on `index` ended after `rtt`: `failed` as the breaker judges it, `None` when
    /// nothing was learned (the caller's own deadline).
    fn observe(&self, index: usize, rtt: Duration, failed: Option<bool>, now: Instant) {
        let ejected_now = (0..self.list.len()).filter(|&i| i != index && self.ejected(i, now)).count();
        let mut state = self.list[index].state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.decay(&mut state, now);
        let rtt = rtt.as_secs_f64();
        state.estimate = Some(match state.estimate {
            None => rtt,
            Some(old) => {
                let w = self.weight(now.saturating_duration_since(state.stamp));
                let old = old * w;
                if rtt > old { rtt } else { old * w + rtt * (1.0 - w) }
            }
        });
        state.stamp = now;
        match failed {
            Some(false) => state.failures = 0,
            Some(true) => {
                state.failures += 1;
                let n = self.list.len();
                let allowed = (n * self.policy.max_ejected_percent as usize / 100).min(n - 1);
                let already = state.ejected_until.is_some_and(|until| now < until);
                if state.failures >= self.policy.failures && !already && ejected_now < allowed {
                    state.ejections += 1;
                    let until = now + self.policy.eject_for * state.ejections;
                    state.ejected_until = Some(until);
                    state.decay_from = until;
                    state.failures = 0;
                    tracing::warn!(
                        instance = %self.list[index].host,
                        ejections = state.ejections,
                        for_s = (self.policy.eject_for * state.ejections).as_secs(),
                        "instance ejected after failures in a row"
                    );
                }
            }
            None => {}
        }
    }

    /// Each instance's host, estimate, calls in flight and ejection.
    pub(crate) fn health(&self, now: Instant) -> Vec<InstanceHealth> {
        (0..self.list.len())
            .map(|i| {
                let state = {
                    let mut state = self.list[i].state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    self.decay(&mut state, now);
                    *state
                };
                InstanceHealth {
                    host: self.list[i].host.clone(),
                    estimate: Duration::from_secs_f64(self.estimate(i, now)),
                    in_flight: self.list[i].pending.load(Ordering::Relaxed),
                    ejected: self.ejected(i, now),
                    ejections: state.ejections,
                }
            })
            .collect()
    }
}

impl Load<'_> {
    /// The attempt ended at `now` after `rtt`; `failed` as in [`Instances::observe`].
    pub(crate) fn finish(self, rtt: Duration, failed: Option<bool>, now: Instant) {
        self.instances.observe(self.index, rtt, failed, now);
    }
}

impl Drop for Load<'_> {
    fn drop(&mut self) {
        self.instances.list[self.index].pending.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> (Instances, Instant) {
        let now = Instant::now();
        (Instances::new(vec!["a:1".into(), "b:1".into(), "c:1".into()], BalancePolicy::DEFAULT, now), now)
    }

    #[test]
    fn a_slower_answer_is_the_estimate_at_once_a_faster_one_moves_it_by_the_decay() {
        let (instances, t0) = three();
        assert_eq!(instances.estimate(0, t0), 0.030, "the default before any answer");
        instances.start(0).finish(Duration::from_millis(10), Some(false), t0);
        instances.start(0).finish(Duration::from_millis(200), Some(false), t0);
        assert!((instances.estimate(0, t0) - 0.2).abs() < 1e-9, "the peak");
        let later = t0 + Duration::from_secs(10);
        instances.start(0).finish(Duration::from_millis(10), Some(false), later);
        // Decayed to 0.2/e, then moved towards 10 ms with weight 1 - 1/e.
        let decayed = 0.2 / std::f64::consts::E;
        let expected = decayed / std::f64::consts::E + 0.010 * (1.0 - 1.0 / std::f64::consts::E);
        assert!((instances.estimate(0, later) - expected).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn the_ejection_count_decays_while_the_instance_stays_back() {
        let (instances, t0) = three();
        let fail_five = |at: Instant| {
            for _ in 0..5 {
                instances.start(1).finish(Duration::from_millis(1), Some(true), at);
            }
        };
        let s = Duration::from_secs;
        fail_five(t0);
        assert!(instances.health(t0 + s(29)).iter().any(|h| h.ejected), "30 s the first time");
        // Failing again as soon as it is back: the count has not decayed, 60 s this time.
        fail_five(t0 + s(30));
        let back = t0 + s(90);
        assert!(instances.health(back - Duration::from_millis(1))[1].ejected);
        assert_eq!(instances.health(back)[1].ejections, 2);
        // Each 30 s back in the pool takes one off.
        tokio::time::advance(s(119)).await;
        assert_eq!(instances.health(Instant::now())[1].ejections, 2, "29 s back");
        tokio::time::advance(s(1)).await;
        assert_eq!(instances.health(Instant::now())[1].ejections, 1, "30 s back");
        tokio::time::advance(s(30)).await;
        assert_eq!(instances.health(Instant::now())[1].ejections, 0, "60 s back");
        // Failing now ejects it for 30 s again, not 90 s.
        let now = Instant::now();
        fail_five(now);
        assert!(instances.health(now + s(29))[1].ejected);
        assert!(!instances.health(now + s(30))[1].ejected, "back after 30 s");
        assert_eq!(instances.health(now + s(30))[1].ejections, 1);
    }

    #[test]
    fn never_more_than_the_share_is_ejected() {
        let (instances, t0) = three();
        for i in [0, 1] {
            for _ in 0..5 {
                instances.start(i).finish(Duration::from_millis(1), Some(true), t0);
            }
        }
        let health = instances.health(t0);
        assert!(health[0].ejected, "5 failures in a row eject the first");
        assert!(!health[1].ejected, "half of three is one: the second stays");
        for _ in 0..100 {
            assert_ne!(instances.pick(None, t0), 0);
        }
    }
}
