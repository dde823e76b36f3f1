//! The retry budget of one service: retries may be at most a share of its calls.

use crate::service::RetryBudget;
use crate::window::Window;
use std::sync::Mutex;
use tokio::time::Instant;

const CALLS: usize = 0;
const RETRIES: usize = 1;

/// Counts calls and retries over the budget's sliding window.
///
/// A retry is allowed while `retries × 100 < calls × percent + min_retries × 100` over the
/// window, so with 20% a service gets at most 1.2× its call rate in requests however badly it
/// fails, and a quiet service can still retry `min_retries` times per window.
#[derive(Debug)]
pub(crate) struct Budget {
    policy: RetryBudget,
    window: Mutex<Window<2>>,
}

impl Budget {
    pub(crate) fn new(policy: RetryBudget) -> Self {
        Self { policy, window: Mutex::new(Window::new(policy.within)) }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window<2>> {
        self.window.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a call (its first attempt) made at `now` (the caller's clock read, shared with the
    /// other policies of the attempt).
    pub(crate) fn deposit(&self, now: Instant) {
        self.window().add(now, CALLS, 1);
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub(crate) fn withdraw(&self) -> bool {
        let now = Instant::now();
        let mut window = self.window();
        let [calls, retries] = window.sums(now);
        let allowed = u128::from(calls) * u128::from(self.policy.percent) + u128::from(self.policy.min_retries) * 100;
        if u128::from(retries) * 100 >= allowed {
            return false;
        }
        window.add(now, RETRIES, 1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn retries_are_a_share_of_calls_plus_a_floor_per_window() {
        let budget = Budget::new(RetryBudget::new(50, Duration::from_secs(10), 1));
        for _ in 0..4 {
            budget.deposit(Instant::now());
        }
        // 4 calls × 50% + 1 = 3 retries.
        assert!(budget.withdraw() && budget.withdraw() && budget.withdraw());
        assert!(!budget.withdraw());
        // The window moves on: the floor is available again.
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
    }
}
