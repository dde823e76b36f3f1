//! The cache of an endpoint's assembled answers (`#[endpoint(GET .., cache(..))]`): read before
//! the graph runs, with `ETag`, `If-None-Match` (304 without running the graph), `Age` and
//! `Cache-Control` on the answer.
//!
//! The key is the endpoint, the request's path, query and body, and the caller's identity (the
//! `authorization` and `cookie` headers), unless `cache(key = ..)` says otherwise; an answer with
//! a caller's identity is `private`, one without `public`. Only complete answers (200, not
//! partial) are stored. A stale answer is served at once while one refresh runs the graph again
//! in a task of its own.

use super::{Answered, Extract, Inbound};
use crate::Runtime;
use crate::cache::{Filled, Flight, Freshness, Key, Stored};
use crate::context::RequestContext;
use crate::service::CachePolicy;
use crate::telemetry::Correlation;
use crate::telemetry::metrics::{self, CacheResult};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use tokio::time::Instant;

/// The headers that say who is asking: an answer keyed by them is that caller's only.
const IDENTITY: [header::HeaderName; 2] = [header::AUTHORIZATION, header::COOKIE];

pub(super) async fn answer<E>(
    runtime: &Runtime,
    uri: &http::Uri,
    inbound: Inbound,
    inputs: E::Inputs,
    correlation: &Correlation,
    policy: CachePolicy,
) -> Answered
where
    E: Extract + Serialize,
{
    let identity: Vec<(&str, &[u8])> = IDENTITY
        .iter()
        .flat_map(|name| inbound.headers().get_all(name).iter().map(move |v| (name.as_str(), v.as_bytes())))
        .collect();
    let private = !identity.is_empty();
    let key = match E::cache_key(&inputs) {
        Some(named) => Key::named(E::SPEC.name, &named),
        None => Key::of_inbound(
            E::SPEC.name,
            uri.path_and_query().map_or("/", |p| p.as_str()),
            &identity,
            inbound.raw_body(),
        ),
    };
    let tags = E::cache_tags(&inputs);
    let if_none_match = inbound.headers().get(header::IF_NONE_MATCH).cloned();
    let cache = runtime.cache();
    let name = E::SPEC.name;
    let now = Instant::now();
    let stored = match cache.get(&key).await {
        Ok(stored) => stored,
        Err(_) => {
            metrics::cache(name, name, CacheResult::Error);
            None
        }
    };
    if let Some(stored) = stored {
        match stored.freshness(now) {
            Freshness::Fresh => {
                metrics::cache(name, name, CacheResult::Hit);
                return answered(respond(&stored, now, if_none_match.as_ref(), private));
            }
            Freshness::Stale => {
                metrics::cache(name, name, CacheResult::Stale);
                if let Flight::Lead(tx) = cache.flight(key) {
                    let (runtime, inbound, trace) = (runtime.clone(), inbound.clone(), correlation.trace().clone());
                    tokio::spawn(async move {
                        let filled = refresh::<E>(&runtime, inbound, trace, key, tags, policy).await;
                        runtime.cache().land(&key, &tx, filled);
                    });
                }
                return answered(respond(&stored, now, if_none_match.as_ref(), private));
            }
            Freshness::Expired => {}
        }
    }
    metrics::cache(name, name, CacheResult::Miss);
    let context = RequestContext::from_headers(inbound.into_headers()).with_trace(correlation.trace().clone());
    match Box::pin(E::execute(runtime, inputs, context)).await {
        Ok(mut outcome) => {
            let timeline = Some(std::mem::take(&mut outcome.timeline));
            let partial = outcome.is_partial();
            if partial {
                // A partial answer is never stored: the next request tries the calls again.
                return Answered { response: outcome.into_response(), timeline, partial };
            }
            let body = serde_json::to_vec(&outcome.body());
            let Ok(body) = body else {
                return Answered { response: outcome.into_response(), timeline, partial };
            };
            let stored = Stored::new(Bytes::from(body), policy, tags);
            cache.put(key, stored.clone()).await;
            Answered { response: respond(&stored, now, if_none_match.as_ref(), private), timeline, partial }
        }
        Err(mut failure) => {
            let timeline = Some(failure.take_timeline());
            Answered { response: failure.into_response(), timeline, partial: false }
        }
    }
}

fn answered(response: Response) -> Answered {
    Answered { response, timeline: None, partial: false }
}

/// Runs the graph again for a stale entry and stores a complete answer.
async fn refresh<E>(
    runtime: &Runtime,
    inbound: Inbound,
    trace: crate::telemetry::TraceContext,
    key: Key,
    tags: Vec<String>,
    policy: CachePolicy,
) -> Filled
where
    E: Extract + Serialize,
{
    let failed = |kind| Filled::Failed { kind, status: None, retry_after: None, attempts: 0 };
    let Ok(inputs) = E::extract(&inbound) else { return failed(crate::CallErrorKind::InvalidInput) };
    let context = RequestContext::from_headers(inbound.into_headers()).with_trace(trace);
    let body = match Box::pin(E::execute(runtime, inputs, context)).await {
        Ok(outcome) if !outcome.is_partial() => match serde_json::to_vec(&outcome.body()) {
            Ok(body) => Bytes::from(body),
            Err(_) => return failed(crate::CallErrorKind::Encode),
        },
        // The stale answer keeps answering until its `stale` ends.
        Ok(_) => return failed(crate::CallErrorKind::Custom),
        Err(failure) => {
            return failed(failure.failed_call().map_or(crate::CallErrorKind::DeadlineExceeded, |c| c.kind));
        }
    };
    runtime.cache().put(key, Stored::new(body.clone(), policy, tags)).await;
    Filled::Answered { body, attempts: 0, status: Some(200) }
}

/// The stored answer, or 304 when the client has it (`If-None-Match`).
fn respond(stored: &Stored, now: Instant, if_none_match: Option<&HeaderValue>, private: bool) -> Response {
    let etag = stored.etag_header();
    let age = stored.age(now);
    let left = stored.policy.ttl.saturating_sub(age).as_secs();
    let scope = if private { "private" } else { "public" };
    let control =
        HeaderValue::from_str(&format!("{scope}, max-age={left}")).unwrap_or(HeaderValue::from_static("no-cache"));
    let matches = if_none_match.and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.trim() == "*"
            || v.split(',').any(|tag| tag.trim().trim_start_matches("W/") == etag.to_str().unwrap_or_default())
    });
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], stored.body.clone())
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag);
    headers.insert(header::CACHE_CONTROL, control);
    headers.insert(header::AGE, HeaderValue::from(age.as_secs()));
    response
}
