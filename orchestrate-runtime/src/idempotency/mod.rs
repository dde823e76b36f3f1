//! Idempotent replay of client retries: the records of `Idempotency-Key`s and the responses they
//! answered, in memory or in the shared store.
//!
//! `router::serve` of an endpoint with `idempotent_requests` asks [`Idempotency::begin`] before
//! it runs the graph for a request carrying the header. The first request with a key claims it
//! (a *running* record holding the request's fingerprint, a SHA-256 of method, path, query and
//! body) and, once it answered, [`Claim::finish`] replaces the claim with the response (status,
//! the headers of `orchestrate_core::policy::idempotency::REPLAYED_HEADERS`, body) for the
//! record's time to live. Then a request with the same key and fingerprint gets that response
//! (`Replay`), one with another fingerprint is refused (`Mismatch`, 422), one while the claim is
//! running too (`InProgress`, 409) — unless the endpoint has a `wait`
//! (`idempotent_requests(wait = "5s")`): then [`Idempotency::begin_or_wait`] asks again with a
//! growing pause until the response is there or the wait is over. A claim dropped without an answer (the client went away, the
//! request was shed) is released, so a retry runs.
//!
//! Layout in Redis, under the store's prefix: `idempotency:<endpoint>:<key>`, a JSON string:
//! `{"fp":..,"claim":..}` while running, `{"fp":..,"response":{"status":..,"headers":[..],
//! "body":..}}` once answered. The claim is `SET .. NX PX`, so two instances never both run a key; the release
//! deletes the record only while it still holds its own claim (a script). A store that fails
//! degrades to running the request without replay (`Unavailable`), never to a 5xx.

use crate::store::{RedisStore, Script, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    fp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claim: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<Stored>,
}

/// What a request with a key does.
#[derive(Debug)]
pub(crate) enum Begin {
    /// The first with its key: run, then [`Claim::finish`].
    Run(Claim),
    /// Answered before: this response.
    Replay(Stored),
    /// The first request with the key still runs.
    InProgress,
    /// The key was used with another request.
    Mismatch,
    /// The store did not answer: run without replay.
    Unavailable,
}

/// The records of one runtime.
#[derive(Debug, Clone)]
pub(crate) struct Idempotency(Arc<Backend>);

#[derive(Debug)]
enum Backend {
    Memory(Mutex<HashMap<String, (Record, Instant)>>),
    Redis(RedisStore),
}

/// Deletes a running record if it still holds this claim.
static RELEASE: Script = Script::new(
    "idempotency_release",
    r"
    local record = redis.call('GET', KEYS[1])
    if record and string.find(record, ARGV[1], 1, true) then
        return redis.call('DEL', KEYS[1])
    end
    return 0
    ",
);

/// The fingerprint of a request: method, path and query, body.
pub(crate) fn fingerprint(method: &http::Method, uri: &http::Uri, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update(b" ");
    hash.update(uri.path_and_query().map_or("", |p| p.as_str()).as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `key` is a usable key: 1 to 255 visible ASCII characters.
pub(crate) fn valid_key(key: &[u8]) -> bool {
    !key.is_empty()
        && key.len() <= orchestrate_core::policy::idempotency::MAX_KEY_LEN
        && key.iter().all(|b| b.is_ascii_graphic())
}

impl Idempotency {
    /// In the shared store when there is one, else in memory.
    pub(crate) fn new(store: &Store) -> Self {
        match store.redis() {
            Some(redis) => Self(Arc::new(Backend::Redis(redis.clone()))),
            None => Self(Arc::new(Backend::Memory(Mutex::default()))),
        }
    }

    /// As [`begin`](Self::begin), but while the first request with the key runs, asks again
    /// (after 10 ms, doubling up to 250 ms) for at most `wait`: the first's response when it
    /// comes in time (`Replay`), a claim when the first gave its key up (`Run`), else
    /// `InProgress`.
    pub(crate) async fn begin_or_wait(
        &self,
        endpoint: &str,
        key: &str,
        fp: String,
        running: Duration,
        wait: Option<Duration>,
    ) -> Begin {
        let first = self.begin(endpoint, key, fp.clone(), running).await;
        let (Begin::InProgress, Some(wait)) = (&first, wait) else { return first };
        let until = Instant::now() + wait;
        let mut pause = Duration::from_millis(10);
        loop {
            let now = Instant::now();
            if now >= until {
                return Begin::InProgress;
            }
            tokio::time::sleep(pause.min(until - now)).await;
            pause = (pause * 2).min(Duration::from_millis(250));
            match self.begin(endpoint, key, fp.clone(), running).await {
                Begin::InProgress => {}
                other => return other,
            }
        }
    }

    /// Claims `key` of `endpoint` for a request with fingerprint `fp`, for `running` at most,
    /// or says what else to do.
    pub(crate) async fn begin(&self, endpoint: &str, key: &str, fp: String, running: Duration) -> Begin {
        let id = format!("{endpoint}:{key}");
        let claim = format!("c{:016x}", fastrand::u64(..));
        let record = Record { fp: fp.clone(), claim: Some(claim.clone()), response: None };
        let existing = match &*self.0 {
            Backend::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                if map.len() > 1024 {
                    map.retain(|_, (_, until)| *until > now);
                }
                match map.get(&id) {
                    Some((existing, until)) if *until > now => Some(existing.clone()),
                    _ => {
                        map.insert(id.clone(), (record, now + running));
                        None
                    }
                }
            }
            Backend::Redis(redis) => {
                let redis_key = redis.key(&["idempotency", endpoint, key]);
                let Ok(json) = serde_json::to_string(&record) else { return Begin::Unavailable };
                let mut set = redis::cmd("SET");
                set.arg(&redis_key).arg(json).arg("NX").arg("PX").arg(millis(running));
                match redis.query::<Option<String>>(&set).await {
                    Ok(Some(_)) => None,
                    Ok(None) => match redis.query::<Option<String>>(redis::cmd("GET").arg(&redis_key)).await {
                        Ok(Some(json)) => match serde_json::from_str::<Record>(&json) {
                            Ok(existing) => Some(existing),
                            Err(_) => return Begin::Unavailable,
                        },
                        // Expired between the two commands: as if still running, once.
                        Ok(None) => return Begin::InProgress,
                        Err(error) => {
                            tracing::warn!(%error, "idempotency records unavailable; the request runs without replay");
                            return Begin::Unavailable;
                        }
                    },
                    Err(error) => {
                        tracing::warn!(%error, "idempotency records unavailable; the request runs without replay");
                        return Begin::Unavailable;
                    }
                }
            }
        };
        match existing {
            None => Begin::Run(Claim {
                owner: self.clone(),
                id,
                endpoint: endpoint.to_owned(),
                key: key.to_owned(),
                fp,
                claim,
                done: false,
            }),
            Some(existing) if existing.fp != fp => Begin::Mismatch,
            Some(Record { response: Some(stored), .. }) => Begin::Replay(stored),
            Some(_) => Begin::InProgress,
        }
    }
}

/// A claimed key: [`finish`](Self::finish) it with the response, or drop it to release it.
#[derive(Debug)]
pub(crate) struct Claim {
    owner: Idempotency,
    id: String,
    endpoint: String,
    key: String,
    fp: String,
    claim: String,
    done: bool,
}

impl Claim {
    /// Keeps `stored` for replay for `ttl`.
    pub(crate) async fn finish(mut self, stored: Stored, ttl: Duration) {
        self.done = true;
        let record = Record { fp: self.fp.clone(), claim: None, response: Some(stored) };
        match &*self.owner.0 {
            Backend::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                map.insert(self.id.clone(), (record, Instant::now() + ttl));
            }
            Backend::Redis(redis) => {
                let Ok(json) = serde_json::to_string(&record) else { return };
                let mut set = redis::cmd("SET");
                set.arg(redis.key(&["idempotency", &self.endpoint, &self.key])).arg(json).arg("PX").arg(millis(ttl));
                if let Err(error) = redis.query::<()>(&set).await {
                    tracing::warn!(%error, "the response could not be kept for replay");
                }
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        match &*self.owner.0 {
            Backend::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if map.get(&self.id).is_some_and(|(r, _)| r.claim.as_deref() == Some(self.claim.as_str())) {
                    map.remove(&self.id);
                }
            }
            Backend::Redis(redis) => {
                let (redis, key, claim) =
                    (redis.clone(), redis.key(&["idempotency", &self.endpoint, &self.key]), self.claim.clone());
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    handle.spawn(async move {
                        if let Err(error) = redis.invoke::<i64>(&RELEASE.key(key).arg(claim)).await {
                            tracing::warn!(%error, "an idempotency claim could not be released; it expires");
                        }
                    });
                }
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Idempotency {
        Idempotency(Arc::new(Backend::Memory(Mutex::default())))
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_runs_once_then_replays_refuses_another_body_and_expires() {
        let records = memory();
        let Begin::Run(claim) = records.begin("e", "k", "a".into(), Duration::from_secs(5)).await else { panic!() };
        assert!(matches!(records.begin("e", "k", "a".into(), Duration::from_secs(5)).await, Begin::InProgress));
        assert!(matches!(records.begin("e", "k", "b".into(), Duration::from_secs(5)).await, Begin::Mismatch));
        let stored = Stored { status: 201, headers: vec![], body: "{}".into() };
        claim.finish(stored.clone(), Duration::from_secs(60)).await;
        assert!(
            matches!(records.begin("e", "k", "a".into(), Duration::from_secs(5)).await, Begin::Replay(s) if s == stored)
        );
        assert!(matches!(records.begin("e", "k", "b".into(), Duration::from_secs(5)).await, Begin::Mismatch));
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert!(matches!(records.begin("e", "k", "b".into(), Duration::from_secs(5)).await, Begin::Run(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_with_a_wait_gets_the_first_response_when_it_comes_in_time() {
        let records = memory();
        let running = Duration::from_secs(30);
        let Begin::Run(claim) = records.begin("e", "k", "a".into(), running).await else { panic!() };
        let stored = Stored { status: 201, headers: vec![], body: "{}".into() };
        let finish = {
            let stored = stored.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                claim.finish(stored, Duration::from_secs(60)).await;
            })
        };
        let started = Instant::now();
        let waited = records.begin_or_wait("e", "k", "a".into(), running, Some(Duration::from_secs(5))).await;
        assert!(matches!(waited, Begin::Replay(s) if s == stored));
        // Asked again at most 250 ms apart: the response came at 2 s.
        assert!(started.elapsed() >= Duration::from_secs(2) && started.elapsed() <= Duration::from_millis(2250));
        finish.await.unwrap();

        // A first request that outlasts the wait: 409 after exactly the wait.
        let Begin::Run(_held) = records.begin("e", "k2", "a".into(), running).await else { panic!() };
        let started = Instant::now();
        let waited = records.begin_or_wait("e", "k2", "a".into(), running, Some(Duration::from_secs(1))).await;
        assert!(matches!(waited, Begin::InProgress));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        // Without a wait: at once.
        let started = Instant::now();
        assert!(matches!(records.begin_or_wait("e", "k2", "a".into(), running, None).await, Begin::InProgress));
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_retry_runs_when_the_first_gives_its_key_up() {
        let records = memory();
        let running = Duration::from_secs(30);
        let Begin::Run(claim) = records.begin("e", "k", "a".into(), running).await else { panic!() };
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            drop(claim);
        });
        let waited = records.begin_or_wait("e", "k", "a".into(), running, Some(Duration::from_secs(5))).await;
        assert!(matches!(waited, Begin::Run(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_claim_is_released_and_a_stale_one_expires() {
        let records = memory();
        let Begin::Run(claim) = records.begin("e", "k", "a".into(), Duration::from_secs(5)).await else { panic!() };
        drop(claim);
        let Begin::Run(claim) = records.begin("e", "k", "a".into(), Duration::from_secs(5)).await else { panic!() };
        std::mem::forget(claim);
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(matches!(records.begin("e", "k", "a".into(), Duration::from_secs(5)).await, Begin::Run(_)));
    }
}
