//! Procedural macros of [orchestrate](https://docs.rs/orchestrate). Use them through the facade
//! crate: `orchestrate::services!`, `#[orchestrate::endpoint]`.
//!
//! Each macro runs the same pipeline (as serde_derive and thiserror do): **parse** attributes into
//! a model that keeps tokens beside values, **check** cross-cutting rules collecting every error,
//! **expand** only a model that passed. On errors the user's item is still emitted, without the
//! macro's attributes, so one mistake does not cascade.
//!
//! Set `ORCHESTRATE_MACROS_DEBUG=1` (or `=StructName`, `=module_name` for an `#[api]` module,
//! `=services`) to print expansions while compiling.
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

mod api;
mod ctxt;
mod debug;
mod deps;
mod endpoint;
mod kw;
mod policy;
mod services;

use proc_macro::TokenStream;

/// Declares the downstream services. See the `orchestrate` crate for the grammar.
#[proc_macro]
pub fn services(input: TokenStream) -> TokenStream {
    services::expand(input.into()).into()
}

/// Serves every `#[endpoint]` of an inline module: generates `router(&Runtime)` and `ENDPOINTS`.
#[proc_macro_attribute]
pub fn api(args: TokenStream, item: TokenStream) -> TokenStream {
    api::expand(args.into(), item.into()).into()
}

/// `unknown_service!(carts; cart, pricing)`: the compile error of a `#[call(service = "carts")]`
/// that names no declared service, at the name, with the closest declared one. Expanded by the
/// lookup macro `services!` generates; not for direct use.
#[doc(hidden)]
#[proc_macro]
pub fn __unknown_service(input: TokenStream) -> TokenStream {
    services::unknown_service(input.into()).into()
}

/// Turns a struct into an endpoint. See the `orchestrate` crate for the grammar.
#[proc_macro_attribute]
pub fn endpoint(args: TokenStream, item: TokenStream) -> TokenStream {
    endpoint::expand(args.into(), item.into()).into()
}
