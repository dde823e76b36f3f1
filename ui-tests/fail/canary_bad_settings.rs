//! Mistakes inside `canary(..)`: a version named `stable`, a key that is none of the three, a
//! window too short, and a missing weight.

use orchestrate::prelude::*;

orchestrate::services! {
    pricing: "http://pricing.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Price {
    pub amount: u64,
}

#[orchestrate::api]
pub mod quotes {
    use super::*;

    #[endpoint(GET "/quote", timeout = "1s")]
    #[derive(Serialize)]
    pub struct Quote {
        #[call(service = "pricing", timeout = "200ms", required, get = "/price")]
        pub price: Price,
    }

    #[endpoint(GET "/quote", timeout = "1s", canary(version = "stable", key = "cookie", window = "10ms"))]
    #[derive(Serialize)]
    pub struct QuoteV2 {
        #[call(service = "pricing", timeout = "200ms", required, get = "/price")]
        pub price: Price,
    }
}

fn main() {}
