//! The Checkout endpoint of DESIGN.md: the very module `cargo run --example checkout` serves.

#[path = "../../examples/checkout/app.rs"]
mod app;

fn main() {
    let _ = app::checkout::router;
}
