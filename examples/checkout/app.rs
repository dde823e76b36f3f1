//! The Checkout BFF of the design template: cart → {inventory, pricing, shipping (optional)} →
//! tax, speaking the reference workload's downstream contract; and placing the order, a saga:
//! reserve inventory → charge payment → create the shipment, undone by releasing the reservation
//! and refunding the charge when a later step fails.
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
    payment:   "http://payment.internal:8080",
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

/// `POST /checkout/place-order` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrderRequest {
    pub cart_id: String,
    pub user_id: String,
    pub payment_method: String,
}

/// `{"cartId","items"}`, the body of `POST /reservations`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationInput<'a> {
    pub cart_id: &'a str,
    pub items: &'a [Item],
}

impl<'a> ReservationInput<'a> {
    pub fn new(cart: &'a Cart) -> Self {
        Self { cart_id: &cart.id, items: &cart.items }
    }
}

/// `POST /reservations` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: String,
}

/// `{"reservationId","userId","amount","method"}`, the body of `POST /charges`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeInput<'a> {
    pub reservation_id: &'a str,
    pub user_id: &'a str,
    pub amount: u64,
    pub method: &'a str,
}

impl<'a> ChargeInput<'a> {
    pub fn new(req: &'a PlaceOrderRequest, reservation: &'a Reservation, pricing: &Pricing) -> Self {
        Self {
            reservation_id: &reservation.id,
            user_id: &req.user_id,
            amount: pricing.subtotal,
            method: &req.payment_method,
        }
    }
}

/// `POST /charges` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub id: String,
    pub amount: u64,
}

/// `{"chargeId","amount"}`, the body of the refund.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund<'a> {
    pub charge_id: &'a str,
    pub amount: u64,
}

impl<'a> Refund<'a> {
    pub fn of(payment: &'a Payment) -> Self {
        Self { charge_id: &payment.id, amount: payment.amount }
    }
}

/// `{"reservationId","chargeId","userId"}`, the body of `POST /shipments`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentInput<'a> {
    pub reservation_id: &'a str,
    pub charge_id: &'a str,
    pub user_id: &'a str,
}

impl<'a> ShipmentInput<'a> {
    pub fn new(req: &'a PlaceOrderRequest, reservation: &'a Reservation, payment: &'a Payment) -> Self {
        Self { reservation_id: &reservation.id, charge_id: &payment.id, user_id: &req.user_id }
    }
}

/// `POST /shipments` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    pub id: String,
    pub status: String,
}

#[orchestrate::api]
pub mod checkout {
    use super::*;

    // Its POSTs only compute, and a repeated summary is a fresh one: no replay of
    // `Idempotency-Key`s.
    /// The checkout summary screen.
    #[endpoint(
        POST "/checkout/summary",
        timeout = "2000ms",
        slo(availability = "99.95%", p99 = "300ms"),
        idempotent_requests = false
    )]
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

    /// Places the order: reserve inventory → charge payment → create the shipment. A failure
    /// after the reservation releases it, after the charge refunds it too (`saga`: every side
    /// effect a later failure would leave in place has a compensation). A client's retry with the
    /// same `Idempotency-Key` gets the first answer back, charging nothing twice.
    #[endpoint(POST "/checkout/place-order", timeout = "5s", saga, idempotent_requests)]
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PlaceOrder {
        #[input(body)]
        #[serde(skip)]
        pub req: PlaceOrderRequest,

        #[call(service = "cart", timeout = "200ms", required, get = "/carts/{req.cart_id}")]
        #[serde(skip)]
        pub cart: Cart,

        #[call(service = "pricing", timeout = "200ms", required, post = "/calculate", body = Items::of(&cart), idempotent)]
        #[serde(skip)]
        pub pricing: Pricing,

        #[call(service = "inventory", timeout = "400ms", required, post = "/reservations", body = ReservationInput::new(&cart),
               idempotency_key = format!("{}:{}:reserve", req.user_id, req.cart_id),
               compensate = post("/reservations/{reservation.id}/release", idempotency_key = format!("{}:release", reservation.id)))]
        pub reservation: Reservation,

        #[call(service = "payment", timeout = "1s", required, post = "/charges", body = ChargeInput::new(&req, &reservation, &pricing),
               idempotency_key = format!("{}:{}:charge", req.user_id, req.cart_id),
               compensate = post("/charges/{payment.id}/refund", body = Refund::of(&payment), idempotency_key = format!("{}:refund", payment.id)))]
        pub payment: Payment,

        #[call(service = "shipping", timeout = "500ms", required, post = "/shipments", body = ShipmentInput::new(&req, &reservation, &payment),
               idempotency_key = format!("{}:{}:ship", req.user_id, req.cart_id))]
        pub shipment: Shipment,
    }
}
