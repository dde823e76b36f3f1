//! `cache` on a call whose answer depends on its effect (a POST not marked `idempotent`), on an
//! endpoint that is not a GET, written without parentheses, and an endpoint cache key that reads a
//! call's answer (the cache is consulted before any call runs).

use orchestrate::prelude::*;

orchestrate::services! {
    payments: "http://payments.internal:8080",
    pricing: "http://pricing.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Charge {
    pub id: String,
}

#[endpoint(POST "/orders/{order_id}", timeout = "2s", cache(ttl = "60s"))]
#[derive(Serialize)]
pub struct Order {
    #[input(path)]
    pub order_id: String,

    #[call(service = "payments", timeout = "200ms", required, post = "/charges", body = &order_id, cache(ttl = "60s"))]
    pub charge: Charge,

    // Safe: a pure computation marked `idempotent`.
    #[call(service = "pricing", timeout = "200ms", required, post = "/calculate", body = &order_id, idempotent, cache(ttl = "60s"))]
    pub quote: Charge,

    #[call(service = "pricing", timeout = "200ms", required, get = "/price/{order_id}", cache = "60s")]
    pub price: Charge,
}

#[endpoint(GET "/quotes/{order_id}", timeout = "2s", cache(ttl = "60s", key = quote.id.clone()))]
#[derive(Serialize)]
pub struct Quote {
    #[input(path)]
    pub order_id: String,

    #[call(service = "pricing", timeout = "200ms", required, get = "/quote/{order_id}")]
    pub quote: Charge,
}

fn main() {}
