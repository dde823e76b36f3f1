//! Durations are whole numbers with `ms`, `s`, `m` or `h`: a decimal or a unit word says what to
//! write instead.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080" { retry(attempts = 2, backoff = "0.5s") },
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
}

#[endpoint(GET "/carts/{cart_id}", timeout = "2 seconds")]
#[derive(Serialize)]
pub struct Show {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "2.5s", required, get = "/carts/{cart_id}")]
    pub cart: Cart,

    #[call(service = "cart", timeout = "300msec", required, get = "/carts/{cart_id}/lines")]
    pub lines: Cart,
}

fn main() {}
