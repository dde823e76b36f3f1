//! Hedged attempts: one attempt of a call with `hedge(after = "50ms", max = 1)` sends the same
//! request again when it has not answered after `after` (the `n`-th hedge at `n × after`, at most
//! `max`), to another instance when the service has several, and takes the first success.
//!
//! - A failure does not win over an attempt still running: the hedged attempt fails only when
//!   every request it sent has failed, with the last failure. The losers are dropped when the
//!   winner answers, which cancels their requests.
//! - Hedging happens within one attempt of the retry policy: every request of a hedged attempt
//!   ends at the first one's timeout (and never after the deadline), and the retry policy sees
//!   one attempt, retried (with its own hedges) once every request of it failed.
//! - The circuit breaker, the bulkhead and the service's statistics see one attempt with the
//!   winner's outcome (a hedge takes no place of its own); the balancer sees each request on
//!   its instance, a cancelled loser as neither success nor failure; the retry budget counts
//!   attempts, hedges have their own budget.
//! - The service's hedge budget ([`HedgeBudget`]) caps the hedges at a share of the hedged
//!   attempts over a sliding window: a hedge that is due while it is spent is not sent (and no
//!   further hedge of that attempt), counted as `budget_exhausted`.
//!
//! Hand-written: tower's `hedge` middleware decides by a latency percentile it learns, has no
//! budget shared with a deadline, and would sit below the bulkhead and breaker, which must see
//! one call; the race itself is a `FuturesUnordered` of at most four requests.

use super::{ServiceClient, copy_request};
use crate::error::CallError;
use crate::retry::CallPolicy;
use crate::service::{HedgeBudget, HedgePolicy};
use crate::telemetry;
use crate::window::Window;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::sync::Mutex;
use tokio::time::Instant;

const ATTEMPTS: usize = 0;
const HEDGES: usize = 1;

/// Counts the hedged attempts of one service and their hedges over [`HedgeBudget::WINDOW`].
#[derive(Debug)]
pub(super) struct Budget {
    policy: HedgeBudget,
    window: Mutex<Window<2>>,
}

impl Budget {
    pub(super) fn new(policy: HedgeBudget) -> Self {
        Self { policy, window: Mutex::new(Window::new(HedgeBudget::WINDOW)) }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window<2>> {
        self.window.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a hedged attempt started at `now`.
    fn deposit(&self, now: Instant) {
        self.window().add(now, ATTEMPTS, 1);
    }

    /// Takes one hedge at `now`; `false` when the budget is spent (always with `"0%"`).
    fn withdraw(&self, now: Instant) -> bool {
        if self.policy.percent == 0 {
            return false;
        }
        let mut window = self.window();
        let [attempts, hedges] = window.sums(now);
        let allowed =
            u128::from(attempts) * u128::from(self.policy.percent) + u128::from(HedgeBudget::MIN_HEDGES) * 100;
        if u128::from(hedges) * 100 >= allowed {
            return false;
        }
        window.add(now, HEDGES, 1);
        true
    }
}

/// How one attempt (hedged or not) ended.
#[derive(Debug)]
pub(super) struct Tried {
    pub(super) result: Result<http::Response<Bytes>, CallError>,
    pub(super) status: Option<u16>,
    /// When the request that decided it ended.
    pub(super) ended: Instant,
    /// The instance of that request, when the service has several.
    pub(super) instance: Option<usize>,
    /// Hedges sent.
    pub(super) hedges: u32,
}

impl ServiceClient {
    /// One attempt started at `started` with the hedges of `hedge` (see the module's doc).
    /// `avoid` is an instance the first request should not go to (the one a retry follows).
    pub(super) async fn hedged(
        &self,
        policy: &CallPolicy,
        hedge: &HedgePolicy,
        deadline: Instant,
        started: Instant,
        mut request: http::Request<Bytes>,
        avoid: Option<usize>,
    ) -> Tried {
        let name = self.spec.name;
        let budget = &self.guards.hedges;
        budget.deposit(started);
        // Every request of the attempt ends when the first one's timeout would.
        let end = started.checked_add(policy.timeout).map_or(deadline, |end| end.min(deadline));
        // Request `n` (0 the first, then the hedges) to an instance, timed from `started`.
        let launch = |n: u32, at: Instant, request: http::Request<Bytes>, index: Option<usize>| async move {
            (n, self.attempt_on(policy, deadline, started, at, request, index).await)
        };
        let mut first = copy_request(&request);
        let first_instance = self.pick(avoid, started, &mut first);
        let mut running = FuturesUnordered::new();
        running.push(launch(0, started, first, first_instance));
        let mut sent = 0;
        let mut next = started + hedge.after;
        let mut hedging = true;
        loop {
            let due = hedging && sent < hedge.max && next < end;
            tokio::select! {
                biased;
                Some((n, mut tried)) = running.next() => {
                    if tried.result.is_ok() || running.is_empty() {
                        if tried.result.is_ok() && n > 0 {
                            telemetry::metrics::hedge(name, "won");
                        }
                        tried.hedges = sent;
                        return tried;
                    }
                    tracing::debug!(service = name, request = n, "a hedged request failed; the others go on");
                }
                () = tokio::time::sleep_until(next), if due => {
                    if budget.withdraw(next) {
                        sent += 1;
                        telemetry::metrics::hedge(name, "sent");
                        tracing::debug!(service = name, hedge = sent, "no answer yet; hedging");
                        let mut copy = if sent < hedge.max { copy_request(&request) } else {
                            std::mem::replace(&mut request, http::Request::new(Bytes::new()))
                        };
                        let index = self.pick(first_instance, next, &mut copy);
                        running.push(launch(sent, next, copy, index));
                    } else {
                        telemetry::metrics::hedge(name, "budget_exhausted");
                        tracing::debug!(service = name, "hedge budget spent; not hedging");
                        hedging = false;
                    }
                    next += hedge.after;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn hedges_are_a_share_of_hedged_attempts_plus_a_floor_per_window() {
        let budget = Budget::new(HedgeBudget::new(10));
        let now = Instant::now();
        for _ in 0..50 {
            budget.deposit(now);
        }
        // 50 attempts × 10% + 10 = 15 hedges.
        assert_eq!((0..20).filter(|_| budget.withdraw(now)).count(), 15);
        // The window moves on: the attempts and hedges leave it, the floor is there again.
        let later = now + HedgeBudget::WINDOW;
        assert_eq!((0..20).filter(|_| budget.withdraw(later)).count(), 10);
        let off = Budget::new(HedgeBudget::new(0));
        off.deposit(now);
        assert!(!off.withdraw(now + Duration::from_millis(1)), "0% turns hedging off, floor included");
    }
}
