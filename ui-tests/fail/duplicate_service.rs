//! A service declared twice: the error is at the second, with a pointer to the first.

orchestrate::services! {
    cart: "http://cart.internal:8080",
    pricing: "http://pricing.internal:8080",
    cart: "http://cart-v2.internal:8080",
}

fn main() {}
