//! The inbound rate limiter's cost per request, in memory: `RateLimiter::check` of a request with
//! all four limits (per address, per user, per endpoint, global), high enough that every request
//! is admitted (the common case), for one user and for users spread over 10 000 keys.
//!
//! `cargo bench --bench rate_limit`

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use orchestrate::rate_limit::{RateLimitSettings, RateLimiter};
use orchestrate::store::Store;
use orchestrate::{EndpointSpec, Method, Rate, RateLimits};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

const HIGH: Rate = Rate::new(u32::MAX, Duration::from_secs(1));

static SPEC: EndpointSpec = EndpointSpec::new("Dashboard", Method::Get, "/dashboard", Duration::from_secs(1), &[], &[])
    .with_rate_limit(RateLimits::NONE.with_per_user(HIGH).with_per_ip(HIGH).with_per_endpoint(HIGH).with_global(HIGH));

fn request(user: usize) -> http::request::Parts {
    let (mut parts, ()) = http::Request::get("/dashboard")
        .header("authorization", format!("Bearer token-of-user-{user}"))
        .body(())
        .unwrap()
        .into_parts();
    let peer: SocketAddr = format!("198.51.{}.{}:40000", user / 250 % 250, user % 250).parse().unwrap();
    parts.extensions.insert(axum::extract::ConnectInfo(peer));
    parts
}

fn bench(c: &mut Criterion) {
    let limiter = RateLimiter::new(RateLimitSettings::default(), &Store::Memory);
    let mut group = c.benchmark_group("rate_limit");
    let one = request(1);
    group.bench_function("check_four_limits_one_user", |b| {
        b.iter(|| black_box(limiter.check(&SPEC, black_box(&one)).now_or_never()))
    });
    let many: Vec<_> = (0..10_000).map(request).collect();
    let mut i = 0;
    group.bench_function("check_four_limits_10k_users", |b| {
        b.iter(|| {
            i = (i + 1) % many.len();
            black_box(limiter.check(&SPEC, black_box(&many[i])).now_or_never())
        })
    });
    let open = RateLimiter::new(RateLimitSettings::default(), &Store::Memory);
    static NONE: EndpointSpec = EndpointSpec::new("Open", Method::Get, "/open", Duration::from_secs(1), &[], &[]);
    group.bench_function("check_no_limit", |b| b.iter(|| black_box(open.check(&NONE, black_box(&one)).now_or_never())));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
