//! An optional call (no `required`) typed `Shipping`: it has no value to give when it fails.

use orchestrate::prelude::*;

orchestrate::services! {
    shipping: "http://shipping.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Shipping {
    pub cost: u64,
}

#[endpoint(GET "/shipping", timeout = "1s")]
#[derive(Serialize)]
pub struct Quote {
    #[call(service = "shipping", timeout = "200ms", get = "/estimate")]
    pub shipping: Shipping,
}

fn main() {}
