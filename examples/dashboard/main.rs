//! The dashboard of the BFF-characteristics page, with embedded mock downstream services.
//!
//! ```text
//! cargo run --example dashboard                          # prints a ready curl line with a token
//! TOKEN=$(curl -s -X POST http://127.0.0.1:3002/token -H 'content-type: application/json' \
//!      -d '{"sub":"u1"}' | jq -r .accessToken)           # or ask the development auth service
//! curl -s http://127.0.0.1:3001/dashboard -H "authorization: Bearer $TOKEN"   # again: from the cache
//! curl -s -X POST http://127.0.0.1:3001/webhooks/user-updated -H 'content-type: application/json' \
//!      -d '{"userId":"u1"}'                              # drops u1's cached dashboard
//! ORCHESTRATE_REDIS_URL=redis://127.0.0.1:6379/0 cargo run --example dashboard   # shared cache
//! ```
//!
//! `ORCHESTRATE_LISTEN` (default `127.0.0.1:3001`), `ORCHESTRATE_<SERVICE>_URL`, `RUST_LOG` and
//! `ORCHESTRATE_SERVER_TIMING` work as for the checkout example, and so do the operations
//! endpoints `/metrics`, `/health` and `/_orchestrate` (on a second listener with
//! `ORCHESTRATE_OPS_LISTEN`, e.g. `127.0.0.1:9001`) and the `[server]` limits of the listener. The development auth service listens on
//! `ORCHESTRATE_AUTH_LISTEN` (default `127.0.0.1:3002`); `[auth]` in a configuration file
//! (`ORCHESTRATE_CONFIG`) points the dashboard at a real issuer instead.

mod app;

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
    let listen = std::env::var("ORCHESTRATE_LISTEN").unwrap_or_else(|_| "127.0.0.1:3001".to_owned());
    let mocks = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mocks_url = format!("http://{}", mocks.local_addr()?);
    tokio::spawn(async move { axum::serve(mocks, app::mock_services(Default::default(), 1.0)).await });
    let auth_listen = std::env::var("ORCHESTRATE_AUTH_LISTEN").unwrap_or_else(|_| "127.0.0.1:3002".to_owned());
    let auth = tokio::net::TcpListener::bind(&auth_listen)
        .await
        .map_err(|e| format!("cannot listen on {auth_listen} for the development auth service: {e}"))?;
    let auth_url = format!("http://{}", auth.local_addr()?);
    tokio::spawn(async move { axum::serve(auth, app::auth_service()).await });

    let mut builder = Runtime::builder(app::services::ALL)
        .endpoints(app::dashboard::ENDPOINTS)
        .auth(app::auth_settings(&format!("{auth_url}/.well-known/jwks.json")));
    for service in app::services::ALL.iter().map(|s| s.name) {
        if std::env::var(env_var_name(service)).is_err() {
            builder = builder.base_url(service, &mocks_url);
        }
    }
    let runtime = builder.build()?;
    let ops = orchestrate::ops::router(&runtime, app::dashboard::ENDPOINTS);
    let api = app::dashboard::router(&runtime).merge(app::webhooks(&runtime));
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
            (orchestrate::router::app(api), ops_addr)
        }
        Err(_) => (orchestrate::router::app(api.merge(ops)), addr),
    };
    println!("dashboard BFF listening on http://{addr} (mock services on {mocks_url})");
    let cache = match runtime.store().redis() {
        Some(redis) if runtime.cache().is_shared() => {
            format!("in Redis at {}, shared by every instance", redis.target())
        }
        _ => "in memory".to_owned(),
    };
    println!(
        "  development tokens: curl -s -X POST {auth_url}/token -H 'content-type: application/json' -d '{{\"sub\":\"u1\"}}'"
    );
    println!(
        "  curl -s http://{addr}/dashboard -H 'authorization: Bearer {}'   (user u1; cached 60 s per user, {cache})",
        app::dev_token("u1")
    );
    println!(
        "  curl -s -X POST http://{addr}/webhooks/user-updated -H 'content-type: application/json' -d '{{\"userId\":\"u1\"}}'"
    );
    println!("  operations: http://{ops_addr}/metrics, http://{ops_addr}/health, http://{ops_addr}/_orchestrate");
    let limits = app::dashboard::ENDPOINTS.first().map(|spec| runtime.rate_limiter().limits_of(spec).describe());
    let kept = if runtime.store().redis().is_some() { "shared in Redis" } else { "in memory" };
    println!("  rate limits: {} ({kept})", limits.unwrap_or_default());
    // Header and body read timeouts and connection caps; the peer address (what `per_ip`
    // counts) reaches every request.
    orchestrate::server::serve(listener, app)
        .limits(runtime.server_limits())
        .with_graceful_shutdown(orchestrate::router::shutdown_signal())
        .await?;
    Ok(())
}
