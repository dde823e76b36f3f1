//! The checkout example's mock downstream services as a process of their own, on fixed loopback
//! ports, so a load test measures the BFF and not the mocks beside it.
//!
//! ```text
//! cargo run --release --example mock_services -- [--port-base 47100] [--latency-scale 1] [--hang shipping]
//! ```
//!
//! - `--port-base N` (default 47100): cart listens on `N+1`, inventory `N+2`, pricing `N+3`,
//!   shipping `N+4`, tax `N+5`, all on 127.0.0.1. One `ORCHESTRATE_<SERVICE>_URL=...` line per
//!   service is printed, ready for `export`/`env`.
//! - `--latency-scale X` (default 1): multiplies the template latencies (cart 45 ms, inventory 80,
//!   pricing 35, shipping 120, tax 60); `0` answers at once.
//! - `--hang SERVICE` (repeatable): that service accepts requests and never answers.
//! - `--expected`: prints the checkout response the contract specifies (for `c1`) and exits.
//!
//! The services answer `examples/checkout/contract.rs`, as the checkout example's embedded mocks
//! do (the same code), without keeping a log of the requests they saw.

#[path = "checkout/contract.rs"]
mod contract;
#[path = "checkout/mocks.rs"]
mod mocks;

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr};

struct Options {
    port_base: u16,
    scale: f64,
    hang: Vec<String>,
    expected: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options { port_base: 47100, scale: 1.0, hang: Vec::new(), expected: false };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("`{name}` needs a value"));
        match arg.as_str() {
            "--port-base" => {
                let text = value("--port-base")?;
                options.port_base = text.parse().map_err(|_| format!("`--port-base` must be a port, got `{text}`"))?;
            }
            "--latency-scale" => {
                let text = value("--latency-scale")?;
                options.scale = text
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| format!("`--latency-scale` must be a number ≥ 0, got `{text}`"))?;
            }
            "--hang" => {
                let service = value("--hang")?;
                if !mocks::SERVICES.contains(&service.as_str()) {
                    return Err(format!("`--hang {service}`: no such service; one of {}", mocks::SERVICES.join(", ")));
                }
                options.hang.push(service);
            }
            "--expected" => options.expected = true,
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: mock_services [--port-base N] [--latency-scale X] [--hang SERVICE] [--expected]"
                ));
            }
        }
    }
    if options.port_base > u16::MAX - mocks::SERVICES.len() as u16 {
        return Err(format!("`--port-base {}` leaves no room for five ports", options.port_base));
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let options = options()?;
    if options.expected {
        println!("{}", contract::expected_summary());
        return Ok(());
    }
    let mut services = Vec::new();
    for (offset, name) in (1..).zip(mocks::SERVICES) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, options.port_base + offset));
        let latency = contract::latency(name).mul_f64(options.scale);
        let mock =
            mocks::start_one(name, addr, latency).await.map_err(|e| format!("{name}: cannot listen on {addr}: {e}"))?;
        mock.set_logging(false);
        if options.hang.iter().any(|s| s == name) {
            mock.set_fault(mocks::Fault::Hang);
        }
        let behaviour =
            if options.hang.iter().any(|s| s == name) { "hangs".to_owned() } else { format!("{latency:?}") };
        println!("{}={} # {behaviour}", orchestrate::env_var_name(name), mock.url());
        services.push(mock);
    }
    println!("mock services ready");
    orchestrate::router::shutdown_signal().await;
    Ok(())
}
