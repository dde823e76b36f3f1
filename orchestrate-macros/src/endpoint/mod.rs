//! `#[endpoint]`: parse → model → check → expand.

mod check;
mod expand;
pub(crate) mod model;
mod parse;

use crate::ctxt::{Errors, with_fallback};
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ItemStruct;

/// Expands `#[endpoint(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut item: ItemStruct = match syn::parse2(item) {
        Ok(item) => item,
        Err(e) => {
            return syn::Error::new(e.span(), "`#[endpoint]` goes on a struct with named fields").into_compile_error();
        }
    };
    let output = expand_struct(args, &mut item);
    crate::debug::print(&item.ident.to_string(), &output);
    output
}

/// Expands one endpoint struct (also used by `#[api]` for each endpoint of a module).
pub(crate) fn expand_struct(args: TokenStream, item: &mut ItemStruct) -> TokenStream {
    let mut errors = Errors::new();
    let endpoint = parse::parse(args, item, &mut errors);
    let plan = endpoint.as_ref().and_then(|e| check::check(e, &mut errors));
    match (errors.finish(), endpoint, plan) {
        (Ok(()), Some(endpoint), Some(plan)) => expand::expand(&endpoint, &plan, item),
        (Err(error), ..) => with_fallback(error, item.to_token_stream()),
        // Parsing or checking stopped without an error: cannot happen, but never emit nothing.
        (Ok(()), ..) => with_fallback(
            syn::Error::new(item.ident.span(), "`#[endpoint]` could not be expanded"),
            item.to_token_stream(),
        ),
    }
}
