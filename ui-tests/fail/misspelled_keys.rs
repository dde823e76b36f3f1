//! "Did you mean" counts a transposed or doubled letter as one edit, prefers a shared prefix,
//! and never suggests a key the attribute already has.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
}

#[endpoint(GET "/carts/{cart_id}", timeout = "1s")]
#[derive(Serialize)]
pub struct Show {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timout = "200ms", requried, get = "/carts/{cart_id}")]
    pub cart: Cart,

    #[call(service = "cart", timeout = "200ms", get = "/carts/{cart_id}/x", fallbak = Cart { id: String::new() })]
    pub extra: Cart,

    // `timeout` is already written: `timout` cannot be meant as it.
    #[call(service = "cart", timeout = "200ms", timout = "100ms", required, get = "/carts/{cart_id}/y")]
    pub other: Cart,
}

fn main() {}
