//! Mock downstream services: real HTTP/1.1 servers on loopback ports that answer the checkout
//! contract after the template's latency, and can be told to fail (status, hang, connection
//! reset, malformed JSON, 429 with `Retry-After`, slow). Every request is logged with its start and
//! end so tests can check what reached a service and when.
//!
//! **Chaos.** Besides one [`Fault`] for every request ([`Mock::set_fault`]), a mock can inject
//! faults into a share of its requests: [`Mock::set_chaos`] takes a list of `(N, fault)`, each
//! fault hitting 1 in `N` requests, chosen either
//!
//! - by the request counter ([`Pick::Counter`], deterministic): with requests numbered 1, 2, 3…
//!   in the order they arrive, the first fault of the list hits requests `N, 2N, 3N…`, the k-th
//!   (counting from 0) the requests `n` with `(n + k) mod N = 0`, so two faults with the same `N`
//!   never land on the same request; where two still coincide, the one listed first wins; or
//! - at random ([`Pick::Random { seed }`](Pick::Random)): each request draws one number from a
//!   hash of the seed, the service name and the request's number, and the faults take disjoint
//!   slices of `[0, 1)` of width `1/N` each, so each hits 1 in `N` requests on average, exactly
//!   reproducible for the same seed and arrival order.
//!
//! [`parse_chaos`] reads the command-line form, `SERVICE=FAULT:N` separated by commas, where
//! `FAULT` is a status (`500`, `503`, …), `reset`, `hang`, `malformed`, `429` answers
//! `Retry-After: 1`, or `slow<duration>` (`slow300ms`, `slow2s`: answers the contract after its
//! latency plus that much):
//!
//! ```text
//! cart=500:20,inventory=reset:17,pricing=hang:31,shipping=hang:7,tax=500:19,inventory=slow300ms:10
//! ```
//!
//! **Stats.** `GET /_mock/stats` on every mock's port answers
//! `{"requests":n,"inFlight":n,"faults":n}`: the requests received so far (stats requests not
//! counted), those received and not yet answered or dropped, and those chaos gave a fault. A hung request stays in flight until its client closes the connection
//! (hyper notices the end of the stream and drops the handler); a reset one leaves at once.

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
    /// Answers the contract after its latency plus this much.
    Slow(Duration),
}

impl std::fmt::Display for Fault {
    /// The command-line form of [`parse_chaos`]: `500`, `reset`, `hang`, `slow300ms`, …
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Status(status) => write!(f, "{status}"),
            Self::TooManyRequests { retry_after_secs } => write!(f, "429 (Retry-After: {retry_after_secs})"),
            Self::Hang => f.write_str("hang"),
            Self::Reset => f.write_str("reset"),
            Self::Malformed => f.write_str("malformed"),
            Self::Slow(extra) => write!(f, "slow{}ms", extra.as_millis()),
        }
    }
}

impl std::str::FromStr for Fault {
    type Err = String;

    /// `500` (any status 200–599), `429` (with `Retry-After: 1`), `reset`, `hang`, `malformed`,
    /// `slow<digits>ms` or `slow<digits>s`.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad =
            || format!("`{text}` is not a fault; write a status (`500`), `reset`, `hang`, `malformed` or `slow300ms`");
        match text {
            "reset" => Ok(Self::Reset),
            "hang" => Ok(Self::Hang),
            "malformed" => Ok(Self::Malformed),
            "429" => Ok(Self::TooManyRequests { retry_after_secs: 1 }),
            _ => {
                if let Some(duration) = text.strip_prefix("slow") {
                    let (digits, unit) =
                        duration.split_at(duration.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
                    let amount: u64 = digits.parse().map_err(|_| bad())?;
                    return match unit {
                        "ms" => Ok(Self::Slow(Duration::from_millis(amount))),
                        "s" => Ok(Self::Slow(Duration::from_secs(amount))),
                        _ => Err(bad()),
                    };
                }
                match text.parse::<u16>() {
                    Ok(status @ 200..=599) => Ok(Self::Status(status)),
                    _ => Err(bad()),
                }
            }
        }
    }
}

/// How [`Mock::set_chaos`] picks the requests a fault hits (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pick {
    /// By the request counter: deterministic.
    #[default]
    Counter,
    /// At random, from this seed: reproducible.
    Random { seed: u64 },
}

/// Faults injected into a share of one mock's requests: each `(N, fault)` hits 1 in `N`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chaos {
    pub faults: Vec<(u64, Fault)>,
    pub pick: Pick,
}

impl Chaos {
    /// The fault for request number `n` (from 1) of `service`, if any.
    pub fn fault_for(&self, service: &str, n: u64) -> Option<&Fault> {
        match self.pick {
            Pick::Counter => (0..)
                .zip(&self.faults)
                .find(|(k, (every, _))| (n + k).is_multiple_of(*every))
                .map(|(_, (_, fault))| fault),
            Pick::Random { seed } => {
                // One uniform draw in [0, 1) per request; fault i owns [Σ_{j<i} 1/N_j, Σ_{j≤i} 1/N_j).
                let mut h = seed;
                for byte in service.bytes() {
                    h = splitmix64(h ^ u64::from(byte));
                }
                let draw = (splitmix64(h ^ n) >> 11) as f64 / (1u64 << 53) as f64;
                let mut upper = 0.0;
                self.faults
                    .iter()
                    .find(|(every, _)| {
                        upper += 1.0 / *every as f64;
                        draw < upper
                    })
                    .map(|(_, fault)| fault)
            }
        }
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Parses `SERVICE=FAULT:N[,SERVICE=FAULT:N..]` (see the module docs) into `(service, N, fault)`
/// in the order written. `N` must be at least 1 (`1` hits every request).
pub fn parse_chaos(spec: &str) -> Result<Vec<(&'static str, u64, Fault)>, String> {
    spec.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let usage =
                || format!("`{part}`: write SERVICE=FAULT:N, e.g. `cart=500:20` (1 in 20 cart requests answer 500)");
            let (service, rest) = part.split_once('=').ok_or_else(usage)?;
            let (fault, every) = rest.rsplit_once(':').ok_or_else(usage)?;
            let service = SERVICES
                .iter()
                .copied()
                .find(|s| *s == service)
                .ok_or_else(|| format!("`{part}`: no service `{service}`; one of {}", SERVICES.join(", ")))?;
            let every = every
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("`{part}`: N must be a whole number ≥ 1, got `{every}`"))?;
            Ok((service, every, fault.parse().map_err(|e| format!("`{part}`: {e}"))?))
        })
        .collect()
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
    chaos: Mutex<Chaos>,
    requests: AtomicU64,
    in_flight: AtomicU64,
    faulted: AtomicU64,
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

    /// Faults for a share of the requests (see the module docs); a [`set_fault`](Self::set_fault)
    /// other than [`Fault::None`] takes precedence. `Chaos::default()` turns it off.
    pub fn set_chaos(&self, chaos: Chaos) {
        *self.chaos.lock().unwrap() = chaos;
    }

    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap() = latency;
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests received and neither answered nor dropped yet.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Requests given a fault by [`set_chaos`](Self::set_chaos) so far.
    pub fn faulted(&self) -> u64 {
        self.faulted.load(Ordering::SeqCst)
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
        self.faulted.store(0, Ordering::SeqCst);
    }
}

/// The six checkout services.
#[derive(Debug, Clone)]
pub struct Mocks {
    services: Arc<HashMap<&'static str, Arc<Mock>>>,
}

pub const SERVICES: [&str; 6] = ["cart", "inventory", "pricing", "shipping", "tax", "payment"];

/// The services of `POST /checkout/summary`.
pub const SUMMARY_SERVICES: [&str; 5] = ["cart", "inventory", "pricing", "shipping", "tax"];

/// `ORCHESTRATE_MOCK_FAIL`: a comma-separated list of embedded mock services that answer 500.
pub const FAIL_ENV: &str = "ORCHESTRATE_MOCK_FAIL";

/// The services named in a `ORCHESTRATE_MOCK_FAIL` value (`"shipping,payment"`).
///
/// # Errors
///
/// A name that is no mock service.
pub fn parse_fail(text: &str) -> Result<Vec<&'static str>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            SERVICES
                .iter()
                .copied()
                .find(|s| *s == name)
                .ok_or_else(|| format!("{FAIL_ENV}: no mock service `{name}`; name some of {}", SERVICES.join(", ")))
        })
        .collect()
}

impl Mocks {
    /// Starts the six services on free loopback ports with the template's latencies times
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

    /// The five services the summary calls (not `payment`, which only placing an order does).
    pub fn all(&self) -> impl Iterator<Item = &Mock> {
        SUMMARY_SERVICES.iter().map(|name| &*self.services[name])
    }

    /// A runtime builder for the checkout services pointed at these mocks, ignoring
    /// `ORCHESTRATE_<SERVICE>_URL` (tests must not depend on the environment).
    pub fn runtime(&self, services: &'static [orchestrate::ServiceSpec]) -> orchestrate::RuntimeBuilder {
        SERVICES.iter().fold(orchestrate::Runtime::builder(services).read_env(false), |b, s| b.base_url(s, self.url(s)))
    }

    pub fn reset(&self) {
        for mock in SERVICES.iter().map(|name| &*self.services[name]) {
            mock.set_fault(Fault::None);
            mock.set_chaos(Chaos::default());
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
        chaos: Mutex::new(Chaos::default()),
        requests: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        faulted: AtomicU64::new(0),
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
        let router = axum::Router::new()
            .route("/_mock/stats", axum::routing::get(stats))
            .fallback(answer)
            .with_state((mock.clone(), kill.clone()));
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

/// `GET /_mock/stats`: `{"requests":n,"inFlight":n,"faults":n}`.
async fn stats(State((mock, _)): State<(Arc<Mock>, Arc<Notify>)>) -> Response {
    let stats =
        serde_json::json!({"requests": mock.requests(), "inFlight": mock.in_flight(), "faults": mock.faulted()});
    json_response(200, &stats)
}

/// Counts a request in flight until it is answered or its future dropped (client gone, reset).
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn answer(State((mock, kill)): State<(Arc<Mock>, Arc<Notify>)>, request: Request) -> Response {
    let start = Instant::now();
    let _in_flight = InFlight::enter(&mock.in_flight);
    let number = mock.requests.fetch_add(1, Ordering::SeqCst) + 1;
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
    let mut fault = mock.fault.lock().unwrap().clone();
    if fault == Fault::None
        && let Some(chosen) = mock.chaos.lock().unwrap().fault_for(mock.name, number)
    {
        fault = chosen.clone();
        mock.faulted.fetch_add(1, Ordering::SeqCst);
    }
    let mut latency = *mock.latency.lock().unwrap();
    if let Fault::Slow(extra) = fault {
        latency += extra;
    }
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
        Fault::None | Fault::Slow(_) => {
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
