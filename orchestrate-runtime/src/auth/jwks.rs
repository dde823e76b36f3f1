//! The issuer's JWK Set: fetched at start-up and every `jwks_refresh`, and again for a token with
//! an unknown `kid` at most once per `jwks_refetch`.
//!
//! A failed fetch keeps the keys already known (an issuer that is down must not turn every token
//! away) and is logged; the next refresh or refetch tries again.

use super::keys::Key;
use crate::client::HttpTransport;
use crate::service::ServiceSpec;
use bytes::Bytes;
use jsonwebtoken::jwk::JwkSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;
use tokio::time::Instant;
use tower::ServiceExt;

/// Longest wait for the issuer's answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWK Set read: a few keys are a few kilobytes.
const MAX_BODY: u64 = 256 * 1024;

#[derive(Debug)]
pub(super) struct Jwks {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    url: http::Uri,
    transport: HttpTransport,
    refresh: Duration,
    refetch: Duration,
    keys: RwLock<Arc<Vec<Key>>>,
    /// Held while fetching, so that concurrent unknown `kid`s wait for one fetch.
    fetching: tokio::sync::Mutex<Fetches>,
    count: AtomicU64,
    started: AtomicBool,
}

#[derive(Debug, Default)]
struct Fetches {
    /// Fetches completed (a waiter that sees this change need not fetch itself).
    done: u64,
    /// When the last fetch for an unknown `kid` started.
    last_refetch: Option<Instant>,
    /// When the last fetch of any kind started.
    last: Option<Instant>,
}

impl Jwks {
    pub(super) fn new(url: &str, refresh: Duration, refetch: Duration) -> Result<Self, String> {
        let parsed = url.parse::<http::Uri>().map_err(|e| format!("`jwks_url` `{url}` is not a URL: {e}"))?;
        if parsed.scheme().is_none() || parsed.authority().is_none() {
            return Err(format!("`jwks_url` `{url}` must be absolute, e.g. `https://auth.example.com/jwks.json`"));
        }
        let transport = HttpTransport::for_service(&ServiceSpec::new("jwks", "").with_max_body(MAX_BODY))
            .map_err(|e| format!("cannot build the JWK Set's HTTP client: {e}"))?;
        Ok(Self {
            shared: Arc::new(Shared {
                url: parsed,
                transport,
                refresh,
                refetch,
                keys: RwLock::new(Arc::new(Vec::new())),
                fetching: tokio::sync::Mutex::new(Fetches::default()),
                count: AtomicU64::new(0),
                started: AtomicBool::new(false),
            }),
        })
    }

    /// Starts the refresh task once, if a tokio runtime is running. The task holds the set weakly
    /// and ends once the authenticator is dropped.
    pub(super) fn start(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        if self.shared.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        let refresh = self.shared.refresh;
        handle.spawn(async move {
            loop {
                let Some(shared) = weak.upgrade() else { return };
                let mut fetches = shared.fetching.lock().await;
                // A token may have fetched the set meanwhile (before this task first ran).
                if fetches.last.is_none_or(|at| at.elapsed() >= refresh / 2) {
                    shared.fetch(&mut fetches).await;
                }
                drop(fetches);
                drop(shared);
                tokio::time::sleep(refresh).await;
            }
        });
    }

    pub(super) fn fetches(&self) -> u64 {
        self.shared.count.load(Ordering::Relaxed)
    }

    pub(super) fn find(&self, kid: &str) -> Option<Key> {
        self.shared.find(kid)
    }

    /// The key `kid` names, fetching the set first when it was never fetched, or when no fetch
    /// for an unknown `kid` ran within the last `jwks_refetch`.
    pub(super) async fn find_or_refetch(&self, kid: Option<&str>) -> Option<Key> {
        let kid = kid?;
        let shared = &*self.shared;
        let mut fetches = shared.fetching.lock().await;
        if let Some(key) = shared.find(kid) {
            return Some(key);
        }
        let now = Instant::now();
        let due = fetches.done == 0 || fetches.last_refetch.is_none_or(|at| now.duration_since(at) >= shared.refetch);
        if !due {
            return None;
        }
        if fetches.done > 0 {
            fetches.last_refetch = Some(now);
        }
        shared.fetch(&mut fetches).await;
        shared.find(kid)
    }
}

impl Shared {
    fn find(&self, kid: &str) -> Option<Key> {
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.iter().find(|k| k.kid.as_deref() == Some(kid)).cloned()
    }

    /// One fetch (the caller holds `fetching`); the keys are replaced only by a set that parsed.
    async fn fetch(&self, fetches: &mut Fetches) {
        self.count.fetch_add(1, Ordering::Relaxed);
        fetches.done += 1;
        fetches.last = Some(Instant::now());
        let mut request = http::Request::new(Bytes::new());
        *request.uri_mut() = self.url.clone();
        request.headers_mut().insert(http::header::ACCEPT, http::HeaderValue::from_static("application/json"));
        let answer = tokio::time::timeout(FETCH_TIMEOUT, self.transport.clone().oneshot(request)).await;
        let body = match answer {
            Ok(Ok(response)) if response.status().is_success() => response.into_body(),
            Ok(Ok(response)) => {
                tracing::warn!(status = response.status().as_u16(), "JWK Set fetch failed; keeping the known keys");
                return;
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "JWK Set fetch failed; keeping the known keys");
                return;
            }
            Err(_) => {
                tracing::warn!("JWK Set fetch timed out; keeping the known keys");
                return;
            }
        };
        match serde_json::from_slice::<JwkSet>(&body) {
            Ok(set) => {
                let keys: Vec<Key> = set.keys.iter().filter_map(Key::from_jwk).collect();
                tracing::debug!(keys = keys.len(), "JWK Set fetched");
                *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
            }
            Err(error) => tracing::warn!(%error, "JWK Set does not parse; keeping the known keys"),
        }
    }
}
