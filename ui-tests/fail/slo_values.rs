//! Bad `slo(..)` values of `#[endpoint]`, one endpoint each: every one is an error at the value
//! (or the key), worded as `orchestrate_core::policy::slo` words it (`tests/policy_messages.rs`
//! holds the table); a `p99` longer than the endpoint's `timeout` is one too.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
}

#[endpoint(GET "/s0/{cart_id}", timeout = "2s", slo(availability = "100%"))]
#[derive(Serialize)]
pub struct S0 {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,
}

#[endpoint(GET "/s1/{cart_id}", timeout = "2s", slo(availability = "99.9"))]
#[derive(Serialize)]
pub struct S1 {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,
}

#[endpoint(GET "/s2/{cart_id}", timeout = "2s", slo(availability = "99.99999%"))]
#[derive(Serialize)]
pub struct S2 {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,
}

#[endpoint(GET "/s3/{cart_id}", timeout = "2s", slo(availability = 99))]
#[derive(Serialize)]
pub struct S3 {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,
}

#[endpoint(GET "/s4/{cart_id}", timeout = "2s", slo(availabilty = "99.9%"))]
#[derive(Serialize)]
pub struct S4 {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,
}

#[endpoint(GET "/s5/{cart_id}", timeout = "2s", slo(p99 = "300 ms"))]
#[derive(Serialize)]
pub struct S5 {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,
}

#[endpoint(GET "/s6/{cart_id}", timeout = "2s", slo(p99 = "0ms"))]
#[derive(Serialize)]
pub struct S6 {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,
}

#[endpoint(GET "/s7/{cart_id}", timeout = "2s", slo(p99 = "3s"))]
#[derive(Serialize)]
pub struct S7 {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,
}

#[endpoint(GET "/s8/{cart_id}", timeout = "2s", slo())]
#[derive(Serialize)]
pub struct S8 {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,
}

fn main() {}
