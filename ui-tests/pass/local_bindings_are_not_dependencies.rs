//! Names bound inside an expression (closure parameters, `let`, `match` and `if let` patterns,
//! the `for_each` pattern) are not dependencies, even when they shadow a field: were they read as
//! fields, `count` would depend on itself and `pricing` ↔ `tax` would be a cycle.

use orchestrate::prelude::*;

orchestrate::services! {
    cart: "http://cart.internal:8080",
    pricing: "http://pricing.internal:8080",
    tax: "http://tax.internal:8080",
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
    pub items: Vec<Item>,
}

#[derive(Serialize, Deserialize)]
pub struct Item {
    pub sku: String,
    pub price: u64,
}

#[derive(Serialize, Deserialize)]
pub struct Pricing {
    pub subtotal: u64,
}

#[derive(Serialize, Deserialize)]
pub struct Tax {
    pub amount: u64,
}

#[derive(Serialize)]
pub struct Lines {
    pub lines: Vec<String>,
}

#[endpoint(GET "/carts/{cart_id}/total", timeout = "2s")]
#[derive(Serialize)]
pub struct Total {
    #[input(path)]
    pub cart_id: String,

    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{cart_id}")]
    pub cart: Cart,

    // `tax` here is a closure parameter, not the `tax` field (which itself uses `pricing`).
    #[call(service = "pricing", timeout = "200ms", required, post = "/price",
           body = Lines { lines: cart.items.iter().map(|tax| format!("{}={}", tax.sku, tax.price)).collect() })]
    pub pricing: Pricing,

    // `item` is bound by `for_each`; `pricing` is a real dependency.
    #[call(service = "tax", timeout = "200ms", required, get = "/rates/{item.sku}?base={pricing.subtotal}",
           for_each = item in &cart.items)]
    pub tax: Vec<Tax>,

    // `count` is a `let` binding shadowing this very field, and `n` an inline format argument
    // bound by the `let` before it.
    #[compute({
        let count = cart.items.len();
        let n = count * 2;
        format!("{n} halves of {count} items")
    })]
    pub count: String,

    // `match` and `if let` patterns, and a closure parameter named like the field `cart`.
    #[compute(match tax.first() {
        Some(first) if first.amount > 0 => first.amount,
        Some(cart) => cart.amount + 1,
        None => if let Some(pricing) = Some(pricing.subtotal) { pricing } else { 0 },
    })]
    pub first_tax: u64,

    #[compute(tax.iter().map(|t| t.amount).fold(pricing.subtotal, |total, amount| total + amount))]
    pub total: u64,
}

fn main() {}
