//! Policies with values of the wrong kind or missing keys.

orchestrate::services! {
    cart: "http://cart.internal:8080" { retry(attempts = "3", backoff = 100), max_in_flight = 0 },
    pricing: "http://pricing.internal:8080" { breaker(failures = 3, within = "30s") },
    tax: "http://tax.internal:8080" { retry(attempts = 20, backoff = "1s", max_backoff = "100ms") },
}

fn main() {}
