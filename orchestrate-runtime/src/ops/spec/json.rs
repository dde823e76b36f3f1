//! `/_orchestrate.json`: the serde views of the document (endpoints with their resolved call
//! sequence and Mermaid graph, services with their effective policies and host only) and [`json`],
//! which serializes them. The page reads the same service views.

use super::nodes;
use crate::Runtime;
use crate::service::{BreakerPolicy, Concurrency, HedgeBudget, RetryBudget, RetryPolicy, host_of};
use crate::spec::EndpointSpec;
use orchestrate_core::sequence::{self, Fallback, Row};
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Serialize)]
struct Document<'a> {
    endpoints: Vec<EndpointView<'a>>,
    services: Vec<ServiceView<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EndpointView<'a> {
    #[serde(flatten)]
    spec: &'a EndpointSpec,
    call_sequence: Vec<RowView>,
    mermaid: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RowView {
    order: String,
    stage: usize,
    parallel: bool,
    field: String,
    service: String,
    request: String,
    when: Option<String>,
    required: bool,
    timeout_ms: u64,
    retries: String,
    /// `failRequest`, `null` or `fallback`.
    on_failure: &'static str,
    fallback: Option<String>,
}

impl From<Row> for RowView {
    fn from(row: Row) -> Self {
        let order = row.order();
        let (on_failure, fallback) = match row.fallback {
            Fallback::FailRequest => ("failRequest", None),
            Fallback::Null => ("null", None),
            Fallback::Value(expr) => ("fallback", Some(expr)),
        };
        let mut request = row.request;
        if let Some((collection, concurrency)) = row.for_each {
            let _ = write!(request, " for each item of {collection} ({concurrency} at a time)");
        }
        Self {
            order,
            stage: row.stage,
            parallel: row.parallel,
            field: row.field,
            service: row.service,
            request,
            when: row.when,
            required: row.required,
            timeout_ms: row.timeout_ms,
            retries: row.retries,
            on_failure,
            fallback,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ServiceView<'a> {
    pub(super) name: &'a str,
    /// Host and port of the effective base URL.
    pub(super) host: &'a str,
    pub(super) retry: RetryPolicy,
    pub(super) breaker: Option<BreakerPolicy>,
    pub(super) max_in_flight: Concurrency,
    pub(super) max_body_bytes: u64,
    pub(super) retry_budget: RetryBudget,
    pub(super) hedge_budget: HedgeBudget,
    pub(super) http2: bool,
    pub(super) forwarded_headers: Vec<&'a str>,
}

pub(super) fn services(runtime: &Runtime) -> Vec<ServiceView<'_>> {
    runtime
        .services()
        .iter()
        .map(|client| {
            let spec = client.spec();
            ServiceView {
                name: client.name(),
                host: host_of(client.base_url()),
                retry: spec.retry,
                breaker: spec.breaker,
                max_in_flight: spec.max_in_flight,
                max_body_bytes: spec.max_body,
                retry_budget: spec.retry_budget,
                hedge_budget: spec.hedge_budget,
                http2: spec.http2,
                forwarded_headers: client.forwarded_headers().iter().map(http::HeaderName::as_str).collect(),
            }
        })
        .collect()
}

/// The body of `/_orchestrate.json`: `{"endpoints":[..],"services":[..]}`.
///
/// Each endpoint is its [`EndpointSpec`] (see its JSON form) plus `callSequence` (the table's
/// rows, retries resolved) and `mermaid` (the graph); each service has its effective policies and
/// `host`.
///
/// ```
/// # use orchestrate_runtime::{Runtime, ServiceSpec};
/// const SERVICES: &[ServiceSpec] = &[ServiceSpec::new("cart", "http://cart.internal:8080/v1")];
/// let runtime = Runtime::builder(SERVICES).read_env(false).build().unwrap();
/// let json: serde_json::Value = serde_json::from_str(&orchestrate_runtime::ops::spec::json(&runtime, &[])).unwrap();
/// assert_eq!(json["services"][0]["host"], "cart.internal:8080");
/// assert_eq!(json["services"][0]["retry"]["attempts"], 1);
/// ```
pub fn json(runtime: &Runtime, endpoints: &[&'static EndpointSpec]) -> String {
    let document = Document {
        endpoints: endpoints
            .iter()
            .map(|&spec| {
                let nodes = nodes(spec, Some(runtime));
                EndpointView {
                    spec,
                    call_sequence: sequence::rows(&nodes).into_iter().map(RowView::from).collect(),
                    mermaid: sequence::mermaid(&nodes),
                }
            })
            .collect(),
        services: services(runtime),
    };
    // Plain data with string keys: serializing cannot fail.
    serde_json::to_string_pretty(&document).unwrap_or_default()
}
