//! Endpoint timeouts that are not durations: a space, an unknown unit, zero.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
}

#[endpoint(GET "/a", timeout = "200 ms")]
#[derive(Serialize)]
pub struct A {
    #[call(service = "cart", timeout = "100ms", required, get = "/carts/a")]
    pub cart: Cart,
}

#[endpoint(GET "/b", timeout = "2x")]
#[derive(Serialize)]
pub struct B {
    #[call(service = "cart", timeout = "100ms", required, get = "/carts/b")]
    pub cart: Cart,
}

#[endpoint(GET "/c", timeout = "0ms")]
#[derive(Serialize)]
pub struct C {
    #[call(service = "cart", timeout = "100ms", required, get = "/carts/c")]
    pub cart: Cart,
}

fn main() {}
