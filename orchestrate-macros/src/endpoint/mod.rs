//! `#[endpoint]`: parse → model → check → expand.

mod check;
mod doc;
mod expand;
mod fallback;
pub(crate) mod model;
mod parse;

pub(crate) use parse::parse_auth;

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
    let output = expand_struct(args, &mut item, &ModuleDefaults::default());
    crate::debug::print(&item.ident.to_string(), &output);
    output
}

/// What an `#[api]` module declares for every endpoint in it.
#[derive(Default)]
pub(crate) struct ModuleDefaults {
    /// `#[api(rate_limit(..))]`: each limit an endpoint does not set itself.
    pub(crate) rate_limit: orchestrate_core::policy::RateLimits,
    /// `#[api(auth = ..)]`: the authentication of every endpoint that says none itself.
    pub(crate) auth: Option<model::Auth>,
}

pub(crate) use parse::parse_rate_limit;

/// Expands one endpoint struct (also used by `#[api]` for each endpoint of a module, with the
/// module's defaults).
pub(crate) fn expand_struct(args: TokenStream, item: &mut ItemStruct, module: &ModuleDefaults) -> TokenStream {
    let mut errors = Errors::new();
    let mut endpoint = parse::parse(args, item, module.auth, &mut errors);
    if let Some(endpoint) = &mut endpoint {
        endpoint.rate_limit = endpoint.rate_limit.or(module.rate_limit);
    }
    let plan = endpoint.as_ref().filter(|e| e.head_ok).and_then(|e| check::check(e, &mut errors));
    match (errors.finish(), endpoint, plan) {
        (Ok(()), Some(endpoint), Some(plan)) => expand::expand(&endpoint, &plan, item),
        // Stand-ins for what would have been generated, so one mistake is one error.
        (Err(error), Some(endpoint), _) => with_fallback(error, fallback::fallback(&endpoint, item)),
        (Err(error), None, _) => with_fallback(error, item.to_token_stream()),
        // Parsing or checking stopped without an error: cannot happen, but never emit nothing.
        (Ok(()), ..) => with_fallback(
            syn::Error::new(item.ident.span(), "`#[endpoint]` could not be expanded"),
            item.to_token_stream(),
        ),
    }
}

#[cfg(test)]
mod tests {
    //! The macros never panic on user input: every variation of valid input with one token
    //! removed, doubled or replaced (at every depth) expands to code or to compile errors.

    use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenTree};
    use quote::quote;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::*;

    /// Tokens that stress the parsers when put anywhere.
    fn replacements() -> Vec<TokenTree> {
        let mut out: Vec<TokenTree> = [
            "",
            "{",
            "}",
            "{}",
            "/{",
            "/a/{}",
            "/{a",
            "0ms",
            "200 ms",
            "99999999999999999999h",
            "é",
            "r#x",
            "_",
            "fn",
            "{a}{b}",
            "/{*rest}/x",
            "http://",
            "-1",
        ]
        .into_iter()
        .map(|s| TokenTree::Literal(Literal::string(s)))
        .collect();
        out.push(TokenTree::Literal(Literal::u64_unsuffixed(0)));
        out.push(TokenTree::Literal(Literal::u64_unsuffixed(u64::MAX)));
        out.push(TokenTree::Ident(Ident::new("required", Span::call_site())));
        out.push(TokenTree::Ident(Ident::new("Option", Span::call_site())));
        out.push(TokenTree::Punct(Punct::new(',', Spacing::Alone)));
        out.push(TokenTree::Punct(Punct::new('=', Spacing::Alone)));
        out.push(TokenTree::Group(Group::new(Delimiter::Parenthesis, TokenStream::new())));
        out
    }

    /// Every variation of `stream` with one token (at any depth) removed, doubled or replaced.
    fn mutations(stream: &TokenStream, replacements: &[TokenTree]) -> Vec<TokenStream> {
        let tokens: Vec<TokenTree> = stream.clone().into_iter().collect();
        let with = |i: usize, middle: Vec<TokenTree>| -> TokenStream {
            tokens[..i].iter().cloned().chain(middle).chain(tokens[i + 1..].iter().cloned()).collect()
        };
        let mut out = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            out.push(with(i, vec![]));
            out.push(with(i, vec![token.clone(), token.clone()]));
            out.extend(replacements.iter().map(|r| with(i, vec![r.clone()])));
            if let TokenTree::Group(group) = token {
                for inner in mutations(&group.stream(), replacements) {
                    out.push(with(i, vec![TokenTree::Group(Group::new(group.delimiter(), inner))]));
                }
            }
        }
        out
    }

    fn never_panics(what: &str, input: &TokenStream, run: impl Fn(TokenStream)) {
        let outcome = catch_unwind(AssertUnwindSafe(|| run(input.clone())));
        assert!(outcome.is_ok(), "{what} panicked on: {input}");
    }

    #[test]
    fn an_endpoint_never_panics_on_mangled_input() {
        let args = quote!(POST "/orders/{id}", timeout = "2s");
        let item = quote! {
            struct Order {
                #[input(path)] id: String,
                #[input(body)] req: Req,
                #[call(service = "cart", timeout = "200ms", required, get = "/carts/{req.cart_id}?q={id}", retry(attempts = 2, backoff = "50ms"))]
                cart: Cart,
                #[call(service = "catalog", timeout = "100ms", get = "/p/{item.sku}", for_each = item in &cart.items, concurrency = 4, fallback = Vec::new())]
                products: Vec<Product>,
                #[call(service = "pay", timeout = "300ms", post = "/charges", body = Charge::of(&cart), idempotency_key = id.clone(), after = [products], when = cart.total > 0)]
                receipt: Option<Receipt>,
                #[call(service = "loyalty", timeout = "100ms", required, idempotent, with = tier(&cart))]
                tier: Tier,
                #[compute({ let n = cart.items.len(); format!("{n} {}", tier.name) })]
                label: String,
            }
        };
        let replacements = replacements();
        let expand = |args: TokenStream, item: TokenStream| drop(super::expand(args, item));
        for variant in mutations(&args, &replacements) {
            never_panics("#[endpoint] arguments", &variant, |v| expand(v, item.clone()));
        }
        for variant in mutations(&item, &replacements) {
            never_panics("#[endpoint] struct", &variant, |v| expand(args.clone(), v));
        }
    }

    #[test]
    fn an_api_with_canary_versions_never_panics_on_mangled_input() {
        let input = quote! {
            mod quotes {
                #[endpoint(GET "/quote", timeout = "1s")]
                struct Quote { #[call(service = "pricing", timeout = "200ms", required, get = "/price")] price: Price }
                #[endpoint(GET "/quote", timeout = "1s", canary(version = "v2", weight = 5, key = "header:x-user-id", window = "30s"))]
                struct QuoteV2 { #[call(service = "pricing", timeout = "200ms", required, get = "/price")] price: Price }
            }
        };
        for variant in mutations(&input, &replacements()) {
            never_panics("#[api]", &variant, |v| drop(crate::api::expand(TokenStream::new(), v)));
        }
    }

    #[test]
    fn services_never_panics_on_mangled_input() {
        let input = quote! {
            cart: "http://cart.internal:8080" { retry(attempts = 3, backoff = "100ms", max_backoff = "1s", on = [5xx, timeout]), breaker(failures = 5, within = "60s", open_for = "30s", probes = 3), max_in_flight = 48 },
            pricing: "http://pricing.internal:8080" { max_body = "8MiB", retry_budget(percent = 20, within = "10s"), forward_headers = ["x-tenant"] },
        };
        for variant in mutations(&input, &replacements()) {
            never_panics("services!", &variant, |v| drop(crate::services::expand(v)));
        }
    }
}
