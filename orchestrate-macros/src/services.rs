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
use crate::kw::{self, Seen};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use std::time::Duration;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, LitInt, LitStr, Token, braced, bracketed, parenthesized};

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
    retry: Option<Retry>,
    breaker: Option<Breaker>,
    max_in_flight: Option<u32>,
    max_body: Option<u64>,
    retry_budget: Option<Budget>,
    forward_headers: Vec<String>,
    http2: bool,
}

struct Retry {
    attempts: u32,
    backoff: Duration,
    max_backoff: Option<Duration>,
    on: Option<RetryOn>,
}

#[derive(Default)]
struct RetryOn {
    server_errors: bool,
    timeouts: bool,
    connect_errors: bool,
    too_many_requests: bool,
}

struct Breaker {
    failures: u32,
    within: Duration,
    open_for: Duration,
    probes: u32,
}

struct Budget {
    percent: u32,
    within: Duration,
    min_retries: u32,
}

const POLICIES: &[&str] =
    &["retry", "breaker", "max_in_flight", "max_body", "retry_budget", "forward_headers", "http2"];

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
        if let Err(reason) = check_url(&url.value()) {
            errors.at(url.span(), format!("base URL of `{name}` {reason}"));
        }
        let mut decl = ServiceDecl {
            name,
            url,
            retry: None,
            breaker: None,
            max_in_flight: None,
            max_body: None,
            retry_budget: None,
            forward_headers: Vec::new(),
            http2: false,
        };
        if input.peek(syn::token::Brace) {
            let content;
            braced!(content in input);
            parse_policies(&content, &mut decl, errors);
        }
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

fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("must start with `http://` or `https://`")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err("has no host; write e.g. \"http://cart.internal:8080\"".to_owned());
    }
    if url.contains(char::is_whitespace) {
        return Err("contains whitespace".to_owned());
    }
    if url.contains(['?', '#']) {
        return Err("must not have a query or fragment".to_owned());
    }
    if let Some((_, port)) = host.rsplit_once(':')
        && !host.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(format!("has an invalid port `{port}`"));
    }
    Ok(())
}

fn parse_policies(input: ParseStream<'_>, decl: &mut ServiceDecl, errors: &mut Errors) {
    let mut seen = Seen::new("service policies");
    while !input.is_empty() {
        let key: Ident = match input.parse() {
            Ok(key) => key,
            Err(e) => {
                errors.at(e.span(), format!("expected a policy: {}", POLICIES.join(", ")));
                return;
            }
        };
        let first = seen.first(&key, errors);
        let result = match key.to_string().as_str() {
            "retry" => parse_retry(input, &key, errors).map(|r| {
                if first {
                    decl.retry = Some(r);
                }
            }),
            "breaker" => parse_breaker(input, &key, errors).map(|b| {
                if first {
                    decl.breaker = Some(b);
                }
            }),
            "max_in_flight" => positive(input, &key).map(|n| decl.max_in_flight = Some(n)),
            "max_body" => kw::eq_str(input, &key).and_then(|lit| {
                orchestrate_core::size::parse_size(&lit.value())
                    .map(|n| decl.max_body = Some(n))
                    .map_err(|e| syn::Error::new(kw::sub_span(&lit, &e.at), format!("invalid `max_body`: {e}")))
            }),
            "retry_budget" => parse_budget(input, &key, errors).map(|b| decl.retry_budget = Some(b)),
            "forward_headers" => parse_headers(input, errors).map(|h| decl.forward_headers = h),
            "http2" => kw::eq_token(input, &key).and_then(|()| {
                let lit: syn::LitBool = input
                    .parse()
                    .map_err(|e| syn::Error::new(e.span(), "`http2` takes `true` or `false`, e.g. `http2 = true`"))?;
                decl.http2 = lit.value;
                Ok(())
            }),
            _ => {
                kw::unknown(&key, "service policies", POLICIES, errors);
                kw::skip_to_comma(input);
                Ok(())
            }
        };
        if let Err(e) = result {
            errors.push(e);
            kw::skip_to_comma(input);
        }
        if let Err(e) = kw::comma_or_end(input) {
            errors.at(e.span(), "expected `,` between policies");
            return;
        }
    }
}

fn positive(input: ParseStream<'_>, key: &Ident) -> syn::Result<u32> {
    kw::eq_token(input, key)?;
    let lit: LitInt = input
        .parse()
        .map_err(|e| syn::Error::new(e.span(), format!("`{key}` takes a whole number, e.g. `{key} = 3`")))?;
    let value: u32 = lit
        .base10_parse()
        .map_err(|_| syn::Error::new(lit.span(), format!("`{key}` takes a whole number up to {}", u32::MAX)))?;
    if value == 0 {
        return Err(syn::Error::new(lit.span(), format!("`{key}` must be at least 1")));
    }
    Ok(value)
}

/// The keys of one `(k = v, ..)` policy group.
struct Group {
    values: Vec<(Ident, ParsedValue)>,
    /// Keys that unknown keys most likely meant (`probe` → `probes`): already reported, so not
    /// reported missing again.
    meant: Vec<String>,
}

impl Group {
    fn has(&self, key: &str) -> bool {
        self.values.iter().any(|(k, _)| k == key) || self.meant.iter().any(|k| k == key)
    }

    fn get(&self, key: &str) -> Option<&(Ident, ParsedValue)> {
        self.values.iter().find(|(k, _)| k == key)
    }

    /// The span of `key`'s value.
    fn value_span(&self, key: &str) -> Option<Span> {
        self.get(key).map(|(_, v)| v.span())
    }

    /// One error at the policy's name listing every key it lacks.
    fn require(&self, policy: &Ident, keys: &[&str], example: &str, errors: &mut Errors) {
        let missing: Vec<String> = keys.iter().filter(|k| !self.has(k)).map(|k| format!("`{k}`")).collect();
        if let Some((last, rest)) = missing.split_last() {
            let list = if rest.is_empty() { last.clone() } else { format!("{} and {last}", rest.join(", ")) };
            errors.at(policy.span(), format!("`{policy}` needs {list}, e.g. `{example}`"));
        }
    }
}

/// Parses `(k = v, ..)` with the given keys.
fn parse_group(input: ParseStream<'_>, what: &'static str, keys: &[&str], errors: &mut Errors) -> syn::Result<Group> {
    let content;
    parenthesized!(content in input);
    let mut seen = Seen::new(what);
    let mut group = Group { values: Vec::new(), meant: Vec::new() };
    while !content.is_empty() {
        let key: Ident = content.parse()?;
        if !keys.contains(&key.to_string().as_str()) {
            kw::unknown(&key, what, keys, errors);
            group
                .meant
                .extend(orchestrate_core::suggest::closest(&key.to_string(), keys.iter().copied()).map(str::to_owned));
            kw::skip_to_comma(&content);
        } else if seen.first(&key, errors) {
            kw::eq_token(&content, &key)?;
            let value = if content.peek(LitStr) {
                ParsedValue::Str(content.parse()?)
            } else if content.peek(LitInt) {
                ParsedValue::Int(content.parse()?)
            } else if content.peek(syn::token::Bracket) {
                let list;
                let bracket = bracketed!(list in content);
                let items = list.parse_terminated(syn::Lit::parse_or_ident, Token![,])?.into_iter().collect();
                ParsedValue::List(items, bracket.span.join())
            } else {
                return Err(content.error(format!("`{key}` needs a value")));
            };
            group.values.push((key, value));
        } else {
            kw::skip_to_comma(&content);
        }
        kw::comma_or_end(&content)?;
    }
    Ok(group)
}

enum ParsedValue {
    Str(LitStr),
    Int(LitInt),
    /// The items and the span of the brackets.
    List(Vec<LitOrIdent>, Span),
}

impl ParsedValue {
    fn span(&self) -> Span {
        match self {
            Self::Str(lit) => lit.span(),
            Self::Int(lit) => lit.span(),
            Self::List(_, span) => *span,
        }
    }
}

struct LitOrIdent {
    text: String,
    span: Span,
}

trait ParseOrIdent {
    fn parse_or_ident(input: ParseStream<'_>) -> syn::Result<LitOrIdent>;
}

impl ParseOrIdent for syn::Lit {
    fn parse_or_ident(input: ParseStream<'_>) -> syn::Result<LitOrIdent> {
        if input.peek(Ident) {
            let ident: Ident = input.parse()?;
            return Ok(LitOrIdent { text: ident.to_string(), span: ident.span() });
        }
        let lit: syn::Lit = input.parse()?;
        let text = match &lit {
            syn::Lit::Str(s) => s.value(),
            other => quote!(#other).to_string(),
        };
        Ok(LitOrIdent { text, span: lit.span() })
    }
}

fn get_int(group: &Group, key: &str, min: u32, errors: &mut Errors) -> Option<u32> {
    let (_, value) = group.get(key)?;
    match value {
        ParsedValue::Int(lit) => match lit.base10_parse::<u32>() {
            Ok(n) if n >= min => Some(n),
            Ok(_) => {
                errors.at(lit.span(), format!("`{key}` must be at least {min}"));
                None
            }
            Err(_) => {
                errors.at(lit.span(), format!("`{key}` takes a whole number"));
                None
            }
        },
        other => {
            errors.at(other.span(), format!("`{key}` takes a whole number, e.g. `{key} = 3`"));
            None
        }
    }
}

fn get_duration(group: &Group, key: &str, errors: &mut Errors) -> Option<Duration> {
    let (_, value) = group.get(key)?;
    match value {
        ParsedValue::Str(lit) => errors.ok(kw::duration(lit, key)),
        other => {
            errors.at(other.span(), format!("`{key}` takes a duration string, e.g. `{key} = \"100ms\"`"));
            None
        }
    }
}

fn parse_retry(input: ParseStream<'_>, policy: &Ident, errors: &mut Errors) -> syn::Result<Retry> {
    let group = parse_group(input, "retry", &["attempts", "backoff", "max_backoff", "on"], errors)?;
    let attempts = get_int(&group, "attempts", 1, errors);
    let backoff = get_duration(&group, "backoff", errors);
    let max_backoff = get_duration(&group, "max_backoff", errors);
    group.require(policy, &["attempts", "backoff"], "retry(attempts = 3, backoff = \"100ms\")", errors);
    if let (Some(b), Some(m)) = (backoff, max_backoff)
        && m < b
        && let Some(span) = group.value_span("max_backoff")
    {
        errors.at(span, "`max_backoff` is smaller than `backoff`; raise it or remove it");
    }
    if let Some(a) = attempts
        && a > 10
        && let Some(span) = group.value_span("attempts")
    {
        errors.at(span, "more than 10 attempts multiplies load on a failing service; use at most 10");
    }
    let on = group.get("on").and_then(|(_, value)| match value {
        ParsedValue::List(items, _) => {
            let mut on = RetryOn::default();
            for item in items {
                match item.text.as_str() {
                    "5xx" => on.server_errors = true,
                    "timeout" => on.timeouts = true,
                    "connect" => on.connect_errors = true,
                    "429" => on.too_many_requests = true,
                    other => errors.at(item.span, format!("unknown retry condition `{other}`; use `5xx`, `timeout`, `connect` or `429` (4xx other than 429 are never retried)")),
                }
            }
            Some(on)
        }
        other => {
            errors.at(other.span(), "`on` takes a list, e.g. `on = [5xx, timeout, connect]`");
            None
        }
    });
    Ok(Retry { attempts: attempts.unwrap_or(1), backoff: backoff.unwrap_or_default(), max_backoff, on })
}

fn parse_breaker(input: ParseStream<'_>, policy: &Ident, errors: &mut Errors) -> syn::Result<Breaker> {
    const KEYS: &[&str] = &["failures", "within", "open_for", "probes"];
    const EXAMPLE: &str = "breaker(failures = 5, within = \"60s\", open_for = \"30s\", probes = 3)";
    let group = parse_group(input, "breaker", KEYS, errors)?;
    group.require(policy, KEYS, EXAMPLE, errors);
    Ok(Breaker {
        failures: get_int(&group, "failures", 1, errors).unwrap_or(1),
        within: get_duration(&group, "within", errors).unwrap_or_default(),
        open_for: get_duration(&group, "open_for", errors).unwrap_or_default(),
        probes: get_int(&group, "probes", 1, errors).unwrap_or(1),
    })
}

fn parse_budget(input: ParseStream<'_>, policy: &Ident, errors: &mut Errors) -> syn::Result<Budget> {
    let group = parse_group(input, "retry_budget", &["percent", "within", "min_retries"], errors)?;
    let percent = get_int(&group, "percent", 0, errors);
    if let Some(p) = percent
        && p > 100
        && let Some(span) = group.value_span("percent")
    {
        errors.at(span, "`percent` is a share of calls, at most 100");
    }
    group.require(policy, &["percent"], "retry_budget(percent = 20, within = \"10s\")", errors);
    Ok(Budget {
        percent: percent.unwrap_or(20),
        within: get_duration(&group, "within", errors).unwrap_or(Duration::from_secs(10)),
        min_retries: get_int(&group, "min_retries", 0, errors).unwrap_or(10),
    })
}

fn parse_headers(input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<Vec<String>> {
    input.parse::<Token![=]>()?;
    let list;
    bracketed!(list in input);
    let items = list.parse_terminated(|s: ParseStream<'_>| s.parse::<LitStr>(), Token![,])?;
    let mut out = Vec::new();
    for lit in items {
        match orchestrate_core::headers::forwardable(&lit.value()) {
            Ok(name) => out.push(name),
            Err(reason) => errors.at(lit.span(), reason),
        }
    }
    Ok(out)
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
    quote! {
        /// Downstream services, declared with `orchestrate::services!`.
        ///
        /// Build the runtime from them with `orchestrate::Runtime::new(services::ALL)`.
        pub mod #module {
            /// Every declared service, in declaration order.
            pub const ALL: &[::orchestrate::ServiceSpec] = &[#(#specs),*];
            #(#markers)*
        }
    }
}

fn spec_tokens(s: &ServiceDecl) -> TokenStream {
    let name = s.name.to_string();
    let url = &s.url;
    let mut spec = quote!(::orchestrate::ServiceSpec::new(#name, #url));
    if let Some(r) = &s.retry {
        let attempts = r.attempts;
        let backoff = millis(r.backoff);
        let mut retry = quote!(::orchestrate::RetryPolicy::new(#attempts, #backoff));
        if let Some(max) = r.max_backoff {
            let max = millis(max);
            retry = quote!(#retry.with_max_backoff(#max));
        }
        if let Some(on) = &r.on {
            let (a, b, c, d) = (on.server_errors, on.timeouts, on.connect_errors, on.too_many_requests);
            retry = quote!(#retry.with_retry_on(::orchestrate::RetryOn { server_errors: #a, timeouts: #b, connect_errors: #c, too_many_requests: #d }));
        }
        spec = quote!(#spec.with_retry(#retry));
    }
    if let Some(b) = &s.breaker {
        let (failures, probes) = (b.failures, b.probes);
        let (within, open_for) = (millis(b.within), millis(b.open_for));
        spec = quote!(#spec.with_breaker(::orchestrate::BreakerPolicy { failures: #failures, within: #within, open_for: #open_for, probes: #probes }));
    }
    if let Some(n) = s.max_in_flight {
        spec = quote!(#spec.with_max_in_flight(#n));
    }
    if let Some(n) = s.max_body {
        spec = quote!(#spec.with_max_body(#n));
    }
    if let Some(b) = &s.retry_budget {
        let (percent, min) = (b.percent, b.min_retries);
        let within = millis(b.within);
        spec = quote!(#spec.with_retry_budget(::orchestrate::RetryBudget { percent: #percent, within: #within, min_retries: #min }));
    }
    if !s.forward_headers.is_empty() {
        let headers = &s.forward_headers;
        spec = quote!(#spec.with_forward_headers(&[#(#headers),*]));
    }
    if s.http2 {
        spec = quote!(#spec.with_http2(true));
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
        assert!(services[2].http2 && !services[0].http2);
        let cart = &services[0];
        assert_eq!(cart.retry.as_ref().unwrap().attempts, 3);
        assert_eq!(cart.breaker.as_ref().unwrap().open_for, Duration::from_secs(30));
        assert_eq!(cart.max_in_flight, Some(48));
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
        assert!(text.contains("did you mean `max_in_flight`"), "{text}");
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

    #[test]
    fn checks_urls() {
        assert!(check_url("http://a:80").is_ok());
        assert!(check_url("https://a/b").is_ok());
        assert!(check_url("http://[::1]:80").is_ok());
        assert!(check_url("http://a:port").unwrap_err().contains("port"));
        assert!(check_url("http://").unwrap_err().contains("no host"));
        assert!(check_url("http://a?x").unwrap_err().contains("query"));
    }
}
