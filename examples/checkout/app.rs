//! The Checkout BFF of the design template: cart → {inventory, pricing, shipping (optional)} →
//! tax, speaking the reference workload's downstream contract.
//!
//! Shared by the `checkout` example, the end-to-end tests and the benchmarks.

#![allow(dead_code)]

use orchestrate::prelude::*;

// Breakers open on a failure *rate* (a count such as "5 failures in 60 s" trips at volume on a
// normal background of errors), counted per call after its retries; every service has the
// adaptive concurrency limit (`max_in_flight = auto`, the default).
orchestrate::services! {
    cart:      "http://cart.internal:8080"      { retry(attempts = 3, backoff = "100ms"), breaker(failure_rate = "50%", min_calls = 20, within = "10s", open_for = "30s", probes = 3) },
    inventory: "http://inventory.internal:8080",
    pricing:   "http://pricing.internal:8080",
    shipping:  "http://shipping.internal:8080"  { breaker(failure_rate = "50%", min_calls = 20, within = "10s", open_for = "60s", probes = 2) },
    tax:       "http://tax.internal:8080",
}

/// `POST /checkout/summary` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryRequest {
    pub cart_id: String,
    pub user_id: String,
}

/// `GET /carts/{cartId}` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cart {
    pub id: String,
    pub items: Vec<Item>,
    pub item_count: u32,
}

/// One cart line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub sku: String,
    pub qty: u32,
    pub price: u64,
}

/// `{"items":[..]}`, the body of the inventory, pricing and shipping calls.
#[derive(Debug, Serialize)]
pub struct Items<'a> {
    pub items: &'a [Item],
}

impl<'a> Items<'a> {
    pub fn of(cart: &'a Cart) -> Self {
        Self { items: &cart.items }
    }
}

/// `POST /check-availability` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    pub available: bool,
}

/// `POST /calculate` answer of the pricing service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    pub subtotal: u64,
    pub currency: String,
}

/// `POST /estimate` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipping {
    pub options: Vec<ShippingOption>,
}

/// One shipping option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShippingOption {
    pub method: String,
    pub cost: u64,
    pub eta_days: u32,
}

/// `{"subtotal":int}`, the body of the tax call.
#[derive(Debug, Serialize)]
pub struct TaxInput {
    pub subtotal: u64,
}

impl TaxInput {
    pub fn new(_cart: &Cart, pricing: &Pricing) -> Self {
        Self { subtotal: pricing.subtotal }
    }
}

/// `POST /calculate` answer of the tax service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tax {
    pub amount: u64,
    pub rate: f64,
}

#[orchestrate::api]
pub mod checkout {
    use super::*;

    /// The checkout summary screen.
    #[endpoint(POST "/checkout/summary", timeout = "2000ms", slo(availability = "99.95%", p99 = "300ms"))]
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Summary {
        #[input(body)]
        #[serde(skip)]
        pub req: SummaryRequest,

        #[call(service = "cart", timeout = "200ms", required, get = "/carts/{req.cart_id}")]
        pub cart: Cart,

        #[call(service = "inventory", timeout = "400ms", required, post = "/check-availability", body = Items::of(&cart))]
        #[serde(skip)]
        pub availability: Availability,

        #[call(service = "pricing", timeout = "200ms", required, post = "/calculate", body = Items::of(&cart))]
        pub pricing: Pricing,

        #[call(service = "shipping", timeout = "500ms", post = "/estimate", body = Items::of(&cart))]
        pub shipping: Option<Shipping>,

        #[call(service = "tax", timeout = "300ms", required, post = "/calculate", body = TaxInput::new(&cart, &pricing))]
        pub tax: Tax,

        #[compute(pricing.subtotal + tax.amount)]
        pub total: u64,

        #[compute(availability.available)]
        pub availability_confirmed: bool,
    }
}
