//! The listener: accepts connections and serves an application over HTTP/1.1 with limits on what
//! a client may hold, and finishes in-flight requests on shutdown. Use it instead of
//! `axum::serve`, which has no header or body read timeout and no cap on connections.
//!
//! ```no_run
//! # async fn run(app: axum::Router, runtime: orchestrate_runtime::Runtime) -> std::io::Result<()> {
//! use orchestrate_runtime::{router, server};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! server::serve(listener, app).limits(runtime.server_limits()).with_graceful_shutdown(router::shutdown_signal()).await
//! # }
//! ```
//!
//! What a client meets ([`ServerLimits`], the `[server]` table of the configuration file,
//! [`RuntimeBuilder::server_limits`](crate::RuntimeBuilder::server_limits)):
//!
//! | limit | default | past it |
//! |---|---|---|
//! | `header_read_timeout`: the request line and headers, counted from when the listener waits for them (so also the idle wait between keep-alive requests) | 10 s | the connection is closed (hyper answers nothing on a head that never completed) |
//! | `body_read_timeout`: the whole body, once the head is in | 30 s | 408 `REQUEST_TIMEOUT`, `Connection: close` |
//! | `max_connections` per listener | 10 000 | the next connections are not accepted: they wait in the operating system's accept backlog (and the client's connect timeout) until one closes |
//! | `max_requests` answered at once per listener | 4096 | 503 `OVERLOADED` with `Retry-After: 1`, the answer the BFF gives whenever it sheds load |
//!
//! The body read timeout is applied where an endpoint reads its body
//! ([`router::BodyReadTimeout`](crate::router::BodyReadTimeout)), so it holds under
//! `axum::serve` too (with the runtime's limits); the others need this listener.
//!
//! Each refusal is counted in `orchestrate_server_refused_total{reason}` (`header_timeout`,
//! `max_requests`, `max_connections`).
//!
//! Each request carries the peer address as axum's `ConnectInfo<SocketAddr>` (what per-IP rate
//! limits read), as `into_make_service_with_connect_info` would give it.
//!
//! Written here rather than taken from a crate: hyper and hyper-util provide every part (the
//! HTTP/1.1 connection with its header read timeout, the graceful shutdown watcher); what is ours
//! is the accept loop holding a place per connection, the per-request place and the body limit,
//! which no maintained crate combines. HTTP/2 is not served (a load balancer speaks HTTP/1.1 to
//! its backends; an application that needs h2c can keep `axum::serve`).

use crate::outcome::shed_response;
use crate::router::BodyReadTimeout;
use crate::telemetry::metrics;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
pub use orchestrate_core::policy::ServerLimits;
use std::convert::Infallible;
use std::future::{Future, IntoFuture, Pending};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Serves `app` on `listener` with [`ServerLimits::DEFAULT`] until the future is dropped, or until
/// the signal of [`with_graceful_shutdown`](Serve::with_graceful_shutdown) completes.
///
/// ```no_run
/// # async fn run(app: axum::Router) -> std::io::Result<()> {
/// use orchestrate_runtime::server::{self, ServerLimits};
/// use std::time::Duration;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let limits = ServerLimits::DEFAULT.with_header_read_timeout(Duration::from_secs(5)).with_max_requests(512);
/// server::serve(listener, app).limits(limits).await
/// # }
/// ```
pub fn serve(listener: TcpListener, app: Router) -> Serve<Pending<()>> {
    Serve { listener, app, limits: ServerLimits::DEFAULT, signal: std::future::pending() }
}

/// A listener being set up: [`limits`](Self::limits), then
/// [`with_graceful_shutdown`](Self::with_graceful_shutdown), then `.await` it.
#[must_use = "a listener does nothing until it is awaited"]
pub struct Serve<S> {
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    signal: S,
}

impl<S> std::fmt::Debug for Serve<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve").field("listener", &self.listener).field("limits", &self.limits).finish()
    }
}

impl<S> Serve<S> {
    /// What a client is allowed (usually [`Runtime::server_limits`](crate::Runtime::server_limits),
    /// which holds the configuration file's `[server]`).
    ///
    /// ```no_run
    /// # async fn run(app: axum::Router, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    /// use orchestrate_runtime::server::{self, ServerLimits};
    /// server::serve(listener, app).limits(ServerLimits::DEFAULT.with_max_connections(2000)).await
    /// # }
    /// ```
    pub fn limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Stops accepting when `signal` completes, then waits for the requests in flight to be
    /// answered (idle keep-alive connections are closed at once; a connection still sending its
    /// head is closed by the header read timeout at the latest).
    ///
    /// ```no_run
    /// # async fn run(app: axum::Router, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    /// use orchestrate_runtime::{router, server};
    /// server::serve(listener, app).with_graceful_shutdown(router::shutdown_signal()).await
    /// # }
    /// ```
    pub fn with_graceful_shutdown<F>(self, signal: F) -> Serve<F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Serve { listener: self.listener, app: self.app, limits: self.limits, signal }
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// The operating system's, as `TcpListener::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl<S> IntoFuture for Serve<S>
where
    S: Future<Output = ()> + Send + 'static,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self))
    }
}

/// What every connection of one listener shares.
#[derive(Clone)]
struct Shared {
    app: Router,
    /// One place per request being answered.
    requests: Arc<Semaphore>,
    body_read_timeout: Duration,
}

async fn run<S>(serve: Serve<S>) -> io::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    let Serve { listener, app, limits, signal } = serve;
    let mut signal = std::pin::pin!(signal);
    let connections = Arc::new(Semaphore::new(limits.max_connections as usize));
    let shared = Shared {
        app,
        requests: Arc::new(Semaphore::new(limits.max_requests as usize)),
        body_read_timeout: limits.body_read_timeout,
    };
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let graceful = GracefulShutdown::new();
    loop {
        // A place first: over the cap, the next connection stays in the accept backlog.
        let place = match Arc::clone(&connections).try_acquire_owned() {
            Ok(place) => place,
            Err(_) => {
                metrics::server_refused("max_connections");
                tracing::warn!(max_connections = limits.max_connections, "at the connection cap; not accepting");
                tokio::select! {
                    biased;
                    () = &mut signal => break,
                    place = Arc::clone(&connections).acquire_owned() => match place {
                        Ok(place) => place,
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut signal => break,
            accepted = accept(&listener) => accepted,
        };
        let connection = http.serve_connection(TokioIo::new(stream), service(shared.clone(), peer));
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = watched.await {
                // A client that went away or was too slow: nothing to answer.
                if error.is_timeout() {
                    metrics::server_refused("header_timeout");
                }
                tracing::debug!(%peer, %error, "connection ended");
            }
            drop(place);
        });
    }
    drop(listener);
    tracing::info!(connections = graceful.count(), "listener closed; finishing the requests in flight");
    graceful.shutdown().await;
    Ok(())
}

/// The next connection; errors of one connection are skipped, others (out of file descriptors)
/// logged and retried after a pause, as `axum::serve` does.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // Answers are small and written at once: no reason to wait for more.
                let _ = stream.set_nodelay(true);
                return (stream, peer);
            }
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                tracing::error!(%error, "cannot accept a connection; retrying in 1s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// One connection's service: a place among the listener's requests or 503, the peer address and
/// the body read timeout in the extensions, then the application.
fn service(
    shared: Shared,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    http::Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Future<Output = Result<axum::response::Response, Infallible>> + Send,
> {
    hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        let shared = shared.clone();
        async move {
            let Ok(_place) = Arc::clone(&shared.requests).try_acquire_owned() else {
                metrics::server_refused("max_requests");
                return Ok(shed_response("this server is at its limit of requests in flight; retry shortly"));
            };
            let extensions = request.extensions_mut();
            extensions.insert(ConnectInfo(peer));
            extensions.insert(BodyReadTimeout(shared.body_read_timeout));
            shared.app.oneshot(request.map(axum::body::Body::new)).await
        }
    })
}
