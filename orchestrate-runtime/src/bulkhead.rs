//! Bulkhead per service: at most `max_in_flight` calls at once; the excess fails at once.
//!
//! Hand-written over `tokio::sync::Semaphore::try_acquire` because tower's `ConcurrencyLimit`
//! queues the excess instead of rejecting it (tower#793), and a queue in front of a slow service
//! is exactly what a bulkhead exists to prevent: the caller's deadline would be spent waiting.
//! The permit is held for the whole call, retries and backoff included, so retries of a slow
//! service cannot exceed its share either.

use crate::error::{CallError, CallErrorKind};
use tokio::sync::{Semaphore, SemaphorePermit, TryAcquireError};

/// The bulkhead of one service.
#[derive(Debug)]
pub(crate) struct Bulkhead {
    semaphore: Semaphore,
    max: u32,
}

impl Bulkhead {
    pub(crate) fn new(max: u32) -> Self {
        Self { semaphore: Semaphore::new(max as usize), max }
    }

    /// A place for one call, or [`CallErrorKind::BulkheadFull`] at once.
    pub(crate) fn enter(&self) -> Result<SemaphorePermit<'_>, CallError> {
        // The semaphore is never closed: every error means no place is free.
        self.semaphore.try_acquire().map_err(|_: TryAcquireError| CallError::new(CallErrorKind::BulkheadFull))
    }

    /// Calls in flight now.
    pub(crate) fn in_flight(&self) -> u32 {
        self.max.saturating_sub(self.semaphore.available_permits() as u32)
    }

    /// The bulkhead's size.
    pub(crate) fn max(&self) -> u32 {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_excess_fails_at_once_and_a_returned_place_is_reused() {
        let b = Bulkhead::new(2);
        let first = b.enter().unwrap();
        let _second = b.enter().unwrap();
        assert_eq!(b.in_flight(), 2);
        assert_eq!(b.enter().unwrap_err().kind(), CallErrorKind::BulkheadFull);
        drop(first);
        assert_eq!(b.in_flight(), 1);
        assert!(b.enter().is_ok());
    }
}
