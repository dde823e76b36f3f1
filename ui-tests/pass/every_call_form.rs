//! Every form a `#[call]` and a `#[compute]` can take, in one endpoint that compiles.

use orchestrate::prelude::*;
use std::collections::BTreeMap;

orchestrate::services! {
    cart: "http://cart.internal:8080" { retry(attempts = 3, backoff = "100ms") },
    catalog: "http://catalog.internal:8080",
    payments: "http://payments.internal:8080",
    loyalty: "http://loyalty.internal:8080",
    shipping: "http://shipping.internal:8080",
}

#[derive(Deserialize)]
pub struct OrderRequest {
    pub cart_id: String,
    pub user_id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
    pub items: Vec<Item>,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct Item {
    pub sku: String,
    pub qty: u32,
}

#[derive(Serialize, Deserialize)]
pub struct Product {
    pub sku: String,
    pub price: u64,
}

#[derive(Serialize, Deserialize)]
pub struct Receipt {
    pub id: String,
    pub amount: u64,
}

#[derive(Serialize, Deserialize, PartialEq)]
pub enum Tier {
    Basic,
    Gold,
}

#[derive(Serialize, Deserialize)]
pub struct Loyalty {
    pub tier: Tier,
    pub points: u64,
}

#[derive(Serialize, Deserialize)]
pub struct Perks {
    pub names: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub struct Shipping {
    pub cost: u64,
}

impl Shipping {
    pub fn later() -> Self {
        Shipping { cost: 0 }
    }
}

#[derive(Serialize, Deserialize)]
pub struct Ack {
    pub ok: bool,
}

#[derive(Serialize)]
pub struct Charge<'a> {
    pub cart: &'a str,
    pub amount: u64,
}

/// Custom logic: receives a client bound to its service, then the call's arguments.
pub mod perks {
    use super::*;

    pub async fn for_tier(client: CallClient<'_>, loyalty: &Loyalty) -> Result<Perks, CallError> {
        let path = match loyalty.tier {
            Tier::Gold => "/perks/gold",
            Tier::Basic => "/perks/basic",
        };
        client.get(path).send().await
    }
}

#[endpoint(POST "/orders/{order_id}", timeout = "5s")]
#[derive(Serialize)]
pub struct Order {
    #[input(path)]
    pub order_id: String,

    #[input(body)]
    #[serde(skip)]
    pub req: OrderRequest,

    #[input(header = "x-tenant")]
    pub tenant: String,

    // GET with a template placeholder, a query and headers.
    #[call(service = "cart", timeout = "200ms", required, get = "/carts/{req.cart_id}",
           query = [("expand", "items")], headers = [("x-tenant", tenant.as_str())])]
    pub cart: Cart,

    // Fan-out: one GET per item, at most 4 at a time, collected into a `Vec`.
    #[call(service = "catalog", timeout = "150ms", required, get = "/products/{item.sku}",
           for_each = item in &cart.items, concurrency = 4)]
    pub products: Vec<Product>,

    // POST with a body, an idempotency key and a call-level retry.
    #[call(service = "payments", timeout = "400ms", required, post = "/charges",
           body = Charge { cart: &cart.id, amount: products.iter().map(|p| p.price).sum() },
           idempotency_key = format!("{}-{}", order_id, cart.id),
           retry(attempts = 2, backoff = "50ms"))]
    pub receipt: Receipt,

    // PUT and PATCH with bodies.
    #[call(service = "cart", timeout = "100ms", required, put = "/carts/{cart.id}/owner", body = &req.user_id)]
    #[serde(skip)]
    pub owner: Ack,

    // The cart service retries, and a PATCH is not idempotent: this one opts out of the retries.
    #[call(service = "cart", timeout = "100ms", required, patch = "/carts/{cart.id}", body = [("status", "paid")],
           after = [receipt], retry(attempts = 1))]
    #[serde(skip)]
    pub marked: Ack,

    // DELETE that waits for another call without reading it; optional with a fallback on a plain
    // (non-`Option`) field.
    #[call(service = "cart", timeout = "100ms", delete = "/carts/{cart.id}", after = [marked, owner],
           fallback = Ack { ok: false })]
    #[serde(skip)]
    pub cleared: Ack,

    // Hedged: a second request when the first has not answered after 30 ms.
    #[call(service = "loyalty", timeout = "100ms", required, get = "/users/{req.user_id}/loyalty", hedge(after = "30ms"))]
    pub loyalty: Loyalty,

    // Conditional: `None` when the condition is false.
    #[call(service = "loyalty", timeout = "100ms", get = "/gold/{req.user_id}", when = loyalty.tier == Tier::Gold)]
    pub gold: Option<Perks>,

    // Custom logic with `with`.
    #[call(service = "loyalty", timeout = "200ms", required, with = perks::for_tier(&loyalty))]
    pub perks: Perks,

    // Optional `Option` field with a fallback.
    #[call(service = "shipping", timeout = "300ms", post = "/estimate", body = &cart.items,
           fallback = Shipping::later())]
    pub shipping: Option<Shipping>,

    // Computed fields: closures, `let`, `match`, `format!` binding their own names.
    #[compute(products.iter().map(|product| product.price).sum::<u64>() + shipping.as_ref().map_or(0, |s| s.cost))]
    pub total: u64,

    #[compute({
        let count = cart.items.iter().map(|item| item.qty).sum::<u32>();
        let label = match &loyalty.tier {
            Tier::Gold => "gold",
            Tier::Basic => "basic",
        };
        format!("{count} items for a {label} member ({}; receipt {})", tenant, receipt.id)
    })]
    pub summary: String,

    #[compute(perks.names.iter().chain(gold.iter().flat_map(|g| g.names.iter())).cloned().collect())]
    pub all_perks: Vec<String>,

    #[compute(cleared.ok && marked.ok && owner.ok)]
    pub done: bool,

    #[compute(products.iter().map(|p| (p.sku.clone(), p.price)).collect())]
    pub prices: BTreeMap<String, u64>,
}

fn main() {}
