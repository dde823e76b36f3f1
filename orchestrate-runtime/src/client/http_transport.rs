//! The default transport: a pooled `reqwest` client per service that reads at most the service's
//! body cap.

use crate::error::{CallError, CallErrorKind};
use crate::service::ServiceSpec;
use bytes::{Bytes, BytesMut};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// HTTP/1.1 keep-alive (HTTP/2 where TLS negotiates it) to one service, with its own pool.
///
/// The pool keeps up to a fixed `max_in_flight` idle connections (64 with the adaptive limit), so a burst that
/// the bulkhead admits finds warm connections afterwards. A service declared with `http2 = true`
/// is spoken to in HTTP/2 only (h2c with prior knowledge over `http://`), its calls multiplexed
/// over one kept-alive connection.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    max_body: u64,
}

impl HttpTransport {
    /// A transport configured from the service's policies.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built (no TLS backend available, for instance).
    pub fn for_service(spec: &ServiceSpec) -> Result<Self, reqwest::Error> {
        let idle = spec.max_in_flight.fixed().map_or(64, |n| n as usize);
        let mut builder = reqwest::Client::builder()
            .pool_max_idle_per_host(idle)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if spec.http2 {
            // One multiplexed connection carries every call; keep it alive through idle periods so
            // the next burst does not pay a handshake.
            builder = builder
                .http2_prior_knowledge()
                .http2_keep_alive_interval(Duration::from_secs(30))
                .http2_keep_alive_while_idle(true);
        }
        let client = builder.build()?;
        Ok(Self { client, max_body: spec.max_body })
    }

    /// A transport over an existing `reqwest` client.
    pub fn from_client(client: reqwest::Client, max_body: u64) -> Self {
        Self { client, max_body }
    }
}

fn classify(error: reqwest::Error) -> CallError {
    let kind = if error.is_connect() {
        CallErrorKind::Connect
    } else if error.is_timeout() {
        CallErrorKind::Timeout
    } else {
        CallErrorKind::Transport
    };
    // The reqwest error carries the URL; keep it for logs (error bodies never show sources).
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
        let client = self.client.clone();
        let max_body = self.max_body;
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| CallError::with_source(CallErrorKind::InvalidInput, e))?;
            let mut response = client.execute(request).await.map_err(classify)?;
            if response.content_length().is_some_and(|len| len > max_body) {
                return Err(CallError::new(CallErrorKind::BodyTooLarge));
            }
            let status = response.status();
            let headers = std::mem::take(response.headers_mut());
            let version = response.version();
            let mut body = BytesMut::with_capacity(response.content_length().map_or(1024, |n| n as usize));
            while let Some(chunk) = response.chunk().await.map_err(classify)? {
                if (body.len() + chunk.len()) as u64 > max_body {
                    return Err(CallError::new(CallErrorKind::BodyTooLarge));
                }
                body.extend_from_slice(&chunk);
            }
            let mut out = http::Response::new(body.freeze());
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            *out.version_mut() = version;
            Ok(out)
        })
    }
}
