//! The journal in memory: records, leases and the open set under one lock, on tokio's clock.

use super::{MAX_RECORDS, SagaRecord};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Default)]
pub(super) struct Records(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    records: HashMap<String, (SagaRecord, Instant)>,
    leases: HashMap<String, (String, Instant)>,
    open: BTreeSet<String>,
}

impl State {
    /// The live holder of `id`'s lease.
    fn holder(&self, id: &str, now: Instant) -> Option<&str> {
        self.leases.get(id).filter(|(_, until)| *until > now).map(|(owner, _)| owner.as_str())
    }

    /// Makes room for one more record: expired ones first, then the ended ones that expire first.
    fn make_room(&mut self, now: Instant) {
        if self.records.len() < MAX_RECORDS {
            return;
        }
        self.records.retain(|_, (_, until)| *until > now);
        while self.records.len() >= MAX_RECORDS {
            let oldest = self
                .records
                .iter()
                .filter(|(_, (record, _))| record.state.ended())
                .min_by_key(|(_, (_, until))| *until)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => {
                    self.records.remove(&id);
                }
                // Only open sagas: they are bounded by the requests in flight.
                None => break,
            }
        }
    }
}

impl Records {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn get(&self, id: &str) -> Option<SagaRecord> {
        let state = self.lock();
        state.records.get(id).filter(|(_, until)| *until > Instant::now()).map(|(record, _)| record.clone())
    }

    pub(super) fn write(&self, record: &SagaRecord, owner: &str, lease: Duration, ttl: Duration) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        let id = &record.request_id;
        if state.holder(id, now).is_some_and(|holder| holder != owner) {
            return false;
        }
        if !state.records.contains_key(id) {
            state.make_room(now);
        }
        state.records.insert(id.clone(), (record.clone(), now + ttl));
        if record.state.ended() {
            state.leases.remove(id);
            state.open.remove(id);
        } else {
            state.leases.insert(id.clone(), (owner.to_owned(), now + lease));
            state.open.insert(id.clone());
        }
        true
    }

    pub(super) fn claim(&self, id: &str, owner: &str, lease: Duration) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        if state.holder(id, now).is_some() {
            return false;
        }
        state.leases.insert(id.to_owned(), (owner.to_owned(), now + lease));
        true
    }

    pub(super) fn renew(&self, id: &str, owner: &str, lease: Duration) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        if state.holder(id, now) != Some(owner) {
            return false;
        }
        state.leases.insert(id.to_owned(), (owner.to_owned(), now + lease));
        true
    }

    pub(super) fn open(&self) -> Vec<String> {
        self.lock().open.iter().cloned().collect()
    }

    pub(super) fn forget(&self, id: &str) {
        self.lock().open.remove(id);
    }
}
