//! The reference workload's downstream contract: what each mock service answers, and the
//! template's average latencies. Used by the real-HTTP mocks and by in-memory test transports.

#![allow(dead_code)]

use serde_json::{Value, json};
use std::time::Duration;

/// Template average latencies.
pub const LATENCIES: [(&str, Duration); 6] = [
    ("cart", Duration::from_millis(45)),
    ("inventory", Duration::from_millis(80)),
    ("pricing", Duration::from_millis(35)),
    ("shipping", Duration::from_millis(120)),
    ("tax", Duration::from_millis(60)),
    ("payment", Duration::from_millis(250)),
];

/// The latency of `service` in the template.
pub fn latency(service: &str) -> Duration {
    LATENCIES.iter().find(|(s, _)| *s == service).map_or(Duration::ZERO, |(_, d)| *d)
}

/// The fixture cart: three items, subtotal 14997.
pub fn cart(id: &str) -> Value {
    json!({
        "id": id,
        "items": [
            {"sku": "sku-1", "qty": 1, "price": 4999},
            {"sku": "sku-2", "qty": 2, "price": 4999}
        ],
        "itemCount": 3
    })
}

/// Sum of `qty × price` of an `{"items":[..]}` body.
fn subtotal(body: &Value) -> u64 {
    body["items"].as_array().map_or(0, |items| {
        items.iter().map(|i| i["qty"].as_u64().unwrap_or(0) * i["price"].as_u64().unwrap_or(0)).sum()
    })
}

/// The answer of `service` to `method path` with JSON `body`: `(status, json)`.
pub fn answer(service: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    match (service, method, path) {
        ("cart", "GET", p) if p.starts_with("/carts/") => {
            let id = percent_decode(&p["/carts/".len()..]);
            (200, cart(&id))
        }
        ("inventory", "POST", "/check-availability") => (200, json!({"available": true})),
        ("pricing", "POST", "/calculate") => (200, json!({"subtotal": subtotal(body), "currency": "USD"})),
        ("shipping", "POST", "/estimate") => (
            200,
            json!({"options": [
                {"method": "standard", "cost": 599, "etaDays": 5},
                {"method": "express", "cost": 1499, "etaDays": 2}
            ]}),
        ),
        ("tax", "POST", "/calculate") => {
            let subtotal = body["subtotal"].as_u64().unwrap_or(0);
            // 8.25%, rounded half up to the cent.
            let amount = (subtotal * 825 + 5_000) / 10_000;
            (200, json!({"amount": amount, "rate": 0.0825}))
        }
        // Place order: reserve, charge, ship, and the compensations' release and refund.
        ("inventory", "POST", "/reservations") => {
            (200, json!({"id": format!("res-{}", body["cartId"].as_str().unwrap_or("")), "items": body["items"]}))
        }
        ("inventory", "POST", p) if p.starts_with("/reservations/") && p.ends_with("/release") => {
            (200, json!({"released": true}))
        }
        ("payment", "POST", "/charges") => (
            200,
            json!({"id": format!("ch-{}", body["reservationId"].as_str().unwrap_or("")), "amount": body["amount"]}),
        ),
        ("payment", "POST", p) if p.starts_with("/charges/") && p.ends_with("/refund") => {
            (200, json!({"refunded": true}))
        }
        ("shipping", "POST", "/shipments") => {
            (200, json!({"id": format!("shp-{}", body["reservationId"].as_str().unwrap_or("")), "status": "created"}))
        }
        _ => (404, json!({"error": "not found"})),
    }
}

/// Decodes `%XX` escapes (enough for the mocks to echo ids back).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The response the design specifies for the fixture cart `c1` when every service answers.
pub fn expected_summary() -> Value {
    json!({
        "cart": cart("c1"),
        "pricing": {"subtotal": 14997, "currency": "USD"},
        "shipping": {"options": [
            {"method": "standard", "cost": 599, "etaDays": 5},
            {"method": "express", "cost": 1499, "etaDays": 2}
        ]},
        "tax": {"amount": 1237, "rate": 0.0825},
        "total": 16234,
        "availabilityConfirmed": true,
        "partialData": false
    })
}
