//! Base URLs of `services!` that could never be called.

orchestrate::services! {
    cart: "cart.internal:8080",
    pricing: "http://pricing.internal:port",
    tax: "http://tax.internal:8080?region=eu",
}

fn main() {}
