//! The checkout example's mock downstream services as a process of their own, on fixed loopback
//! ports, so a load test measures the BFF and not the mocks beside it.
//!
//! ```text
//! cargo run --release --example mock_services -- [--port-base 47100] [--latency-scale 1] [--hang shipping]
//!     [--chaos SERVICE=FAULT:N,..] [--chaos-seed SEED]
//! ```
//!
//! - `--port-base N` (default 47100): cart listens on `N+1`, inventory `N+2`, pricing `N+3`,
//!   shipping `N+4`, tax `N+5`, all on 127.0.0.1. One `ORCHESTRATE_<SERVICE>_URL=...` line per
//!   service is printed, ready for `export`/`env`.
//! - `--latency-scale X` (default 1): multiplies the template latencies (cart 45 ms, inventory 80,
//!   pricing 35, shipping 120, tax 60); `0` answers at once.
//! - `--hang SERVICE` (repeatable): that service accepts requests and never answers.
//! - `--chaos SERVICE=FAULT:N,..` (repeatable): 1 in `N` requests of `SERVICE` get `FAULT`: a status
//!   (`500`), `reset` (the connection is reset), `hang` (never answers), `malformed` (200 with a
//!   body that is not JSON), `429` (with `Retry-After: 1`) or `slow<duration>` (`slow300ms`: the
//!   contract's answer, after the latency plus that much). A service may have several faults.
//!   The load test's mix:
//!   `--chaos cart=500:20,inventory=reset:17,pricing=hang:31,shipping=hang:7,tax=500:19,inventory=slow300ms:10`.
//! - `--chaos-seed SEED`: pick the faulty requests at random from this seed (reproducible)
//!   instead of by the request counter (every N-th request; the default). The precise rules are in
//!   `examples/checkout/mocks.rs`.
//! - `--expected`: prints the checkout response the contract specifies (for `c1`) and exits.
//!
//! The services answer `examples/checkout/contract.rs`, as the checkout example's embedded mocks
//! do (the same code), without keeping a log of the requests they saw. `GET /_mock/stats` on each
//! port answers `{"requests":n,"inFlight":n,"faults":n}`: requests received, received but neither
//! answered nor dropped by their client (a hung request counts until its connection closes), and
//! given a fault by `--chaos`.

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
    chaos: Vec<(&'static str, u64, mocks::Fault)>,
    pick: mocks::Pick,
    expected: bool,
}

const USAGE: &str = "usage: mock_services [--port-base N] [--latency-scale X] [--hang SERVICE] [--chaos SERVICE=FAULT:N,..] [--chaos-seed SEED] [--expected]";

fn options() -> Result<Options, String> {
    let mut options = Options {
        port_base: 47100,
        scale: 1.0,
        hang: Vec::new(),
        chaos: Vec::new(),
        pick: mocks::Pick::Counter,
        expected: false,
    };
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
            "--chaos" => {
                options.chaos.extend(mocks::parse_chaos(&value("--chaos")?).map_err(|e| format!("`--chaos` {e}"))?)
            }
            "--chaos-seed" => {
                let text = value("--chaos-seed")?;
                let seed = text.parse().map_err(|_| format!("`--chaos-seed` must be a whole number, got `{text}`"))?;
                options.pick = mocks::Pick::Random { seed };
            }
            "--expected" => options.expected = true,
            other => return Err(format!("unknown argument `{other}`; {USAGE}")),
        }
    }
    if options.port_base > u16::MAX - mocks::SERVICES.len() as u16 {
        return Err(format!("`--port-base {}` leaves no room for six ports", options.port_base));
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
        let hangs = options.hang.iter().any(|s| s == name);
        if hangs {
            mock.set_fault(mocks::Fault::Hang);
        }
        let faults: Vec<(u64, mocks::Fault)> =
            options.chaos.iter().filter(|(s, _, _)| *s == name).map(|(_, n, f)| (*n, f.clone())).collect();
        let mut behaviour = if hangs { "hangs".to_owned() } else { format!("{latency:?}") };
        for (every, fault) in &faults {
            behaviour.push_str(&format!(", {fault} 1 in {every}"));
        }
        if !faults.is_empty() {
            mock.set_chaos(mocks::Chaos { faults, pick: options.pick });
        }
        println!("{}={} # {behaviour}", orchestrate::env_var_name(name), mock.url());
        services.push(mock);
    }
    println!("mock services ready");
    orchestrate::router::shutdown_signal().await;
    Ok(())
}
