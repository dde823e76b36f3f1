//! A call that reads its own value, and a computed field that does.

use orchestrate::prelude::*;

orchestrate::services! {
    pricing: "http://pricing.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Pricing {
    pub subtotal: u64,
}

#[endpoint(GET "/total", timeout = "1s")]
#[derive(Serialize)]
pub struct Total {
    #[call(service = "pricing", timeout = "200ms", required, get = "/price?previous={pricing.subtotal}")]
    pub pricing: Pricing,

    #[compute(total + pricing.subtotal)]
    pub total: u64,
}

fn main() {}
