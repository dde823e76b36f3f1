//! A `fallback` must have the field's type (or `T` for a field `Option<T>`).

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
    #[call(service = "shipping", timeout = "200ms", get = "/estimate", fallback = 0u64)]
    pub shipping: Option<Shipping>,

    #[call(service = "shipping", timeout = "200ms", get = "/eta", fallback = "soon")]
    pub eta_days: u32,
}

fn main() {}
