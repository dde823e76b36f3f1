//! Three mistakes of three kinds in one endpoint of an `#[api]` module are three errors in one
//! build: the macro's own (a malformed duration), an unknown service (found by the lookup
//! `services!` generates) and a type error in a call's expression (rustc's). Nothing follows from
//! them: the module's router and `ENDPOINTS` still compile against the endpoint.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
    pricing: "http://pricing.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
    pub total: u64,
}

#[derive(Serialize, Deserialize)]
pub struct Pricing {
    pub subtotal: u64,
}

#[orchestrate::api]
pub mod checkout {
    use super::*;

    #[endpoint(GET "/carts/{cart_id}/summary", timeout = "1s")]
    #[derive(Serialize)]
    pub struct Summary {
        #[input(path)]
        pub cart_id: String,

        #[call(service = "cart", timeout = "200 ms", required, get = "/carts/{cart_id}")]
        pub cart: Cart,

        #[call(service = "pricng", timeout = "200ms", required, get = "/price/{cart.id}")]
        pub pricing: Pricing,

        #[call(service = "pricing", timeout = "200ms", get = "/discount/{cart.id}", when = cart.total)]
        pub discount: Option<Pricing>,
    }
}

fn main() {
    let runtime = orchestrate::Runtime::new(services::ALL).unwrap();
    let _router = checkout::router(&runtime);
    let _ = checkout::ENDPOINTS;
}
