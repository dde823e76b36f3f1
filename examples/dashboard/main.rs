//! The dashboard of the BFF-characteristics page, with embedded mock downstream services.
//!
//! ```text
//! cargo run --example dashboard
//! curl -s http://127.0.0.1:3001/dashboard/u1
//! ```
//!
//! `ORCHESTRATE_LISTEN` (default `127.0.0.1:3001`) and `ORCHESTRATE_<SERVICE>_URL` work as for
//! the checkout example.

mod app;

use orchestrate::{Runtime, env_var_name};
use std::error::Error;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let listen = std::env::var("ORCHESTRATE_LISTEN").unwrap_or_else(|_| "127.0.0.1:3001".to_owned());
    let mocks = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mocks_url = format!("http://{}", mocks.local_addr()?);
    tokio::spawn(async move { axum::serve(mocks, app::mock_services(Default::default(), 1.0)).await });

    let mut builder = Runtime::builder(app::services::ALL);
    for service in app::services::ALL.iter().map(|s| s.name) {
        if std::env::var(env_var_name(service)).is_err() {
            builder = builder.base_url(service, &mocks_url);
        }
    }
    let runtime = builder.build()?;
    let app = orchestrate::router::app(app::dashboard::router(&runtime));
    let listener =
        tokio::net::TcpListener::bind(&listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    println!("dashboard BFF listening on http://{addr} (mock services on {mocks_url})");
    println!("  curl -s http://{addr}/dashboard/u1");
    axum::serve(listener, app).with_graceful_shutdown(orchestrate::router::shutdown_signal()).await?;
    Ok(())
}
