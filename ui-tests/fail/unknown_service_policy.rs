//! Policies `services!` does not know, each with the closest known one suggested.

orchestrate::services! {
    cart: "http://cart.internal:8080" { retries(attempts = 3, backoff = "100ms"), max_in_flite = 4 },
    pricing: "http://pricing.internal:8080" { breaker(failures = 3, within = "30s", open_for = "60s", probe = 2) },
}

fn main() {}
