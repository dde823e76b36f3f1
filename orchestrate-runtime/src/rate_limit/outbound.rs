//! A service's outbound limit: at most so many calls per period from this instance (parallel
//! fan-out multiplies a BFF's load on a downstream service; this caps it).
//!
//! Over the limit a call is *shed* ([`CallErrorKind::RateLimited`]: 503 `OVERLOADED` when it is
//! required, the service not named as failed, its breaker not told), or, with `wait`, waits for
//! its turn when the turn comes before the call's deadline.

use super::memory::Direct;
use crate::error::{CallError, CallErrorKind};
use orchestrate_core::policy::rate_limit::Outbound;
use tokio::time::Instant;

/// The outbound limit of one service.
///
/// ```
/// use orchestrate_runtime::rate_limit::OutboundLimiter;
/// use orchestrate_runtime::{Outbound, Rate};
/// use std::time::Duration;
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let limiter = OutboundLimiter::new(Outbound::new(Rate::new(1, Duration::from_secs(1))));
/// let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
/// assert!(limiter.admit(deadline).await.is_ok());
/// assert!(limiter.admit(deadline).await.unwrap_err().kind().is_shed());
/// # });
/// ```
#[derive(Debug)]
pub struct OutboundLimiter {
    limit: Direct,
    wait: bool,
}

impl OutboundLimiter {
    /// A limiter of `limit`.
    pub fn new(limit: Outbound) -> Self {
        Self { limit: Direct::new(limit.rate), wait: limit.wait }
    }

    /// Admits one call that must be done by `deadline`: at once, after waiting for its turn
    /// (when the limit waits and the turn comes before `deadline`), or not.
    ///
    /// # Errors
    ///
    /// [`CallErrorKind::RateLimited`] when the call may not be made.
    pub async fn admit(&self, deadline: Instant) -> Result<(), CallError> {
        loop {
            let Some(wait) = self.limit.check() else { return Ok(()) };
            let turn = Instant::now() + wait;
            if !self.wait || turn >= deadline {
                return Err(CallError::new(CallErrorKind::RateLimited));
            }
            tokio::time::sleep_until(turn).await;
        }
    }
}
