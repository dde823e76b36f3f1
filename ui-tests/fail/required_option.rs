//! `required` on a call typed `Option<..>`: a required call always has a value.

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
    #[call(service = "shipping", timeout = "200ms", required, get = "/estimate")]
    pub shipping: Option<Shipping>,
}

fn main() {}
