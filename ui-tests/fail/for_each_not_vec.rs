//! A `for_each` call collects one answer per item, so its field must be a `Vec<..>`.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
    catalog: "http://catalog.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub skus: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub struct Product {
    pub price: u64,
}

#[endpoint(GET "/carts/{cart_id}/products", timeout = "1s")]
#[derive(Serialize)]
pub struct Products {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,

    #[call(service = "catalog", timeout = "200ms", required, get = "/products/{sku}", for_each = sku in &cart.skus)]
    pub products: Product,
}

fn main() {}
