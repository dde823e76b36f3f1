//! Durations of `services!` policies that are not durations: a space, an unknown unit, zero.

orchestrate::services! {
    cart: "http://cart.internal:8080" { retry(attempts = 3, backoff = "200 ms") },
    pricing: "http://pricing.internal:8080" { breaker(failures = 3, within = "2x", open_for = "30s", probes = 1) },
    tax: "http://tax.internal:8080" { breaker(failures = 3, within = "30s", open_for = "0ms", probes = 1) },
}

fn main() {}
