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
    canary: Option<Version>,
}

/// What `#[api]` needs of an endpoint's `canary(..)`: its version and weight, where written.
struct Version {
    /// `None` when `canary(..)` has a mistake.
    name: Option<String>,
    name_span: Span,
    weight: u32,
    weight_span: Span,
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
                        let canary = canary_of(&args);
                        check_conflict(&routes, &item.ident, method, &route, canary.as_ref(), &mut errors);
                        routes.push(Route { ident: item.ident.clone(), method, route, canary });
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
    check_versions(&routes, &mut errors);
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

/// The version and weight of an endpoint attribute's `canary(..)`, if it has one (its mistakes
/// are reported by the endpoint expansion itself: a `canary(..)` that does not read is a canary
/// of no known version and weight 0, so that it causes no second error here).
fn canary_of(args: &TokenStream) -> Option<Version> {
    let mut tokens = args.clone().into_iter().peekable();
    while let Some(token) = tokens.next() {
        let proc_macro2::TokenTree::Ident(ident) = &token else { continue };
        if ident != "canary" {
            continue;
        }
        let unread = Version { name: None, name_span: ident.span(), weight: 0, weight_span: ident.span() };
        let Some(proc_macro2::TokenTree::Group(group)) = tokens.peek() else { return Some(unread) };
        let group = TokenStream::from(proc_macro2::TokenTree::Group(group.clone()));
        let Ok(value) = (|input: ParseStream<'_>| crate::policy::group(input, ident.span())).parse2(group) else {
            return Some(unread);
        };
        let span_of = |key: &str| match &value {
            orchestrate_core::policy::Value::Table(entries, _) => {
                entries.iter().find(|e| e.key == key).map_or(ident.span(), |e| e.value.at().span)
            }
            _ => ident.span(),
        };
        let (name_span, weight_span) = (span_of("version"), span_of("weight"));
        let mut reader = orchestrate_core::policy::Reader::new(orchestrate_core::policy::Syntax::Dsl);
        let at = crate::policy::At::span(ident.span());
        return Some(match orchestrate_core::policy::canary::read(&mut reader, &at, &value) {
            Some(canary) => Version { name: Some(canary.version), name_span, weight: canary.weight, weight_span },
            None => unread,
        });
    }
    None
}

fn check_conflict(
    routes: &[Route],
    ident: &Ident,
    method: HttpMethod,
    route: &LitStr,
    canary: Option<&Version>,
    errors: &mut Errors,
) {
    let path = route.value();
    for earlier in routes {
        let earlier_path = earlier.route.value();
        if earlier_path == path && earlier.method == method {
            match (canary, &earlier.canary) {
                (None, None) => {
                    errors.at(
                        route.span(),
                        format!(
                            "`{} {path}` is already served by `{}`; two endpoints of one `#[api]` module cannot share a method and path (axum would panic at start-up): change the method or the path of `{ident}`, or make it a canary version with `canary(version = \"v2\", weight = 5)`",
                            method.upper(),
                            earlier.ident
                        ),
                    );
                    errors.at(
                        earlier.route.span(),
                        format!("`{}` serves `{} {path}` here", earlier.ident, method.upper()),
                    );
                }
                (Some(Version { name: Some(ours), name_span, .. }), Some(theirs))
                    if theirs.name.as_ref() == Some(ours) =>
                {
                    let route_text = format!("{} {path}", method.upper());
                    let first = earlier.ident.to_string();
                    errors
                        .at(*name_span, orchestrate_core::policy::canary::duplicate_version(ours, &route_text, &first));
                    errors.at(theirs.name_span, format!("`{first}` is version \"{ours}\" here"));
                }
                _ => {}
            }
        } else if earlier_path != path && shape(&earlier_path) == shape(&path) {
            errors.at(
                route.span(),
                format!("\"{path}\" and \"{earlier_path}\" (`{}`) are the same path with different parameter names, which axum rejects at start-up: use the same names", earlier.ident),
            );
            errors.at(earlier.route.span(), format!("`{}` uses \"{earlier_path}\" here", earlier.ident));
        }
    }
}

/// Every route with canaries has its stable version, and its canaries' weights add up to at
/// most 100.
fn check_versions(routes: &[Route], errors: &mut Errors) {
    for (i, route) in routes.iter().enumerate() {
        let Some(canary) = &route.canary else { continue };
        let same = |r: &&Route| r.method == route.method && r.route.value() == route.route.value();
        // Each route once: at its first canary.
        if routes[..i].iter().filter(same).any(|r| r.canary.is_some()) {
            continue;
        }
        let route_text = format!("{} {}", route.method.upper(), route.route.value());
        if canary.name.is_some() && !routes.iter().filter(same).any(|r| r.canary.is_none()) {
            errors.at(
                canary.name_span,
                orchestrate_core::policy::canary::no_stable(&route.ident.to_string(), &route_text),
            );
        }
        let canaries: Vec<&Version> = routes.iter().filter(same).filter_map(|r| r.canary.as_ref()).collect();
        let total: u32 = canaries.iter().map(|c| c.weight).sum();
        if total > 100
            && let Some(last) = canaries.last()
        {
            errors.at(last.weight_span, orchestrate_core::policy::canary::weights_over(&route_text, total));
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
    // One handler per method and path: the endpoint, or a choice between its versions.
    let mut groups: Vec<TokenStream> = Vec::new();
    let calls = paths.iter().map(|path| {
        let mut methods: Vec<(HttpMethod, Vec<&Route>)> = Vec::new();
        for r in routes.iter().filter(|r| &r.route.value() == path) {
            match methods.iter_mut().find(|(m, _)| *m == r.method) {
                Some((_, versions)) => versions.push(r),
                None => methods.push((r.method, vec![r])),
            }
        }
        let mut chained: Option<TokenStream> = None;
        for (method, versions) in &methods {
            let handler = match versions.as_slice() {
                [only] => {
                    let ident = &only.ident;
                    quote_spanned!(ident.span()=> #p::serve::<#ident>)
                }
                versions => {
                    let group = Ident::new(&format!("__versions_{}", groups.len()), Span::call_site());
                    groups.push(versions_of(&p, &group, versions));
                    versions_handler(&p, &group, versions)
                }
            };
            let method = Ident::new(&method.upper().to_ascii_lowercase(), Span::call_site());
            chained = Some(match chained {
                Some(chain) => quote!(#chain.#method(#handler)),
                None => quote!(#p::axum::routing::#method(#handler)),
            });
        }
        quote!(.route(#path, #chained))
    });
    let calls: Vec<TokenStream> = calls.collect();
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
            #(#groups)*
            #p::axum::Router::new()
                #(#calls)*
                .with_state(::core::clone::Clone::clone(runtime))
        }
    }
}

/// `let __versions_0 = Versions::new(..)`: the state of one route's versions.
fn versions_of(p: &TokenStream, group: &Ident, versions: &[&Route]) -> TokenStream {
    let specs = versions.iter().map(|r| {
        let ident = &r.ident;
        quote_spanned!(ident.span()=> <#ident as ::orchestrate::Endpoint>::SPEC)
    });
    quote!(let #group = #p::Versions::new(runtime.canaries(), &[#(#specs),*]);)
}

/// The handler of a route with versions: choose one, serve it with its endpoint's handler,
/// record what it answered.
fn versions_handler(p: &TokenStream, group: &Ident, versions: &[&Route]) -> TokenStream {
    let arms = versions.iter().filter(|r| r.canary.is_some()).map(|r| {
        let ident = &r.ident;
        let name = ident.to_string();
        quote!(::core::option::Option::Some(spec) if spec.name == #name => #p::serve::<#ident>(state, request).await,)
    });
    let stable = versions.iter().find(|r| r.canary.is_none()).unwrap_or(&versions[0]);
    let stable = &stable.ident;
    quote! {{
        let versions = ::core::clone::Clone::clone(&#group);
        move |state: #p::axum::extract::State<::orchestrate::Runtime>, request: #p::axum::extract::Request| {
            let versions = ::core::clone::Clone::clone(&versions);
            async move {
                let (chosen, started) = #p::choose_version(&state.0, &versions, request.headers()).await;
                let response = match versions.spec(chosen) {
                    #(#arms)*
                    _ => #p::serve::<#stable>(state, request).await,
                };
                #p::answered_version(&versions, chosen, started, response)
            }
        }
    }}
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
