//! `#[api] mod name { .. }`: expands every `#[endpoint]` struct of the module and generates
//! `name::router(&runtime)` and `name::ENDPOINTS`. `#[api(rate_limit(..))]` gives every endpoint
//! of the module the limits it does not set itself.
//!
//! Checks across endpoints: two endpoints on the same method and path, or on paths that differ
//! only in parameter names (axum panics on both at start-up), are compile errors at the second
//! route, pointing at the first.

use crate::ctxt::{Errors, with_fallback};
use crate::endpoint;
use crate::endpoint::model::HttpMethod;
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Ident, Item, ItemMod, LitStr};

struct Route {
    ident: Ident,
    method: HttpMethod,
    route: LitStr,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let module_defaults = module_args(args, &mut errors);
    let mut module: ItemMod = match syn::parse2(item) {
        Ok(module) => module,
        Err(e) => {
            return syn::Error::new(
                e.span(),
                "`#[api]` goes on an inline module: `#[orchestrate::api] pub mod checkout { .. }`",
            )
            .into_compile_error();
        }
    };
    let Some((_, items)) = module.content.take() else {
        errors.at(
            module.ident.span(),
            "`#[api]` needs the module's items inline: write `mod checkout { .. }`, not `mod checkout;`",
        );
        return with_fallback(
            errors.finish().err().unwrap_or_else(|| syn::Error::new(Span::call_site(), "")),
            module.to_token_stream(),
        );
    };
    let mut routes: Vec<Route> = Vec::new();
    let mut out: Vec<TokenStream> = Vec::with_capacity(items.len() + 1);
    for item in items {
        match item {
            Item::Struct(mut item) => match take_endpoint_attr(&mut item.attrs) {
                Some(attr) => {
                    let args = match &attr.meta {
                        syn::Meta::List(list) => list.tokens.clone(),
                        _ => TokenStream::new(),
                    };
                    if let Some((method, route)) = route_of(&args) {
                        check_conflict(&routes, &item.ident, method, &route, &mut errors);
                        routes.push(Route { ident: item.ident.clone(), method, route });
                    }
                    let expanded = endpoint::expand_struct(args, &mut item, &module_defaults);
                    crate::debug::print(&item.ident.to_string(), &expanded);
                    out.push(expanded);
                }
                None => out.push(item.into_token_stream()),
            },
            other => out.push(other.into_token_stream()),
        }
    }
    out.push(router(&routes));
    let ItemMod { attrs, vis, unsafety, mod_token, ident, .. } = &module;
    let output = quote! {
        #(#attrs)*
        #vis #unsafety #mod_token #ident {
            #(#out)*
        }
    };
    crate::debug::print(&ident.to_string(), &output);
    match errors.finish() {
        Ok(()) => output,
        Err(error) => with_fallback(error, output),
    }
}

/// The keys `#[api(..)]` takes.
const API_KEYS: &[&str] = &["auth", "rate_limit"];

/// `#[api(auth = jwt, rate_limit(..))]`: what every endpoint of the module inherits unless it
/// says otherwise.
fn module_args(args: TokenStream, errors: &mut Errors) -> endpoint::ModuleDefaults {
    let mut defaults = endpoint::ModuleDefaults::default();
    let parser = |input: ParseStream<'_>| -> syn::Result<()> {
        let mut seen = crate::kw::Seen::new("#[api]");
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            if !seen.first(&key, errors) {
                crate::kw::skip_to_comma(input);
            } else if key == "rate_limit" {
                defaults.rate_limit = endpoint::parse_rate_limit(input, &key, errors)?;
            } else if key == "auth" {
                defaults.auth = endpoint::parse_auth(input, &key, errors)?.map(|(a, _)| a);
            } else {
                crate::kw::unknown(&key, "#[api]", API_KEYS, &seen.names(), errors);
                crate::kw::skip_to_comma(input);
            }
            crate::kw::comma_or_end(input)?;
        }
        Ok(())
    };
    if let Err(e) = parser.parse2(args) {
        errors.push(e);
    }
    defaults
}

fn take_endpoint_attr(attrs: &mut Vec<Attribute>) -> Option<Attribute> {
    let position = attrs.iter().position(|attr| {
        let path = attr.path();
        let n = path.segments.len();
        path.segments.last().is_some_and(|s| s.ident == "endpoint")
            && (n == 1 || (n == 2 && path.segments[0].ident == "orchestrate"))
    })?;
    Some(attrs.remove(position))
}

/// The method and route of an endpoint attribute, if they parse (errors are reported by the
/// endpoint expansion itself).
fn route_of(args: &TokenStream) -> Option<(HttpMethod, LitStr)> {
    let parser = |input: ParseStream<'_>| -> syn::Result<(Ident, LitStr)> {
        let method: Ident = input.parse()?;
        let route: LitStr = input.parse()?;
        let _: TokenStream = input.parse()?;
        Ok((method, route))
    };
    let (method, route) = parser.parse2(args.clone()).ok()?;
    Some((HttpMethod::from_name(&method.to_string())?, route))
}

/// The route with parameter names erased: `/carts/{id}` and `/carts/{cart_id}` are one path to
/// axum.
fn shape(route: &str) -> String {
    let mut out = String::with_capacity(route.len());
    let mut in_param = false;
    for c in route.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push('{');
            }
            '}' => {
                in_param = false;
                out.push('}');
            }
            '*' if in_param => out.push('*'),
            _ if in_param => {}
            c => out.push(c),
        }
    }
    out
}

fn check_conflict(routes: &[Route], ident: &Ident, method: HttpMethod, route: &LitStr, errors: &mut Errors) {
    let path = route.value();
    for earlier in routes {
        let earlier_path = earlier.route.value();
        if earlier_path == path && earlier.method == method {
            errors.at(
                route.span(),
                format!(
                    "`{} {path}` is already served by `{}`; two endpoints of one `#[api]` module cannot share a method and path (axum would panic at start-up): change the method or the path of `{ident}`",
                    method.upper(),
                    earlier.ident
                ),
            );
            errors.at(earlier.route.span(), format!("`{}` serves `{} {path}` here", earlier.ident, method.upper()));
        } else if earlier_path != path && shape(&earlier_path) == shape(&path) {
            errors.at(
                route.span(),
                format!("\"{path}\" and \"{earlier_path}\" (`{}`) are the same path with different parameter names, which axum rejects at start-up: use the same names", earlier.ident),
            );
            errors.at(earlier.route.span(), format!("`{}` uses \"{earlier_path}\" here", earlier.ident));
        }
    }
}

fn router(routes: &[Route]) -> TokenStream {
    let p = quote!(::orchestrate::__private);
    let mut paths: Vec<String> = Vec::new();
    for r in routes {
        let path = r.route.value();
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    let calls = paths.iter().map(|path| {
        let mut methods = routes.iter().filter(|r| &r.route.value() == path);
        let first = methods.next().map(|r| method_router(&p, r, None));
        let chained = methods.fold(first.unwrap_or_default(), |acc, r| method_router(&p, r, Some(acc)));
        quote!(.route(#path, #chained))
    });
    let specs = routes.iter().map(|r| {
        let ident = &r.ident;
        quote_spanned!(ident.span()=> <#ident as ::orchestrate::Endpoint>::SPEC)
    });
    quote! {
        /// Every endpoint of this module, for start-up validation and documentation.
        pub const ENDPOINTS: &[&'static ::orchestrate::EndpointSpec] = &[#(#specs),*];

        /// An axum router serving every endpoint of this module. Compose it with `merge`, `nest`
        /// and `layer`, and finish the application with `orchestrate::router::app`.
        pub fn router(runtime: &::orchestrate::Runtime) -> #p::axum::Router {
            #p::axum::Router::new()
                #(#calls)*
                .with_state(::core::clone::Clone::clone(runtime))
        }
    }
}

fn method_router(p: &TokenStream, route: &Route, chain: Option<TokenStream>) -> TokenStream {
    let ident = &route.ident;
    let method = Ident::new(&route.method.upper().to_ascii_lowercase(), Span::call_site());
    let handler = quote_spanned!(ident.span()=> #p::serve::<#ident>);
    match chain {
        Some(chain) => quote!(#chain.#method(#handler)),
        None => quote!(#p::axum::routing::#method(#handler)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_erase_parameter_names() {
        assert_eq!(shape("/carts/{id}/items/{sku}"), "/carts/{}/items/{}");
        assert_eq!(shape("/files/{*rest}"), "/files/{*}");
        assert_eq!(shape("/carts/{id}"), shape("/carts/{cart_id}"));
    }
}
