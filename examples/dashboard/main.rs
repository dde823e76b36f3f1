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
//! endpoints `/metrics`, `/health` and `/_orchestrate`. The development auth service listens on
//! `ORCHESTRATE_AUTH_LISTEN` (default `127.0.0.1:3002`); `[auth]` in a configuration file
//! (`ORCHESTRATE_CONFIG`) points the dashboard at a real issuer instead.

mod app;

use orchestrate::{Runtime, env_var_name};
use std::error::Error;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

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
    let app = orchestrate::router::app(app::dashboard::router(&runtime).merge(app::webhooks(&runtime)).merge(ops));
    let listener =
        tokio::net::TcpListener::bind(&listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
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
    println!("  operations: http://{addr}/metrics, http://{addr}/health, http://{addr}/_orchestrate");
    let limits = app::dashboard::ENDPOINTS.first().map(|spec| runtime.rate_limiter().limits_of(spec).describe());
    let kept = if runtime.store().redis().is_some() { "shared in Redis" } else { "in memory" };
    println!("  rate limits: {} ({kept})", limits.unwrap_or_default());
    // The peer address is what `per_ip` counts.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(orchestrate::router::shutdown_signal()).await?;
    Ok(())
}
