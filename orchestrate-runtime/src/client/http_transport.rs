//! The default transport: a pooled hyper client per service that reads at most the service's body
//! cap.
//!
//! hyper's own connection-pooling client (`hyper-util`'s `legacy::Client`, the one `reqwest` is
//! built on) takes the `http::Request` the service client built as it is: no second request type,
//! no URL written out and parsed again, no redirect or proxy machinery a BFF does not want. HTTPS
//! goes through `hyper-rustls` (with the `tls` feature) with the operating system's root
//! certificates.

use crate::error::{CallError, CallErrorKind};
use crate::service::ServiceSpec;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

#[cfg(feature = "tls")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "tls"))]
type Connector = HttpConnector;

/// HTTP/1.1 keep-alive (HTTP/2 where TLS negotiates it) to one service, with its own pool.
///
/// The pool keeps up to a fixed `max_in_flight` idle connections (64 with the adaptive limit), so
/// a burst that the limit admits finds warm connections afterwards. A service declared with
/// `http2 = true` is spoken to in HTTP/2 only (h2c with prior knowledge over `http://`), its calls
/// multiplexed over one kept-alive connection.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: Client<Connector, Full<Bytes>>,
    max_body: u64,
}

impl HttpTransport {
    /// A transport configured from the service's policies.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built: with the `tls` feature, when the operating system's
    /// root certificates cannot be read.
    pub fn for_service(spec: &ServiceSpec) -> Result<Self, CallError> {
        let idle = spec.max_in_flight.fixed().map_or(64, |n| n as usize);
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_keepalive(Some(Duration::from_secs(60)));
        let connector = connector(http, spec.http2)?;
        let mut builder = Client::builder(TokioExecutor::new());
        builder.timer(TokioTimer::new()).pool_timer(TokioTimer::new());
        builder.pool_max_idle_per_host(idle).pool_idle_timeout(Duration::from_secs(90));
        if spec.http2 {
            // One multiplexed connection carries every call; keep it alive through idle periods
            // so the next burst does not pay a handshake.
            builder
                .http2_only(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .http2_keep_alive_while_idle(true);
        }
        Ok(Self { client: builder.build(connector), max_body: spec.max_body })
    }
}

#[cfg(feature = "tls")]
fn connector(http: HttpConnector, http2_only: bool) -> Result<Connector, CallError> {
    crate::tls::install_tls_provider();
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| CallError::with_source(CallErrorKind::Connect, e))?
        .https_or_http();
    Ok(if http2_only {
        builder.enable_http2().wrap_connector(http)
    } else {
        builder.enable_all_versions().wrap_connector(http)
    })
}

#[cfg(not(feature = "tls"))]
fn connector(http: HttpConnector, _http2_only: bool) -> Result<Connector, CallError> {
    Ok(http)
}

fn classify(error: hyper_util::client::legacy::Error) -> CallError {
    let kind = if error.is_connect() { CallErrorKind::Connect } else { CallErrorKind::Transport };
    // The error may carry the address; keep it for logs (error bodies never show sources).
    CallError::with_source(kind, error)
}

impl tower::Service<http::Request<Bytes>> for HttpTransport {
    type Response = http::Response<Bytes>;
    type Error = CallError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, CallError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Bytes>) -> Self::Future {
        let response = self.client.request(request.map(Full::new));
        let max_body = self.max_body;
        Box::pin(async move {
            let response = response.await.map_err(classify)?;
            let declared = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > max_body) {
                return Err(CallError::new(CallErrorKind::BodyTooLarge));
            }
            let (parts, body) = response.into_parts();
            let limit = usize::try_from(max_body).unwrap_or(usize::MAX);
            let body = match Limited::new(body, limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) if error.is::<LengthLimitError>() => {
                    return Err(CallError::new(CallErrorKind::BodyTooLarge));
                }
                Err(error) => return Err(CallError::with_source(CallErrorKind::Transport, error)),
            };
            Ok(http::Response::from_parts(parts, body))
        })
    }
}
