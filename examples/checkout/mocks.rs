//! Mock downstream services: real HTTP/1.1 servers on loopback ports that answer the checkout
//! contract after the template's latency, and can be told to fail (status, hang, connection
//! reset, malformed JSON, 429 with `Retry-After`). Every request is logged with its start and end
//! so tests can check what reached a service and when.

#![allow(dead_code)]

use super::contract;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// How a mock service answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answers the contract.
    None,
    /// Answers this status with a small JSON body.
    Status(u16),
    /// Answers 429 with `Retry-After: <seconds>`.
    TooManyRequests { retry_after_secs: u32 },
    /// Never answers.
    Hang,
    /// Resets the TCP connection (RST) once the request arrives.
    Reset,
    /// Answers 200 with a body that is not JSON.
    Malformed,
}

/// One request a mock received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
    pub start: Instant,
    /// When the answer was ready (None while in flight or if the client went away first).
    pub end: Option<Instant>,
}

/// The shared state of one mock service.
#[derive(Debug)]
pub struct Mock {
    pub name: &'static str,
    pub addr: SocketAddr,
    latency: Mutex<Duration>,
    fault: Mutex<Fault>,
    requests: AtomicU64,
    logging: AtomicBool,
    seen: Mutex<Vec<Seen>>,
}

impl Mock {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_fault(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap() = latency;
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Whether requests are kept for [`seen`](Self::seen) (default: yes). A long-running mock,
    /// such as the load test's, turns it off so its memory stays flat.
    pub fn set_logging(&self, on: bool) {
        self.logging.store(on, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn reset_log(&self) {
        self.seen.lock().unwrap().clear();
        self.requests.store(0, Ordering::SeqCst);
    }
}

/// The five checkout services.
#[derive(Debug, Clone)]
pub struct Mocks {
    services: Arc<HashMap<&'static str, Arc<Mock>>>,
}

pub const SERVICES: [&str; 5] = ["cart", "inventory", "pricing", "shipping", "tax"];

impl Mocks {
    /// Starts the five services on free loopback ports with the template's latencies times
    /// `latency_scale` (0.0 for zero latency).
    pub async fn start(latency_scale: f64) -> std::io::Result<Self> {
        let mut services = HashMap::new();
        for name in SERVICES {
            let latency = contract::latency(name).mul_f64(latency_scale);
            services.insert(name, start_one(name, "127.0.0.1:0".parse().unwrap(), latency).await?);
        }
        Ok(Self { services: Arc::new(services) })
    }

    pub fn get(&self, name: &str) -> &Mock {
        &self.services[name]
    }

    pub fn url(&self, name: &str) -> String {
        self.get(name).url()
    }

    pub fn all(&self) -> impl Iterator<Item = &Mock> {
        SERVICES.iter().map(|name| &*self.services[name])
    }

    /// A runtime builder for the checkout services pointed at these mocks, ignoring
    /// `ORCHESTRATE_<SERVICE>_URL` (tests must not depend on the environment).
    pub fn runtime(&self, services: &'static [orchestrate::ServiceSpec]) -> orchestrate::RuntimeBuilder {
        SERVICES.iter().fold(orchestrate::Runtime::builder(services).read_env(false), |b, s| b.base_url(s, self.url(s)))
    }

    pub fn reset(&self) {
        for mock in self.all() {
            mock.set_fault(Fault::None);
            mock.reset_log();
        }
    }
}

/// Starts one mock service on `addr`.
pub async fn start_one(name: &'static str, addr: SocketAddr, latency: Duration) -> std::io::Result<Arc<Mock>> {
    let listener = TcpListener::bind(addr).await?;
    let mock = Arc::new(Mock {
        name,
        addr: listener.local_addr()?,
        latency: Mutex::new(latency),
        fault: Mutex::new(Fault::None),
        requests: AtomicU64::new(0),
        logging: AtomicBool::new(true),
        seen: Mutex::new(Vec::new()),
    });
    tokio::spawn(accept(listener, mock.clone()));
    Ok(mock)
}

/// Accepts connections; each is served by hyper with a kill switch that the `Reset` fault pulls.
async fn accept(listener: TcpListener, mock: Arc<Mock>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        // Dropping the socket with a zero linger sends RST instead of FIN.
        // A zero linger never blocks on drop (it discards unsent data and resets).
        #[allow(deprecated)]
        let _ = stream.set_linger(Some(Duration::ZERO));
        let _ = stream.set_nodelay(true);
        let kill = Arc::new(Notify::new());
        let router = axum::Router::new().fallback(answer).with_state((mock.clone(), kill.clone()));
        let service = hyper_util::service::TowerToHyperService::new(router);
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = kill.notified() => {}
            }
        });
    }
}

async fn answer(State((mock, kill)): State<(Arc<Mock>, Arc<Notify>)>, request: Request) -> Response {
    let start = Instant::now();
    mock.requests.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20).await.unwrap_or_default();
    let index = mock.logging.load(Ordering::SeqCst).then(|| {
        let mut seen = mock.seen.lock().unwrap();
        seen.push(Seen {
            method: parts.method.to_string(),
            path: parts.uri.path_and_query().map(ToString::to_string).unwrap_or_default(),
            headers: parts.headers.clone(),
            body: body.clone(),
            start,
            end: None,
        });
        seen.len() - 1
    });
    let fault = mock.fault.lock().unwrap().clone();
    let latency = *mock.latency.lock().unwrap();
    match fault {
        Fault::Hang => std::future::pending::<()>().await,
        Fault::Reset => {
            kill.notify_one();
            std::future::pending::<()>().await;
        }
        _ => {}
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match fault {
        Fault::None => {
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let (status, value) = contract::answer(mock.name, parts.method.as_str(), parts.uri.path(), &json);
            json_response(status, &value)
        }
        Fault::Status(status) => json_response(status, &serde_json::json!({"error": format!("{} failed", mock.name)})),
        Fault::TooManyRequests { retry_after_secs } => {
            let mut response = json_response(429, &serde_json::json!({"error": "slow down"}));
            response.headers_mut().insert(http::header::RETRY_AFTER, retry_after_secs.into());
            response
        }
        Fault::Malformed => (
            StatusCode::OK,
            [(http::header::CONTENT_TYPE, "application/json")],
            Body::from("{\"subtotal\": 14997, oops"),
        )
            .into_response(),
        Fault::Hang | Fault::Reset => unreachable!(),
    };
    if let Some(index) = index {
        mock.seen.lock().unwrap()[index].end = Some(Instant::now());
    }
    response
}

fn json_response(status: u16, value: &serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(http::header::CONTENT_TYPE, "application/json")], serde_json::to_vec(value).unwrap_or_default())
        .into_response()
}
