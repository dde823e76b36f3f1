//! Serving endpoints with axum: the handler every generated route uses, the JSON 404/405
//! fallbacks, and graceful shutdown.
//!
//! `#[orchestrate::api] mod checkout { .. }` generates `checkout::router(&runtime)`, a plain
//! `axum::Router` with one route per endpoint, each served by [`serve`]. Compose it like any
//! router (`merge`, `nest`, `layer`), then pass the whole application through [`app`] to give
//! unknown routes and wrong methods JSON answers.

mod cache;
mod extract;
mod shutdown;
mod versions;

pub use extract::{BodyReadTimeout, DEFAULT_MAX_BODY, FromParam, Inbound, InputError, Location};
pub use shutdown::shutdown_signal;
pub use versions::{answered as answered_version, choose as choose_version};

use crate::Runtime;
use crate::auth::{Auth, AuthFailure, Reason};
use crate::context::RequestContext;
use crate::endpoint::Endpoint;
use crate::idempotency::{Begin, Claim, Stored};
use crate::recent::Served;
use crate::spec::InputSource;
use crate::telemetry::{Correlation, REQUEST_ID, TRACERESPONSE, metrics, server_timing};
use crate::timeline::Timeline;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::HeaderName;
use http::{StatusCode, header};
use orchestrate_core::policy::idempotency;
use serde::Serialize;
use std::future::Future;
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

/// Implemented by `#[endpoint]`: reads the endpoint's inputs from a request. Used by the
/// generated code; not for implementing by hand.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be served: it is not an orchestrate endpoint",
    note = "annotate the struct with `#[endpoint(METHOD \"/path\", timeout = \"..\")]`"
)]
pub trait Extract: Endpoint {
    /// Largest request body accepted, in bytes.
    const MAX_BODY: u64 = DEFAULT_MAX_BODY;

    /// Builds the inputs, or the rejection naming the field at fault.
    ///
    /// # Errors
    ///
    /// The [`InputError`] of the first input that cannot be read.
    fn extract(inbound: &Inbound) -> Result<Self::Inputs, InputError>;

    /// The endpoint cache's key for these inputs (`cache(key = ..)`), if it narrows the default.
    fn cache_key(_inputs: &Self::Inputs) -> Option<String> {
        None
    }

    /// The endpoint cache's tags for these inputs (`cache(tags = [..])`).
    fn cache_tags(_inputs: &Self::Inputs) -> Vec<String> {
        Vec::new()
    }
}

/// The axum handler of endpoint `E`: reads the inputs (rejecting bad ones before any downstream
/// call), runs the graph, and answers with the assembled JSON or the designed failure.
///
/// Around that, for every request: the client's `x-request-id` (or a generated one) and W3C trace
/// context are continued into every downstream call ([`Correlation`]); the response carries the
/// `x-request-id`, the trace id in `traceresponse` (W3C Trace Context Level 2) and, when the
/// runtime has it on, `Server-Timing` (successes and failures alike); the whole runs in a
/// `request` span (`method`, `route`, `endpoint`, `request_id`, `trace_id`, `status`, `partial`)
/// with a `call` span per downstream call; the request is counted in the [`metrics`] by its route
/// template; and, when the graph ran, the run's timeline is kept among the endpoint's
/// [recent requests](crate::recent) (unless recording is off).
// Not an `async fn`: the written `+ Send` is checked here, once, rather than at every route.
#[allow(clippy::manual_async_fn)]
pub fn serve<E>(State(runtime): State<Runtime>, request: Request) -> impl Future<Output = Response> + Send
where
    E: Extract + Serialize,
{
    async move {
        let started = Instant::now();
        let _in_flight = metrics::InFlight::request(E::SPEC);
        let (mut parts, body) = request.into_parts();
        let correlation = Correlation::from_inbound(&mut parts.headers);
        let span = tracing::info_span!(
            "request",
            method = E::SPEC.method.as_str(),
            route = E::SPEC.route,
            endpoint = E::SPEC.name,
            request_id = correlation.request_id().to_str().unwrap_or_default(),
            trace_id = %correlation.trace().trace_id(),
            status = Empty,
            partial = Empty,
        );
        #[cfg(feature = "otel")]
        let correlation = crate::telemetry::otel::attach(&span, correlation);
        let answered = answer::<E>(&runtime, parts, body, &correlation).instrument(span.clone()).await;
        let mut response = answered.response;
        let status = response.status().as_u16();
        let headers = response.headers_mut();
        headers.insert(HeaderName::from_static(REQUEST_ID), correlation.request_id().clone());
        headers.insert(HeaderName::from_static(TRACERESPONSE), correlation.traceresponse());
        // One clock read for the end: the metrics' latency and the recent request's duration.
        let ended = Instant::now();
        let duration = ended.saturating_duration_since(started);
        if let Some(timeline) = &answered.timeline {
            if runtime.server_timing() {
                headers.insert(HeaderName::from_static("server-timing"), server_timing(timeline));
            }
            let request_id = correlation.request_id().as_bytes();
            let served = Served::new(timeline, status, request_id, correlation.trace().trace_id(), started, duration)
                .with_partial(answered.partial);
            runtime.recent().record(E::SPEC, &served, ended);
        }
        span.record("status", status);
        span.record("partial", answered.partial);
        metrics::request(E::SPEC, status, duration);
        response
    }
}

/// A response and what `serve` adds to it.
pub(crate) struct Answered {
    pub(crate) response: Response,
    /// The run's timeline, when the graph ran (moved out of the outcome or failure: no copy).
    pub(crate) timeline: Option<Timeline>,
    pub(crate) partial: bool,
}

async fn answer<E>(
    runtime: &Runtime,
    mut parts: http::request::Parts,
    body: axum::body::Body,
    correlation: &Correlation,
) -> Answered
where
    E: Extract + Serialize,
{
    let rejected = |response: Response| Answered { response, timeline: None, partial: false };
    // The token first: a request that is not authenticated reads no body and calls nothing.
    let claims = match E::SPEC.auth {
        Auth::None => None,
        Auth::Jwt => match runtime.auth() {
            Some(auth) => match auth.verify(&parts.headers).await {
                Ok(claims) => Some(claims),
                Err(failure) => return rejected(failure.into_response()),
            },
            None => return rejected(AuthFailure::new(Reason::NoKeys).counted().into_response()),
        },
    };
    // Before the body is read and before anything downstream.
    // The user of the per-user limits is the verified token's subject when there is one.
    let subject = claims.as_ref().and_then(|c| c.raw("sub")).and_then(serde_json::Value::as_str);
    if let Err(limited) = runtime.rate_limiter().check_as(E::SPEC, &parts, subject).await {
        return rejected(limited.into_response());
    }
    let reads_body = E::SPEC.inputs.iter().any(|i| matches!(i.source, InputSource::Body));
    let body_timeout =
        parts.extensions.get::<BodyReadTimeout>().map_or(runtime.server_limits().body_read_timeout, |limit| limit.0);
    let inbound = match Inbound::read(&mut parts, body, reads_body, E::MAX_BODY, body_timeout).await {
        Ok(inbound) => inbound.with_claims(claims),
        Err(rejection) => return rejected(rejection.into_response()),
    };
    let inputs = match E::extract(&inbound) {
        Ok(inputs) => inputs,
        Err(rejection) => return rejected(rejection.into_response()),
    };
    if let Some(policy) = E::SPEC.cache {
        return cache::answer::<E>(runtime, &parts.uri, inbound, inputs, correlation, policy).await;
    }
    // A client's retry with the key of an answered request gets its response; the first runs.
    let mut claim = None;
    if E::SPEC.idempotent_requests
        && let Some(key) = inbound.headers().get(idempotency::HEADER).cloned()
    {
        if !crate::idempotency::valid_key(key.as_bytes()) {
            return rejected(plain_error(StatusCode::BAD_REQUEST, "INVALID_IDEMPOTENCY_KEY", idempotency::INVALID_KEY));
        }
        let key = String::from_utf8_lossy(key.as_bytes()).into_owned();
        let fp = crate::idempotency::fingerprint(&parts.method, &parts.uri, inbound.raw_body());
        // Running at most the endpoint's timeout and a minute for its compensations.
        let running = E::SPEC.timeout + std::time::Duration::from_secs(60);
        match runtime.idempotency().begin_or_wait(E::SPEC.name, &key, fp, running, E::SPEC.idempotent_wait).await {
            Begin::Run(run) => claim = Some(run),
            Begin::Replay(stored) => return rejected(replay(stored)),
            Begin::InProgress => {
                return rejected(plain_error(StatusCode::CONFLICT, "REQUEST_IN_PROGRESS", idempotency::IN_PROGRESS));
            }
            Begin::Mismatch => {
                let status = StatusCode::UNPROCESSABLE_ENTITY;
                return rejected(plain_error(status, "IDEMPOTENCY_KEY_REUSED", idempotency::KEY_REUSED));
            }
            Begin::Unavailable => {}
        }
    }
    let answered = run::<E>(runtime, inbound, inputs, correlation).await;
    match claim {
        Some(claim) => keep(claim, answered).await,
        None => answered,
    }
}

/// Keeps the response of a claimed key for replay, except a shed (503) or rate-limited (429)
/// one, which ran nothing a retry would repeat: then the claim is released.
async fn keep(claim: Claim, answered: Answered) -> Answered {
    let status = answered.response.status();
    if matches!(status, StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS) {
        return answered;
    }
    let (parts, body) = answered.response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Answered { response: parts.status.into_response(), ..answered };
    };
    let headers = idempotency::REPLAYED_HEADERS
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), parts.headers.get(*name)?.to_str().ok()?.to_owned())))
        .collect();
    let stored = Stored { status: status.as_u16(), headers, body: String::from_utf8_lossy(&bytes).into_owned() };
    claim.finish(stored, idempotency::DEFAULT_TTL).await;
    Answered { response: Response::from_parts(parts, axum::body::Body::from(bytes)), ..answered }
}

/// A kept response, marked as replayed.
fn replay(stored: Stored) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), http::HeaderValue::from_str(value)) {
            headers.insert(name, value);
        }
    }
    headers.insert(HeaderName::from_static(idempotency::REPLAYED), http::HeaderValue::from_static("true"));
    response
}

/// Runs the graph and turns its outcome or failure into the response.
async fn run<E>(runtime: &Runtime, inbound: Inbound, inputs: E::Inputs, correlation: &Correlation) -> Answered
where
    E: Extract + Serialize,
{
    let context = RequestContext::from_headers(inbound.into_headers()).with_trace(correlation.trace().clone());
    // Boxed once here: the graph's future holds every call's future (kilobytes), and the request's
    // future is moved several times on its way through axum and hyper; one allocation costs less
    // than copying it at each move, and the graph itself stays unboxed for code that runs it
    // directly.
    match Box::pin(E::execute(runtime, inputs, context)).await {
        Ok(mut outcome) => {
            let timeline = Some(std::mem::take(&mut outcome.timeline));
            let partial = outcome.is_partial();
            Answered { response: outcome.into_response(), timeline, partial }
        }
        Err(mut failure) => {
            let timeline = Some(failure.take_timeline());
            Answered { response: failure.into_response(), timeline, partial: false }
        }
    }
}

/// Completes an application: unknown routes get a JSON 404 and known routes with another method
/// a JSON 405 (with `Allow`), in the same error shape as every other answer.
///
/// ```
/// # fn endpoints() -> axum::Router { axum::Router::new() }
/// let app = orchestrate_runtime::router::app(endpoints());
/// # let _: axum::Router = app;
/// ```
pub fn app(router: axum::Router) -> axum::Router {
    router.method_not_allowed_fallback(method_not_allowed).fallback(not_found)
}

/// `{"error":{"code","message"}}`: the shape of errors that involve no downstream service.
fn plain_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn not_found(request: Request) -> Response {
    plain_error(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("no endpoint at `{}`", request.uri().path()))
}

async fn method_not_allowed(request: Request) -> Response {
    let message = format!("`{}` does not accept {}", request.uri().path(), request.method());
    let mut response = plain_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", &message);
    // axum sets `Allow` on its own 405; keep it when the fallback runs inside the method router.
    if let Some(allow) = request.headers().get(header::ALLOW) {
        response.headers_mut().insert(header::ALLOW, allow.clone());
    }
    response
}
