//! The Checkout BFF written by hand, without orchestrate: the honest baseline of the load test
//! (`bench/load.sh`, BENCHMARKS.md).
//!
//! It serves `POST /checkout/summary` with the same contract JSON as `cargo run --example checkout`
//! and talks to the same downstream services the way a careful engineer would write it with axum,
//! reqwest and `tokio::try_join!`: one pooled reqwest client per service with the settings of
//! orchestrate's `HttpTransport`, each call with its own timeout, the whole graph under the 2 s
//! deadline, the dependency-driven schedule (tax starts the moment pricing is done, not when
//! shipping is), shipping optional (a failure becomes `null`, `partialData: true`,
//! `failedServices`), the allow-listed inbound headers forwarded, 502/504 on a required failure.
//! What it does not have: retries, circuit breakers, bulkheads, compile-time checks.
//!
//! ```text
//! cargo run --release --example mock_services &
//! cargo run --release --example baseline_checkout
//! curl -s -X POST http://127.0.0.1:3100/checkout/summary \
//!      -H 'content-type: application/json' -d '{"cartId":"c1","userId":"u1"}'
//! ```
//!
//! - `BASELINE_LISTEN` (default `127.0.0.1:3100`): where it listens.
//! - `ORCHESTRATE_<SERVICE>_URL` (e.g. `ORCHESTRATE_CART_URL`, default the `mock_services`
//!   ports `http://127.0.0.1:47101` to `47105`): where each service is.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

// ---- the contract ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummaryRequest {
    cart_id: String,
    #[allow(dead_code)]
    user_id: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cart {
    id: String,
    items: Vec<Item>,
    item_count: u32,
}

#[derive(Serialize, Deserialize)]
struct Item {
    sku: String,
    qty: u32,
    price: u64,
}

#[derive(Serialize)]
struct Items<'a> {
    items: &'a [Item],
}

#[derive(Deserialize)]
struct Availability {
    available: bool,
}

#[derive(Serialize, Deserialize)]
struct Pricing {
    subtotal: u64,
    currency: String,
}

#[derive(Serialize, Deserialize)]
struct Shipping {
    options: Vec<ShippingOption>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShippingOption {
    method: String,
    cost: u64,
    eta_days: u32,
}

#[derive(Serialize)]
struct TaxInput {
    subtotal: u64,
}

#[derive(Serialize, Deserialize)]
struct Tax {
    amount: u64,
    rate: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    cart: Cart,
    pricing: Pricing,
    shipping: Option<Shipping>,
    tax: Tax,
    total: u64,
    availability_confirmed: bool,
    partial_data: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failed_services: Vec<&'static str>,
}

// ---- downstream calls ------------------------------------------------------------------------

/// Headers passed on to every service (orchestrate's default allow-list).
const FORWARD: [&str; 4] = ["authorization", "traceparent", "tracestate", "x-request-id"];

/// One downstream service: its name, base URL and pooled client.
struct Service {
    name: &'static str,
    base_url: String,
    client: reqwest::Client,
}

struct Downstream {
    cart: Service,
    inventory: Service,
    pricing: Service,
    shipping: Service,
    tax: Service,
}

/// A failed call: which service, and whether it was a timeout.
struct Failed {
    service: &'static str,
    timed_out: bool,
}

impl Service {
    fn new(name: &'static str, default_port: u16) -> Result<Self, reqwest::Error> {
        let variable = format!("ORCHESTRATE_{}_URL", name.to_ascii_uppercase());
        let base_url = std::env::var(variable).unwrap_or_else(|_| format!("http://127.0.0.1:{default_port}"));
        // The settings of orchestrate's `HttpTransport` (48 idle connections for cart, whose
        // bulkhead allows 48 calls; 32 for the others).
        let idle = if name == "cart" { 48 } else { 32 };
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(idle)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Self { name, base_url: base_url.trim_end_matches('/').to_owned(), client })
    }

    /// Sends `method path` (with a JSON `body`) within `timeout` and decodes the answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
        timeout: Duration,
        forward: &HeaderMap,
    ) -> Result<T, Failed> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .timeout(timeout)
            .header(header::ACCEPT, "application/json")
            .headers(forward.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        let failed = |error: reqwest::Error| Failed { service: self.name, timed_out: error.is_timeout() };
        let response = request.send().await.and_then(reqwest::Response::error_for_status).map_err(failed)?;
        let bytes = response.bytes().await.map_err(failed)?;
        serde_json::from_slice(&bytes).map_err(|_| Failed { service: self.name, timed_out: false })
    }
}

// ---- the endpoint ----------------------------------------------------------------------------

async fn summary(
    State(downstream): State<Arc<Downstream>>,
    inbound: HeaderMap,
    Json(req): Json<SummaryRequest>,
) -> Response {
    let mut forward = HeaderMap::new();
    for name in FORWARD {
        for value in inbound.get_all(name) {
            forward.append(HeaderName::from_static(name), value.clone());
        }
    }
    let d = &*downstream;
    let graph = async {
        let path = format!("/carts/{}", percent_encoding::utf8_percent_encode(&req.cart_id, ID));
        let cart: Cart = d.cart.call(reqwest::Method::GET, &path, None::<&()>, ms(200), &forward).await?;
        let items = Items { items: &cart.items };
        let post = reqwest::Method::POST;
        let (availability, (pricing, tax), shipping) = tokio::try_join!(
            d.inventory.call::<Availability>(post.clone(), "/check-availability", Some(&items), ms(400), &forward),
            async {
                let pricing: Pricing =
                    d.pricing.call(post.clone(), "/calculate", Some(&items), ms(200), &forward).await?;
                let input = TaxInput { subtotal: pricing.subtotal };
                let tax: Tax = d.tax.call(post.clone(), "/calculate", Some(&input), ms(300), &forward).await?;
                Ok((pricing, tax))
            },
            async {
                let shipping = d.shipping.call::<Shipping>(post.clone(), "/estimate", Some(&items), ms(500), &forward);
                Ok(shipping.await.ok())
            },
        )?;
        let failed_services = if shipping.is_none() { vec!["shipping"] } else { Vec::new() };
        Ok::<_, Failed>(Summary {
            total: pricing.subtotal + tax.amount,
            availability_confirmed: availability.available,
            partial_data: !failed_services.is_empty(),
            cart,
            pricing,
            shipping,
            tax,
            failed_services,
        })
    };
    match tokio::time::timeout(ms(2000), graph).await {
        Ok(Ok(summary)) => {
            let partial = summary.partial_data;
            let mut response = Json(summary).into_response();
            if partial {
                response.headers_mut().insert("x-partial-data", HeaderValue::from_static("true"));
                response.headers_mut().insert("x-failed-services", HeaderValue::from_static("shipping"));
            }
            response
        }
        Ok(Err(failed)) if failed.timed_out => failure(StatusCode::GATEWAY_TIMEOUT, &[failed.service]),
        Ok(Err(failed)) => failure(StatusCode::BAD_GATEWAY, &[failed.service]),
        Err(_deadline) => failure(StatusCode::GATEWAY_TIMEOUT, &[]),
    }
}

/// Path segments: everything but `A-Z a-z 0-9 - _ ~` is encoded, as orchestrate does.
const ID: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// The design's error body.
fn failure(status: StatusCode, services: &[&str]) -> Response {
    let (code, message) = if status == StatusCode::GATEWAY_TIMEOUT {
        ("GATEWAY_TIMEOUT", "a service did not answer in time")
    } else {
        ("DOWNSTREAM_FAILURE", "one or more services unavailable")
    };
    let body = serde_json::json!({"error": {"code": code, "message": message, "failedServices": services, "partialData": false}});
    (status, Json(body)).into_response()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let listen = std::env::var("BASELINE_LISTEN").unwrap_or_else(|_| "127.0.0.1:3100".to_owned());
    // reqwest is built with rustls and no default provider, as orchestrate builds it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let downstream = Arc::new(Downstream {
        cart: Service::new("cart", 47101)?,
        inventory: Service::new("inventory", 47102)?,
        pricing: Service::new("pricing", 47103)?,
        shipping: Service::new("shipping", 47104)?,
        tax: Service::new("tax", 47105)?,
    });
    for service in [&downstream.cart, &downstream.inventory, &downstream.pricing, &downstream.shipping, &downstream.tax]
    {
        println!("  {:<9} → {}", service.name, service.base_url);
    }
    let app = axum::Router::new().route("/checkout/summary", axum::routing::post(summary)).with_state(downstream);
    let listener =
        tokio::net::TcpListener::bind(&listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    println!("hand-written checkout BFF listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).with_graceful_shutdown(orchestrate::router::shutdown_signal()).await?;
    Ok(())
}
