//! Bulkhead per service: at most so many calls at once; the excess is shed (fails at once).
//!
//! The limit is adaptive by default (`max_in_flight = auto`): it learns from the
//! latency and the timeouts of the service's calls. A fixed limit (`max_in_flight = 48`) is a
//! semaphore. Either way a call that finds no place fails at once with
//! [`CallErrorKind::BulkheadFull`]: the BFF sheds load it cannot carry (503 `OVERLOADED` with
//! `Retry-After` when the call was required), the service is not blamed for it, and its breaker
//! does not count it.
//!
//! Hand-written over `tokio::sync::Semaphore::try_acquire` because tower's `ConcurrencyLimit`
//! queues the excess instead of rejecting it (tower#793), and a queue in front of a slow service
//! is exactly what a bulkhead exists to prevent: the caller's deadline would be spent waiting.
//! The place is held for the whole call, retries and backoff included, so retries of a slow
//! service cannot exceed its share either.

pub(crate) mod adaptive;

use crate::error::{CallError, CallErrorKind};
use crate::service::Concurrency;
use adaptive::Adaptive;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit, TryAcquireError};
use tokio::time::Instant;

/// The bulkhead of one service.
#[derive(Debug)]
pub(crate) enum Bulkhead {
    Fixed { semaphore: Semaphore, max: u32 },
    Adaptive(Adaptive),
}

/// How a call that held a place ended, for the adaptive limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The service answered (any status): its latency is a sample.
    Answered,
    /// It did not answer in time, or the connection failed: the service is overloaded or gone.
    Dropped,
    /// Nothing learned (the endpoint's deadline, a request that never left).
    Unknown,
}

/// A place in the bulkhead for one call; freed when dropped.
#[derive(Debug)]
pub(crate) enum Place<'a> {
    Fixed(#[allow(dead_code)] SemaphorePermit<'a>),
    Adaptive(adaptive::Place<'a>),
}

impl Place<'_> {
    /// Reports how the call ended after `latency`, at `now`, and frees the place.
    pub(crate) fn done(self, ended: Ended, latency: Duration, now: Instant) {
        if let Place::Adaptive(place) = self {
            place.done(ended, latency, now);
        }
    }
}

impl Bulkhead {
    pub(crate) fn new(concurrency: Concurrency) -> Self {
        match concurrency {
            Concurrency::Fixed(max) => Self::Fixed { semaphore: Semaphore::new(max as usize), max },
            Concurrency::Adaptive { initial, min, max } => Self::Adaptive(Adaptive::new(initial, min, max)),
            // New limit kinds default to the adaptive one.
            _ => Self::Adaptive(Adaptive::default()),
        }
    }

    /// A place for one call, or [`CallErrorKind::BulkheadFull`] at once.
    pub(crate) fn enter(&self) -> Result<Place<'_>, CallError> {
        let full = || CallError::new(CallErrorKind::BulkheadFull);
        match self {
            // The semaphore is never closed: every error means no place is free.
            Self::Fixed { semaphore, .. } => {
                semaphore.try_acquire().map(Place::Fixed).map_err(|_: TryAcquireError| full())
            }
            Self::Adaptive(adaptive) => adaptive.enter().map(Place::Adaptive).ok_or_else(full),
        }
    }

    /// Calls in flight now.
    pub(crate) fn in_flight(&self) -> u32 {
        match self {
            Self::Fixed { semaphore, max } => max.saturating_sub(semaphore.available_permits() as u32),
            Self::Adaptive(adaptive) => adaptive.in_flight(),
        }
    }

    /// The limit now.
    pub(crate) fn limit(&self) -> u32 {
        match self {
            Self::Fixed { max, .. } => *max,
            Self::Adaptive(adaptive) => adaptive.limit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_excess_of_a_fixed_limit_fails_at_once_and_a_returned_place_is_reused() {
        let b = Bulkhead::new(Concurrency::Fixed(2));
        let first = b.enter().unwrap();
        let _second = b.enter().unwrap();
        assert_eq!(b.in_flight(), 2);
        assert_eq!(b.enter().unwrap_err().kind(), CallErrorKind::BulkheadFull);
        drop(first);
        assert_eq!(b.in_flight(), 1);
        assert!(b.enter().is_ok());
    }
}
