//! Call timeouts that are not durations: a space, an unknown unit, zero.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
}

#[endpoint(GET "/carts", timeout = "1s")]
#[derive(Serialize)]
pub struct Carts {
    #[call(service = "cart", timeout = "200 ms", required, get = "/carts/a")]
    pub a: Cart,

    #[call(service = "cart", timeout = "2x", required, get = "/carts/b")]
    pub b: Cart,

    #[call(service = "cart", timeout = "0ms", required, get = "/carts/c")]
    pub c: Cart,
}

fn main() {}
