//! `services! { .. }`: parse → validate → expand the downstream service declaration.
//!
//! Grammar:
//!
//! ```text
//! services! {
//!     name: "http://base.url" [ { policy, policy, .. } ] ,
//!     ..
//! }
//! policy := retry(attempts = N, backoff = "100ms" [, max_backoff = "1s"] [, on = [5xx, timeout, connect, 429]])
//!         | breaker(failures = N, within = "60s", open_for = "30s", probes = N)
//!         | max_in_flight = N
//!         | max_body = "8MiB"
//!         | retry_budget(percent = 20, within = "10s" [, min_retries = 10])
//!         | forward_headers = ["x-tenant-id", ..]
//!         | http2 = true            // HTTP/2 only: h2c with prior knowledge over `http://`
//! ```

use crate::ctxt::{Errors, with_fallback};
use crate::policy;
use orchestrate_core::policy::{Concurrency, Reader, RetryPolicy, ServicePolicies, Syntax, Trip, service};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use std::time::Duration;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, LitStr, Token, braced};

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let services = match (|stream: ParseStream<'_>| parse_services(stream, &mut errors)).parse2(input) {
        Ok(services) => services,
        Err(error) => {
            errors.push(error);
            Vec::new()
        }
    };
    let output = generate(&services);
    crate::debug::print("services", &output);
    match errors.finish() {
        Ok(()) => output,
        // Still emit the declaration (with what did parse) so endpoints referring to these
        // services do not fail in turn.
        Err(error) => with_fallback(error, output),
    }
}

struct ServiceDecl {
    name: Ident,
    url: LitStr,
    policies: ServicePolicies,
}

fn parse_services(input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<Vec<ServiceDecl>> {
    let mut services: Vec<ServiceDecl> = Vec::new();
    while !input.is_empty() {
        let name: Ident = input.parse().map_err(|e| {
            syn::Error::new(e.span(), "expected a service name, e.g. `cart: \"http://cart.internal:8080\"`")
        })?;
        if !input.peek(Token![:]) {
            return Err(syn::Error::new(
                name.span(),
                format!("expected `:` and a base URL after `{name}`, e.g. `{name}: \"http://{name}.internal:8080\"`"),
            ));
        }
        input.parse::<Token![:]>()?;
        let url: LitStr = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("the base URL of `{name}` is a string, e.g. \"http://{name}.internal:8080\""),
            )
        })?;
        if let Err(reason) = orchestrate_core::url::check_base_urls(&url.value()) {
            errors.at(url.span(), format!("base URL of `{name}` {reason}"));
        }
        let mut policies = ServicePolicies::default();
        if input.peek(syn::token::Brace) {
            let content;
            braced!(content in input);
            let entries = policy::entries(&content, errors);
            let mut reader = Reader::new(Syntax::Dsl);
            match service::read(&mut reader, &entries, None) {
                Some(read) => policies = read,
                None => policy::report(reader.into_problems(), errors),
            }
        }
        let decl = ServiceDecl { name, url, policies };
        if let Some(first) = services.iter().find(|s| s.name == decl.name) {
            errors.at(decl.name.span(), format!("service `{}` is declared twice; keep one declaration", decl.name));
            errors.at(first.name.span(), format!("first `{}` is here", decl.name));
        } else {
            // Only the first declaration is generated: a second `struct cart` would add rustc's
            // "defined multiple times" and "conflicting implementations" errors to ours.
            services.push(decl);
        }
        if !input.is_empty() {
            input.parse::<Token![,]>().map_err(|e| syn::Error::new(e.span(), "expected `,` between services"))?;
        }
    }
    Ok(services)
}

/// `carts; cart, pricing` → a compile error at `carts` naming the closest declared service.
pub(crate) fn unknown_service(input: TokenStream) -> TokenStream {
    let parser = |input: ParseStream<'_>| -> syn::Result<(Ident, Vec<Ident>)> {
        let name: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        input.parse::<Token![;]>()?;
        let declared = input.parse_terminated(Ident::parse_any_service, Token![,])?;
        Ok((name, declared.into_iter().collect()))
    };
    let (name, declared) = match parser.parse2(input) {
        Ok(parsed) => parsed,
        Err(e) => return e.into_compile_error(),
    };
    let names: Vec<String> = declared.iter().map(Ident::to_string).collect();
    let wanted = name.to_string();
    let near = orchestrate_core::suggest::closest(&wanted, names.iter().map(String::as_str));
    let message = match (near, names.is_empty()) {
        (_, true) => format!("unknown service `{wanted}`: `services!` declares none"),
        (Some(near), _) => format!(
            "unknown service `{wanted}`; did you mean `service = \"{near}\"`? (declared in `services!`: {})",
            names.join(", ")
        ),
        (None, _) => format!(
            "unknown service `{wanted}`; declare it in `services!` or use one declared there: {}",
            names.join(", ")
        ),
    };
    // In type position: a valid service type carrying the error in its const argument, so that
    // the error is the only one (no "`()` is not a downstream service" after it).
    let error = syn::Error::new(name.span(), message).into_compile_error();
    quote_spanned!(name.span()=> ::orchestrate::__private::UnknownService<{ #error; 0 }>)
}

trait ParseAnyService {
    fn parse_any_service(input: ParseStream<'_>) -> syn::Result<Ident>;
}

impl ParseAnyService for Ident {
    fn parse_any_service(input: ParseStream<'_>) -> syn::Result<Ident> {
        input.call(syn::ext::IdentExt::parse_any)
    }
}

fn millis(d: Duration) -> TokenStream {
    let ms = d.as_millis() as u64;
    quote!(::core::time::Duration::from_millis(#ms))
}

fn generate(services: &[ServiceDecl]) -> TokenStream {
    let specs = services.iter().map(spec_tokens);
    let markers = services.iter().enumerate().map(|(index, s)| {
        let name = &s.name;
        let doc = format!("The `{name}` service (default base URL `{}`).", s.url.value());
        quote_spanned! {name.span()=>
            #[doc = #doc]
            #[allow(non_camel_case_types)]
            #[derive(Debug, Clone, Copy)]
            pub struct #name;

            #[automatically_derived]
            impl ::orchestrate::Service for #name {
                const INDEX: usize = #index;
                const SPEC: &'static ::orchestrate::ServiceSpec = &ALL[#index];
                const ALL: &'static [::orchestrate::ServiceSpec] = ALL;
            }
        }
    });
    let module = format_ident!("services");
    let names: Vec<&Ident> = services.iter().map(|s| &s.name).collect();
    quote! {
        /// Downstream services, declared with `orchestrate::services!`.
        ///
        /// Build the runtime from them with `orchestrate::Runtime::new(services::ALL)`.
        pub mod #module {
            /// Every declared service, in declaration order.
            pub const ALL: &[::orchestrate::ServiceSpec] = &[#(#specs),*];
            #(#markers)*

            // `#[call(service = "..")]` names a service through this macro: a declared name is its
            // marker type, any other name one compile error with the closest declared name.
            #[doc(hidden)]
            #[allow(unused_macros)]
            macro_rules! __orchestrate_service {
                #( (#names) => { services::#names }; )*
                ($other:ident) => { ::orchestrate::__private::unknown_service!($other; #(#names),*) };
            }
            #[doc(hidden)]
            #[allow(unused_imports)]
            pub(crate) use __orchestrate_service as service;
        }
    }
}

/// The retry policy as tokens, for `services!` and the call-level `retry(..)`.
pub(crate) fn retry_tokens(r: &RetryPolicy) -> TokenStream {
    let attempts = r.attempts;
    let backoff = millis(r.backoff);
    let mut retry = quote!(::orchestrate::RetryPolicy::new(#attempts, #backoff));
    if r.max_backoff != RetryPolicy::default_max_backoff(r.backoff) {
        let max = millis(r.max_backoff);
        retry = quote!(#retry.with_max_backoff(#max));
    }
    let on = r.on;
    if on != orchestrate_core::policy::RetryOn::DEFAULT {
        let (a, b, c, d) = (on.server_errors, on.timeouts, on.connect_errors, on.too_many_requests);
        retry = quote!(#retry.with_retry_on(::orchestrate::RetryOn::NOTHING
            .with_server_errors(#a).with_timeouts(#b).with_connect_errors(#c).with_too_many_requests(#d)));
    }
    retry
}

fn spec_tokens(s: &ServiceDecl) -> TokenStream {
    let name = s.name.to_string();
    let url = &s.url;
    let p = &s.policies;
    let defaults = ServicePolicies::default();
    let mut spec = quote!(::orchestrate::ServiceSpec::new(#name, #url));
    if p.retry != RetryPolicy::NONE {
        let retry = retry_tokens(&p.retry);
        spec = quote!(#spec.with_retry(#retry));
    }
    if let Some(b) = &p.breaker {
        let probes = b.probes;
        let (within, open_for) = (millis(b.within), millis(b.open_for));
        let breaker = match b.trip {
            Trip::Failures { failures } => {
                quote!(::orchestrate::BreakerPolicy::new(#failures, #within, #open_for, #probes))
            }
            Trip::Rate { failure_percent, min_calls, slow_call, slow_percent } => {
                let mut rate = quote!(::orchestrate::BreakerPolicy::rate(#failure_percent, #min_calls, #within, #open_for, #probes));
                if let Some(over) = slow_call {
                    let over = millis(over);
                    rate = quote!(#rate.with_slow_calls(#over, #slow_percent));
                }
                rate
            }
            // Every trip the grammar reads is one of the above.
            _ => quote!(::orchestrate::BreakerPolicy::new(1, #within, #open_for, #probes)),
        };
        spec = quote!(#spec.with_breaker(#breaker));
    }
    match p.max_in_flight {
        Concurrency::Fixed(n) => spec = quote!(#spec.with_max_in_flight(#n)),
        Concurrency::Adaptive { initial, min, max } if p.max_in_flight != Concurrency::AUTO => {
            spec = quote!(#spec.with_concurrency(::orchestrate::Concurrency::Adaptive { initial: #initial, min: #min, max: #max }));
        }
        _ => {}
    }
    if p.max_body != defaults.max_body {
        let n = p.max_body;
        spec = quote!(#spec.with_max_body(#n));
    }
    if p.retry_budget != defaults.retry_budget {
        let b = &p.retry_budget;
        let (percent, min) = (b.percent, b.min_retries);
        let within = millis(b.within);
        spec = quote!(#spec.with_retry_budget(::orchestrate::RetryBudget::new(#percent, #within, #min)));
    }
    if p.hedge_budget != defaults.hedge_budget {
        let percent = p.hedge_budget.percent;
        spec = quote!(#spec.with_hedge_budget(::orchestrate::HedgeBudget::new(#percent)));
    }
    if p.balance != defaults.balance {
        let b = &p.balance;
        let (rtt, decay, eject_for) = (millis(b.rtt), millis(b.decay), millis(b.eject_for));
        let (failures, share) = (b.failures, b.max_ejected_percent);
        spec = quote!(#spec.with_balance(::orchestrate::BalancePolicy::DEFAULT.with_estimate(#rtt, #decay).with_ejection(#failures, #eject_for, #share)));
    }
    if !p.forward_headers.is_empty() {
        let headers = &p.forward_headers;
        spec = quote!(#spec.with_forward_headers(&[#(#headers),*]));
    }
    if p.http2 {
        spec = quote!(#spec.with_http2(true));
    }
    if let Some(limit) = &p.rate_limit {
        let (count, secs, wait) = (limit.rate.count, limit.rate.per.as_secs(), limit.wait);
        spec = quote!(#spec.with_rate_limit(
            ::orchestrate::Outbound::new(::orchestrate::Rate::new(#count, ::core::time::Duration::from_secs(#secs))).waiting(#wait)
        ));
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(tokens: TokenStream) -> Vec<String> {
        let mut errors = Errors::new();
        let parsed = (|s: ParseStream<'_>| parse_services(s, &mut errors)).parse2(tokens);
        if let Err(e) = parsed {
            errors.push(e);
        }
        match errors.finish() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn parses_the_design_declaration() {
        let mut errors = Errors::new();
        let services = (|s: ParseStream<'_>| parse_services(s, &mut errors))
            .parse2(quote! {
                cart: "http://cart.internal:8080" { retry(attempts = 3, backoff = "100ms"), breaker(failures = 5, within = "60s", open_for = "30s", probes = 3), max_in_flight = 48 },
                inventory: "http://inventory.internal:8080",
                shipping: "http://shipping.internal:8080" { breaker(failures = 3, within = "30s", open_for = "60s", probes = 2), http2 = true },
            })
            .unwrap();
        assert!(errors.is_empty());
        assert_eq!(services.len(), 3);
        assert!(services[2].policies.http2 && !services[0].policies.http2);
        let cart = &services[0].policies;
        assert_eq!(cart.retry.attempts, 3);
        assert_eq!(cart.breaker.unwrap().open_for, Duration::from_secs(30));
        assert_eq!(cart.max_in_flight, Concurrency::Fixed(48));
    }

    #[test]
    fn reports_every_mistake() {
        let errors = errors_of(quote! {
            cart: "cart.internal" { retry(attempts = 0, backoff = "100 ms"), max_in_flite = 4, max_in_flight = 0, http2 = "yes" },
            cart: "http://x",
        });
        let text = errors.join("\n");
        assert!(text.contains("must start with `http://`"), "{text}");
        assert!(text.contains("`attempts` must be at least 1"), "{text}");
        assert!(text.contains("durations have no spaces"), "{text}");
        assert!(text.contains("unknown key `max_in_flite`"), "{text}");
        // `max_in_flight` is written too: the misspelled key cannot be meant as it.
        assert!(!text.contains("did you mean"), "{text}");
        assert!(text.contains("`max_in_flight` must be at least 1"), "{text}");
        assert!(text.contains("`http2` takes `true` or `false`"), "{text}");
        assert!(text.contains("declared twice"), "{text}");
    }

    #[test]
    fn a_service_declared_twice_is_generated_once() {
        let mut errors = Errors::new();
        let services = (|s: ParseStream<'_>| parse_services(s, &mut errors))
            .parse2(quote!(cart: "http://a", pricing: "http://b", cart: "http://c"))
            .unwrap();
        assert_eq!(services.iter().map(|s| s.name.to_string()).collect::<Vec<_>>(), ["cart", "pricing"]);
        assert_eq!(services[0].url.value(), "http://a");
        assert_eq!(errors.finish().unwrap_err().into_iter().count(), 2);
    }

    #[test]
    fn a_policy_lacking_keys_gets_one_error_and_a_misspelled_or_malformed_key_is_not_lacking() {
        let errors = errors_of(quote! {
            a: "http://a" { breaker(failures = 3, within = "30s", open_for = "60s", probe = 2) },
            b: "http://b" { breaker(failures = 3) },
            c: "http://c" { retry_budget(percent = "x") },
        });
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors[0].contains("did you mean `probes`"), "{errors:#?}");
        assert!(errors[1].contains("`breaker` needs `within`, `open_for` and `probes`"), "{errors:#?}");
        assert!(errors[2].contains("`percent` takes a whole number"), "{errors:#?}");
    }
}
