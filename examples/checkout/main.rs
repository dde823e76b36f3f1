//! The Checkout BFF of the design template, with embedded mock downstream services.
//!
//! ```text
//! cargo run --example checkout
//! curl -s -X POST http://127.0.0.1:3000/checkout/summary \
//!      -H 'content-type: application/json' -d '{"cartId":"c1","userId":"u1"}'
//! curl -s -X POST http://127.0.0.1:3000/checkout/place-order -H 'idempotency-key: order-1' \
//!      -H 'content-type: application/json' -d '{"cartId":"c1","userId":"u1","paymentMethod":"card"}'
//! ```
//!
//! - `ORCHESTRATE_LISTEN` (default `127.0.0.1:3000`): where the BFF listens.
//! - `ORCHESTRATE_<SERVICE>_URL` (e.g. `ORCHESTRATE_CART_URL`): call that URL instead of the
//!   embedded mock of the service.
//! - `ORCHESTRATE_MOCK_FAIL` (e.g. `shipping` or `shipping,payment`): those embedded mocks answer
//!   500, to watch the place-order saga undo itself and the summary go partial.
//! - `ORCHESTRATE_MOCK_LATENCY_SCALE` (default `1`): multiplies the mocks' template latencies
//!   (`0` for zero-latency load tests).
//! - `RUST_LOG` (default `info`): which spans and events are logged, one structured line each
//!   (`RUST_LOG=orchestrate_runtime=debug` adds every attempt; `warn` for load tests).
//! - `ORCHESTRATE_SERVER_TIMING` (`1`/`0`): the `Server-Timing` header (default: on in debug builds).
//!
//! - `ORCHESTRATE_OPS_LISTEN` (e.g. `127.0.0.1:9000`): serve the operations endpoints there, on a
//!   second listener, instead of beside the API.
//! - `ORCHESTRATE_CONFIG`: a configuration file; its `[server]` table sets the listener's limits on
//!   slow and abusive clients (header and body read timeouts, connections, requests at once).
//!
//! The operations endpoints — `/metrics` (Prometheus), `/health`, `/_orchestrate` (the endpoints'
//! living documentation and their recent requests, as waterfalls; `/_orchestrate/requests.json`)
//! — are on the API's listener unless `ORCHESTRATE_OPS_LISTEN` names an internal one.
//!
//! The BFF is served by `orchestrate::server` (not `axum::serve`): header and body read timeouts,
//! a cap on connections and on requests at once (see the runtime's `server_limits`).

mod app;
mod contract;
mod mocks;

use orchestrate::{Runtime, env_var_name};
use std::error::Error;
use std::future::IntoFuture;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Where the operations endpoints listen when they are not beside the API.
const OPS_LISTEN_ENV: &str = "ORCHESTRATE_OPS_LISTEN";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_span_events(FmtSpan::CLOSE)
        .init();
    orchestrate::ops::metrics::install()?;
    let listen = std::env::var("ORCHESTRATE_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let scale: f64 = match std::env::var("ORCHESTRATE_MOCK_LATENCY_SCALE") {
        Ok(text) => {
            text.parse().map_err(|_| format!("ORCHESTRATE_MOCK_LATENCY_SCALE must be a number, got `{text}`"))?
        }
        Err(_) => 1.0,
    };

    let mocks = mocks::Mocks::start(scale).await?;
    if let Ok(text) = std::env::var(mocks::FAIL_ENV) {
        for service in mocks::parse_fail(&text)? {
            mocks.get(service).set_fault(mocks::Fault::Status(500));
            println!("  {service:<9} answers 500 ({})", mocks::FAIL_ENV);
        }
    }
    // `endpoints` re-checks every endpoint's worst case against the configured policies.
    let mut builder = Runtime::builder(app::services::ALL).endpoints(app::checkout::ENDPOINTS);
    for service in mocks::SERVICES {
        // `ORCHESTRATE_<SERVICE>_URL`, when set, takes precedence over the embedded mock.
        match std::env::var(env_var_name(service)) {
            Ok(url) => println!("  {service:<9} → {url} (from {})", env_var_name(service)),
            Err(_) => {
                builder = builder.base_url(service, mocks.url(service));
                println!(
                    "  {service:<9} → {} (embedded mock, {:?})",
                    mocks.url(service),
                    contract::latency(service).mul_f64(scale)
                );
            }
        }
    }
    let runtime = builder.build()?;
    // Sagas a crashed instance left half done (shared Redis store): complete their compensations.
    tokio::spawn({
        let runtime = runtime.clone();
        async move {
            let resumed = orchestrate::saga::resume(&runtime).await;
            if !resumed.request_ids.is_empty() {
                println!("  resumed {} saga(s) left by a crashed instance", resumed.request_ids.len());
            }
        }
    });
    let ops = orchestrate::ops::router(&runtime, app::checkout::ENDPOINTS);
    let listener =
        tokio::net::TcpListener::bind(&listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    // The operations endpoints on a second listener when one is named, else beside the API.
    let (app, ops_addr) = match std::env::var(OPS_LISTEN_ENV) {
        Ok(ops_listen) => {
            let ops_listener = tokio::net::TcpListener::bind(&ops_listen)
                .await
                .map_err(|e| format!("cannot listen on {ops_listen} ({OPS_LISTEN_ENV}): {e}"))?;
            let ops_addr = ops_listener.local_addr()?;
            let ops = orchestrate::server::serve(ops_listener, orchestrate::router::app(ops));
            tokio::spawn(ops.limits(runtime.server_limits()).into_future());
            (orchestrate::router::app(app::checkout::router(&runtime)), ops_addr)
        }
        Err(_) => (orchestrate::router::app(app::checkout::router(&runtime).merge(ops)), addr),
    };
    println!("checkout BFF listening on http://{addr}");
    println!(
        "  curl -s -X POST http://{addr}/checkout/summary -H 'content-type: application/json' -d '{{\"cartId\":\"c1\",\"userId\":\"u1\"}}'"
    );
    println!(
        "  curl -s -X POST http://{addr}/checkout/place-order -H 'content-type: application/json' -H 'idempotency-key: order-1' -d '{{\"cartId\":\"c1\",\"userId\":\"u1\",\"paymentMethod\":\"card\"}}'"
    );
    println!(
        "  operations: http://{ops_addr}/metrics, http://{ops_addr}/health, http://{ops_addr}/_orchestrate (with recent requests), http://{ops_addr}/_orchestrate/sagas/<x-request-id>"
    );
    orchestrate::server::serve(listener, app)
        .limits(runtime.server_limits())
        .with_graceful_shutdown(orchestrate::router::shutdown_signal())
        .await?;
    println!("checkout BFF stopped");
    Ok(())
}
