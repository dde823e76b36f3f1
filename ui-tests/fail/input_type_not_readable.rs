//! A route parameter, query parameter or header must be readable from request text: a type that
//! is not gets the framework's message at the field's type.

use orchestrate::prelude::*;

orchestrate::services! {
    carts: "http://carts.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
}

/// Not `FromParam`.
pub struct CartId(pub String);

#[endpoint(GET "/carts/{id}", timeout = "1s")]
#[derive(Serialize)]
pub struct Show {
    #[input(path)]
    #[serde(skip)]
    pub id: CartId,

    #[call(service = "carts", timeout = "200ms", required, get = "/carts/{id.0}")]
    pub cart: Cart,
}

fn main() {}
