//! A field that the placeholder's value does not have: rustc's error points at the template,
//! without a suggestion that would replace the whole template with a bare name.

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

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart.idd}/lines")]
    pub lines: Cart,
}

fn main() {}
