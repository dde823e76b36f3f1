//! In-memory downstream services for executor tests: each answers the checkout contract after a
//! virtual-time latency (under `tokio::time::pause`), or fails as told, and logs when each request
//! started, ended or was dropped unfinished. [`redis`] starts real `redis-server` processes for
//! the store tests.

#![allow(dead_code)]

use bytes::Bytes;
use orchestrate::{CallError, CallErrorKind, Transport};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[path = "../../examples/checkout/contract.rs"]
pub mod contract;

/// What a service does with a request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Behaviour {
    /// Answers the contract after the latency.
    Answer,
    /// Answers this status (empty JSON object) after the latency.
    Status(u16),
    /// Never answers.
    Hang,
    /// Answers `{"not":"the declared type"}` after the latency.
    WrongShape,
}

/// One request a service received.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub service: &'static str,
    pub path: String,
    pub start: Duration,
    pub end: Option<Duration>,
    /// Dropped by the client before it finished.
    pub cancelled: bool,
}

/// Shared log of every request, with times measured from its creation.
#[derive(Clone)]
pub struct Log {
    start: Instant,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Log {
    pub fn new() -> Self {
        Self { start: Instant::now(), events: Arc::default() }
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    pub fn of(&self, service: &str) -> Vec<Event> {
        self.events().into_iter().filter(|e| e.service == service).collect()
    }

    fn elapsed(&self) -> Duration {
        Instant::now() - self.start
    }
}

/// Marks an event cancelled if dropped before `finish`.
struct Guard {
    log: Log,
    index: usize,
    finished: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let now = self.log.elapsed();
        let mut events = self.log.events.lock().unwrap();
        let event = &mut events[self.index];
        event.end = Some(now);
        event.cancelled = !self.finished;
    }
}

/// A transport for `service` that behaves as `behaviour` after `latency`.
pub fn service(service: &'static str, latency: Duration, behaviour: Behaviour, log: &Log) -> Transport {
    let log = log.clone();
    Transport::new(tower::service_fn(move |request: http::Request<Bytes>| {
        let log = log.clone();
        async move {
            let path = request.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
            let index = {
                let mut events = log.events.lock().unwrap();
                events.push(Event { service, path: path.clone(), start: log.elapsed(), end: None, cancelled: false });
                events.len() - 1
            };
            let mut guard = Guard { log: log.clone(), index, finished: false };
            if behaviour == Behaviour::Hang {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(latency).await;
            guard.finished = true;
            let (status, body) = match behaviour {
                Behaviour::Answer => {
                    let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap_or_default();
                    contract::answer(service, request.method().as_str(), request.uri().path(), &body)
                }
                Behaviour::Status(status) => (status, serde_json::json!({})),
                Behaviour::WrongShape => (200, serde_json::json!({"not": "the declared type"})),
                Behaviour::Hang => unreachable!(),
            };
            let mut response = http::Response::new(Bytes::from(serde_json::to_vec(&body).unwrap()));
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            Ok::<_, CallError>(response)
        }
    }))
}

/// A transport that fails to connect at once.
pub fn unreachable() -> Transport {
    Transport::new(tower::service_fn(|_request: http::Request<Bytes>| async {
        Err::<http::Response<Bytes>, _>(CallError::new(CallErrorKind::Connect))
    }))
}

#[path = "../../examples/checkout/mocks.rs"]
pub mod mocks;

pub mod chromium;
pub mod redis;

/// A server of `app` on a free loopback port; returns its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}
