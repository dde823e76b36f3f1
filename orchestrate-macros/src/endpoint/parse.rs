//! Attributes → [`Endpoint`] model. Parsing never stops at the first mistake: every malformed key
//! is recorded and parsing resumes at the next comma.

use super::model::*;
use crate::ctxt::Errors;
use crate::deps::{free_names, pattern_bindings};
use crate::kw::{self, Seen};
use orchestrate_core::policy::{RateLimits, Reader, Syntax};
use orchestrate_core::suggest::closest;
use orchestrate_core::template::{Part, parse_call_template};
use proc_macro2::{Group, Span, TokenStream, TokenTree};
use syn::parse::Parse;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Expr, Ident, ItemStruct, LitInt, LitStr, Pat, Token, bracketed, parenthesized};

const ENDPOINT_KEYS: &[&str] =
    &["timeout", "max_body", "cache", "auth", "rate_limit", "saga", "slo", "idempotent_requests", "canary"];
const CALL_KEYS: &[&str] = &[
    "service",
    "timeout",
    "required",
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "with",
    "body",
    "query",
    "headers",
    "when",
    "fallback",
    "idempotency_key",
    "idempotent",
    "after",
    "retry",
    "hedge",
    "cache",
    "for_each",
    "concurrency",
    "compensate",
];
const INPUT_KEYS: &[&str] = &["body", "path", "query", "header", "claim"];

/// Which of our attributes an attribute is.
fn our_attribute(attr: &Attribute) -> Option<&'static str> {
    let path = attr.path();
    let last = path.segments.last()?;
    let plain = path.segments.len() == 1 || (path.segments.len() == 2 && path.segments[0].ident == "orchestrate");
    if !plain {
        return None;
    }
    ["input", "call", "compute"].into_iter().find(|name| last.ident == name)
}

/// Parses the endpoint attribute's arguments and the struct; removes our field attributes from
/// `item` so it can be emitted as plain Rust.
pub(crate) fn parse(
    args: TokenStream,
    item: &mut ItemStruct,
    module_auth: Option<Auth>,
    errors: &mut Errors,
) -> Option<Endpoint> {
    let head = match (|input: ParseStream<'_>| parse_endpoint_args(input, errors)).parse2(args) {
        Ok(head) => head,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if !item.generics.params.is_empty() {
        errors.spanned(&item.generics, "an endpoint cannot be generic; use concrete types for its fields");
    }
    let syn::Fields::Named(named) = &mut item.fields else {
        errors
            .at(item.ident.span(), "an endpoint is a struct with named fields, one per input, call or computed value");
        return None;
    };
    let mut fields = Vec::new();
    for field in named.named.iter_mut() {
        let Some(ident) = field.ident.clone() else { continue };
        let mut kind = None;
        let mut first_span: Option<Span> = None;
        let mut kept = Vec::with_capacity(field.attrs.len());
        for attr in field.attrs.drain(..) {
            let Some(which) = our_attribute(&attr) else {
                kept.push(attr);
                continue;
            };
            if let Some(first) = first_span {
                errors.at(
                    attr.path().segments.last().map_or(Span::call_site(), |s| s.ident.span()),
                    format!(
                        "`{ident}` already has an `#[input]`, `#[call]` or `#[compute]`; a field is exactly one of them"
                    ),
                );
                errors.at(first, "first one is here");
                continue;
            }
            first_span = Some(attr.path().segments.last().map_or(Span::call_site(), |s| s.ident.span()));
            kind = Some(match which {
                "input" => parse_input(&attr, &ident, errors).map_or(FieldKind::Unknown, FieldKind::Input),
                "call" => parse_call(&attr, errors).map_or(FieldKind::Unknown, |c| FieldKind::Call(Box::new(c))),
                _ => parse_compute(&attr, errors).map_or(FieldKind::Unknown, FieldKind::Compute),
            });
        }
        // Inputs are data the framework fills in; user code need not read them.
        if matches!(kind, Some(FieldKind::Input(_))) {
            kept.push(syn::parse_quote!(#[allow(dead_code)]));
        }
        field.attrs = kept;
        let kind = kind.unwrap_or_else(|| {
            errors.at(
                ident.span(),
                format!("`{ident}` has no source; mark it `#[input(body | path | query | header = \"..\")]`, `#[call(..)]` or `#[compute(..)]`"),
            );
            FieldKind::Unknown
        });
        fields.push(Field { ident, ty: field.ty.clone(), kind });
    }
    let head_ok = head.is_some();
    let Head {
        method,
        route,
        timeout,
        max_body,
        cache,
        auth,
        rate_limit,
        saga,
        slo,
        idempotent_requests,
        idempotent_wait,
        canary,
    } = head.unwrap_or_else(|| Head {
        method: HttpMethod::Get,
        route: LitStr::new("/", item.ident.span()),
        timeout: None,
        max_body: None,
        cache: None,
        auth: None,
        rate_limit: RateLimits::NONE,
        saga: None,
        slo: None,
        idempotent_requests: None,
        idempotent_wait: None,
        canary: None,
    });
    Some(Endpoint {
        ident: item.ident.clone(),
        head_ok,
        method,
        route,
        timeout,
        max_body,
        cache,
        auth,
        module_auth,
        rate_limit,
        saga,
        slo,
        idempotent_requests,
        canary,
        idempotent_wait,
        fields,
    })
}

/// What `#[endpoint(..)]` itself says.
struct Head {
    method: HttpMethod,
    route: LitStr,
    timeout: Option<Timed>,
    max_body: Option<u64>,
    cache: Option<CacheAttr>,
    rate_limit: RateLimits,
    saga: Option<Ident>,
    slo: Option<SloAttr>,
    auth: Option<(Auth, Span)>,
    idempotent_requests: Option<bool>,
    canary: Option<CanaryAttr>,
    idempotent_wait: Option<std::time::Duration>,
}

/// `auth = jwt` / `auth = none` (the words are the policy grammar's).
pub(crate) fn parse_auth(
    input: ParseStream<'_>,
    key: &Ident,
    errors: &mut Errors,
) -> syn::Result<Option<(Auth, Span)>> {
    kw::eq_token(input, key)?;
    let word: Ident = input.call(syn::ext::IdentExt::parse_any)?;
    let at = crate::policy::At::span(word.span());
    let mut reader = Reader::new(Syntax::Dsl);
    let mode = orchestrate_core::policy::auth::read_mode(
        &mut reader,
        &orchestrate_core::policy::Value::Word(word.to_string(), at),
    );
    crate::policy::report(reader.into_problems(), errors);
    Ok(mode.map(|m| (m, word.span())))
}

fn parse_endpoint_args(input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<Option<Head>> {
    const USAGE: &str = "write `#[endpoint(POST \"/checkout/summary\", timeout = \"2s\")]`";
    let method_ident: Ident =
        input.parse().map_err(|e| syn::Error::new(e.span(), format!("expected an HTTP method; {USAGE}")))?;
    let method = HttpMethod::from_name(&method_ident.to_string())
        .filter(|_| method_ident.to_string().chars().all(|c| c.is_ascii_uppercase()));
    let Some(method) = method else {
        return Err(syn::Error::new(
            method_ident.span(),
            format!("`{method_ident}` is not an HTTP method; use GET, POST, PUT, PATCH or DELETE"),
        ));
    };
    let route: LitStr = input
        .parse()
        .map_err(|e| syn::Error::new(e.span(), format!("expected the route after the method; {USAGE}")))?;
    let mut timeout = None;
    let mut max_body = None;
    let mut cache = None;
    let mut auth = None;
    let mut rate_limit = RateLimits::NONE;
    let mut saga = None;
    let mut slo = None;
    let mut idempotent_requests = None;
    let mut canary = None;
    let mut idempotent_wait = None;
    let mut seen = Seen::new("#[endpoint]");
    while !input.is_empty() {
        input.parse::<Token![,]>()?;
        if input.is_empty() {
            break;
        }
        let key: Ident = input.parse()?;
        if !seen.first(&key, errors) {
            kw::skip_to_comma(input);
            continue;
        }
        match key.to_string().as_str() {
            "timeout" => {
                let lit = kw::eq_str(input, &key)?;
                if let Some(value) = errors.ok(kw::duration(&lit, "timeout")) {
                    timeout = Some(Timed { value, lit });
                }
            }
            "cache" => cache = Some(parse_cache(input, &key, errors)?),
            "auth" => auth = parse_auth(input, &key, errors)?,
            "rate_limit" => rate_limit = parse_rate_limit(input, &key, errors)?,
            "saga" => saga = Some(flag(input, &key)?),
            "slo" => slo = parse_slo(input, &key, errors)?,
            "canary" => canary = parse_canary(input, &key, errors)?,
            "idempotent_requests" => {
                if input.peek(syn::token::Paren) {
                    let value = crate::policy::group(input, key.span())?;
                    let mut reader = Reader::new(Syntax::Dsl);
                    idempotent_wait = orchestrate_core::policy::idempotency::read(&mut reader, &value);
                    crate::policy::report(reader.into_problems(), errors);
                    idempotent_requests = Some(true);
                } else if input.peek(Token![=]) {
                    input.parse::<Token![=]>()?;
                    let on: syn::LitBool = input.parse().map_err(|e| {
                        syn::Error::new(e.span(), "write `idempotent_requests` or `idempotent_requests = false`")
                    })?;
                    idempotent_requests = Some(on.value);
                } else {
                    idempotent_requests = Some(true);
                }
            }
            "max_body" => {
                let lit = kw::eq_str(input, &key)?;
                match orchestrate_core::size::parse_size(&lit.value()) {
                    Ok(bytes) => max_body = Some(bytes),
                    Err(e) => errors.at(kw::sub_span(&lit, &e.at), format!("invalid `max_body`: {e}")),
                }
            }
            _ => {
                kw::unknown(&key, "#[endpoint]", ENDPOINT_KEYS, &seen.names(), errors);
                kw::skip_to_comma(input);
            }
        }
    }
    // An invalid `timeout` was reported where it is; only a missing one is reported here.
    if !seen.contains("timeout") {
        errors.at(
            route.span(),
            "an endpoint needs a total `timeout`, the budget of its whole graph: add `timeout = \"2s\"`",
        );
    }
    Ok(Some(Head {
        method,
        route,
        timeout,
        max_body,
        cache,
        auth,
        rate_limit,
        saga,
        slo,
        idempotent_requests,
        idempotent_wait,
        canary,
    }))
}

/// `rate_limit(per_user = "100/min", ..)` of an endpoint or an `#[api]` module: the rates and
/// their rules are `orchestrate_core::policy::rate_limit`'s. A mistake is reported and no limit
/// is kept (the endpoint is not expanded anyway).
pub(crate) fn parse_rate_limit(input: ParseStream<'_>, key: &Ident, errors: &mut Errors) -> syn::Result<RateLimits> {
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            key.span(),
            "`rate_limit` takes its limits in parentheses, e.g. `rate_limit(per_user = \"100/min\", per_ip = \"500/min\")`",
        ));
    }
    let value = crate::policy::group(input, key.span())?;
    let mut reader = Reader::new(Syntax::Dsl);
    let limits = orchestrate_core::policy::rate_limit::read(&mut reader, &value, None);
    crate::policy::report(reader.into_problems(), errors);
    Ok(limits.unwrap_or(RateLimits::NONE))
}

/// `slo(availability = "99.9%", p99 = "300ms")`, read by the policy grammar; the `p99` value's
/// span is kept for the check against the endpoint's `timeout`.
fn parse_slo(input: ParseStream<'_>, key: &Ident, errors: &mut Errors) -> syn::Result<Option<SloAttr>> {
    let example = "`slo` takes its objectives in parentheses, e.g. `slo(availability = \"99.9%\", p99 = \"300ms\")`";
    let read = parse_group(input, key, errors, example, "p99", orchestrate_core::policy::slo::read)?;
    Ok(read.map(|(policy, p99_span)| SloAttr { policy, p99_span }))
}

/// `canary(version = "v2", weight = 5, key = "sub")`, read by the policy grammar; the `key`
/// value's span is kept for the check against the endpoint's `auth`.
pub(crate) fn parse_canary(
    input: ParseStream<'_>,
    key: &Ident,
    errors: &mut Errors,
) -> syn::Result<Option<CanaryAttr>> {
    let example =
        "`canary` takes its settings in parentheses, e.g. `canary(version = \"v2\", weight = 5, key = \"sub\")`";
    let read = parse_group(input, key, errors, example, "key", orchestrate_core::policy::canary::read)?;
    Ok(read.map(|(policy, key_span)| CanaryAttr { policy, key_span }))
}

/// A `key(..)` group of the endpoint attribute read by `read` (the policy grammar), its mistakes
/// reported into `errors`; with the span of the value of `kept` (the key's own span when it is
/// absent), which a later check points at. Without parentheses: the error `example`.
fn parse_group<T>(
    input: ParseStream<'_>,
    key: &Ident,
    errors: &mut Errors,
    example: &str,
    kept: &str,
    read: fn(
        &mut Reader<crate::policy::At>,
        &crate::policy::At,
        &orchestrate_core::policy::Value<crate::policy::At>,
    ) -> Option<T>,
) -> syn::Result<Option<(T, proc_macro2::Span)>> {
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(key.span(), example));
    }
    let value = crate::policy::group(input, key.span())?;
    let kept_span = match &value {
        orchestrate_core::policy::Value::Table(entries, _) => {
            entries.iter().find(|e| e.key == kept).map(|e| e.value.at().span)
        }
        _ => None,
    };
    let mut reader = Reader::new(Syntax::Dsl);
    let at = crate::policy::At::span(key.span());
    let policy = read(&mut reader, &at, &value);
    crate::policy::report(reader.into_problems(), errors);
    Ok(policy.map(|policy| (policy, kept_span.unwrap_or_else(|| key.span()))))
}

fn parse_input(attr: &Attribute, field: &Ident, errors: &mut Errors) -> Option<Input> {
    let parser = |input: ParseStream<'_>| -> syn::Result<Input> {
        let key: Ident = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected where the input comes from: `body`, `path`, `query` or `header = \"name\"`",
            )
        })?;
        let name = key.to_string();
        let value = if input.peek(Token![=]) { Some(kw::eq_str(input, &key)?) } else { None };
        let source = match (name.as_str(), value) {
            ("body", None) => InputSource::Body,
            ("path", None) => InputSource::Path(field.to_string()),
            ("path", Some(lit)) => InputSource::Path(lit.value()),
            ("query", None) => InputSource::Query,
            ("query", Some(lit)) => InputSource::QueryParam(lit.value()),
            ("header", Some(lit)) => InputSource::Header(lit.value().to_ascii_lowercase()),
            ("claim", Some(lit)) => InputSource::Claim(lit.value()),
            ("claim", None) => {
                return Err(syn::Error::new(key.span(), "name the claim: `#[input(claim = \"sub\")]`"));
            }
            ("header", None) => {
                return Err(syn::Error::new(key.span(), "name the header: `#[input(header = \"x-user-id\")]`"));
            }
            ("body", Some(lit)) => {
                return Err(syn::Error::new(lit.span(), "`body` takes no name; the whole JSON body is the input"));
            }
            _ => {
                let mut e = Errors::new();
                kw::unknown(&key, "#[input]", INPUT_KEYS, &[], &mut e);
                return Err(e.finish().err().unwrap_or_else(|| syn::Error::new(key.span(), "unknown input source")));
            }
        };
        if !input.is_empty() {
            return Err(input.error("an input has one source; remove the rest"));
        }
        Ok(Input { source, span: key.span() })
    };
    errors.ok(attr.parse_args_with(parser))
}

fn parse_compute(attr: &Attribute, errors: &mut Errors) -> Option<Compute> {
    let expr: Expr = errors.ok(attr.parse_args().map_err(|e| syn::Error::new(e.span(), format!("`#[compute]` takes an expression of other fields, e.g. `#[compute(pricing.subtotal + tax.amount)]`: {e}"))))?;
    let uses = free_names(&expr, &[]);
    Some(Compute { expr, uses })
}

fn parse_call(attr: &Attribute, errors: &mut Errors) -> Option<Call> {
    let before = errors.len();
    let attr_span = attr.path().segments.last().map_or(Span::call_site(), |s| s.ident.span());
    let mut call = Call {
        attr_span,
        service: None,
        timeout: None,
        required: None,
        target: None,
        body: None,
        query: None,
        headers: None,
        when: None,
        fallback: None,
        idempotency_key: None,
        idempotent: None,
        after: Vec::new(),
        retry: None,
        hedge: None,
        cache: None,
        for_each: None,
        compensate: None,
        concurrency: None,
        uses: Vec::new(),
        written: Vec::new(),
        truncated: false,
        malformed: false,
    };
    let syn::Meta::List(list) = &attr.meta else {
        errors.at(attr_span, "`#[call]` needs arguments, e.g. `#[call(service = \"cart\", timeout = \"200ms\", get = \"/carts/{req.cart_id}\")]`");
        return None;
    };
    // Unknown keys are reported once the whole attribute is read, so that the suggestion can leave
    // out every key the attribute has.
    let mut unknown: Vec<Ident> = Vec::new();
    let mut present: Vec<String> = Vec::new();
    let parser = |input: ParseStream<'_>| -> syn::Result<()> {
        let mut seen = Seen::new("#[call]");
        while !input.is_empty() {
            let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
            let name = key.to_string();
            let is_method = HttpMethod::from_name(&name).is_some() && name.chars().all(|c| c.is_ascii_lowercase());
            let meant = model_key(&name).or_else(|| closest(&name, CALL_KEYS.iter().copied()).and_then(model_key));
            call.written.extend(meant);
            if CALL_KEYS.contains(&name.as_str()) {
                present.push(name.clone());
            }
            let fresh = if is_method || name == "with" {
                seen.first_of("target", &key, errors)
            } else {
                seen.first(&key, errors)
            };
            if !fresh {
                kw::skip_to_comma(input);
                kw::comma_or_end(input)?;
                continue;
            }
            if let Err(e) = parse_call_key(input, &key, &name, is_method, &mut call, &mut unknown, errors) {
                errors.push(e);
                kw::skip_to_comma(input);
            }
            kw::comma_or_end(input).map_err(|e| syn::Error::new(e.span(), "expected `,` between keys of `#[call]`"))?;
        }
        Ok(())
    };
    let parsed = parser.parse2(list.tokens.clone());
    call.truncated = parsed.is_err();
    errors.ok(parsed);
    let present: Vec<&str> = present.iter().map(String::as_str).collect();
    for key in &unknown {
        kw::unknown(key, "#[call]", CALL_KEYS, &present, errors);
    }
    collect_uses(&mut call);
    call.malformed = errors.len() > before;
    Some(call)
}

/// The part of the model a `#[call]` key fills, if it is a key: every method and `with` fill the
/// call's target.
fn model_key(name: &str) -> Option<&'static str> {
    let method = HttpMethod::from_name(name).is_some() && name.chars().all(|c| c.is_ascii_lowercase());
    if method || name == "with" {
        return Some("target");
    }
    CALL_KEYS.iter().copied().find(|key| *key == name)
}

fn keyed(input: ParseStream<'_>, key: &Ident) -> syn::Result<Keyed> {
    kw::eq_token(input, key)?;
    let expr: Expr = input.parse()?;
    Ok(Keyed { key: key.clone(), expr })
}

fn flag(input: ParseStream<'_>, key: &Ident) -> syn::Result<Ident> {
    if input.peek(Token![=]) {
        return Err(syn::Error::new(key.span(), format!("`{key}` is a flag and takes no value; write just `{key}`")));
    }
    Ok(key.clone())
}

fn parse_call_key(
    input: ParseStream<'_>,
    key: &Ident,
    name: &str,
    is_method: bool,
    call: &mut Call,
    unknown: &mut Vec<Ident>,
    errors: &mut Errors,
) -> syn::Result<()> {
    match name {
        "service" => {
            let lit = kw::eq_str(input, key)?;
            if !orchestrate_core::template::is_identifier(&lit.value()) {
                errors.at(
                    lit.span(),
                    format!(
                        "`{}` is not a service name; services are named like Rust identifiers in `services!`",
                        lit.value()
                    ),
                );
            } else {
                call.service = Some(lit);
            }
        }
        "timeout" => {
            let lit = kw::eq_str(input, key)?;
            if let Some(value) = errors.ok(kw::duration(&lit, "timeout")) {
                call.timeout = Some(Timed { value, lit });
            }
        }
        "required" => call.required = Some(flag(input, key)?),
        "idempotent" => call.idempotent = Some(flag(input, key)?),
        _ if is_method => {
            let template = kw::eq_str(input, key)?;
            let method = HttpMethod::from_name(name).unwrap_or(HttpMethod::Get);
            let parts = parse_template(&template, errors);
            call.target = Some(CallTarget::Http { method, key: key.clone(), template, parts });
        }
        "with" => {
            kw::eq_token(input, key)?;
            let expr: Expr = input.parse()?;
            match expr {
                Expr::Call(c) => call.target = Some(CallTarget::With { call: c }),
                other => errors.spanned(&other, "`with` takes a call of an async function, e.g. `with = loyalty::tier(&profile)`; the service's client is passed as its first argument"),
            }
        }
        "body" => call.body = Some(keyed(input, key)?),
        "query" => call.query = Some(keyed(input, key)?),
        "headers" => {
            let headers = keyed(input, key)?;
            refuse_owned_headers(&headers.expr, errors);
            call.headers = Some(headers);
        }
        "when" => call.when = Some(keyed(input, key)?),
        "fallback" => call.fallback = Some(keyed(input, key)?),
        "idempotency_key" => call.idempotency_key = Some(keyed(input, key)?),
        "after" => {
            kw::eq_token(input, key)?;
            let content;
            bracketed!(content in input);
            call.after = content.parse_terminated(Ident::parse_any_ident, Token![,])?.into_iter().collect();
        }
        "retry" => call.retry = Some(parse_call_retry(input, key, errors)?),
        "hedge" => call.hedge = parse_call_hedge(input, key, errors)?,
        "cache" => call.cache = Some(parse_cache(input, key, errors)?),
        "for_each" => {
            kw::eq_token(input, key)?;
            let pat = Pat::parse_single(input)?;
            input
                .parse::<Token![in]>()
                .map_err(|e| syn::Error::new(e.span(), "write `for_each = item in &cart.items`"))?;
            let collection: Expr = input.parse()?;
            let bindings = pattern_bindings(&pat);
            call.for_each = Some(ForEach { key: key.clone(), pat, collection, bindings });
        }
        "compensate" => call.compensate = Some(parse_compensate(input, key, errors)?),
        "concurrency" => {
            kw::eq_token(input, key)?;
            let lit: LitInt = input.parse()?;
            match lit.base10_parse::<u32>() {
                Ok(n) if n >= 1 => call.concurrency = Some((n, key.span())),
                _ => errors.at(lit.span(), "`concurrency` must be a whole number of at least 1"),
            }
        }
        _ => {
            unknown.push(key.clone());
            kw::skip_to_comma(input);
        }
    }
    Ok(())
}

/// Reports every header name written as a literal in `headers = ..` (`[("host", ..)]`,
/// `vec![..]`, `&[..]`) that a call cannot set (`host`, `content-length`, hop-by-hop), at the
/// literal. Names computed at run time are refused when the call is built.
fn refuse_owned_headers(expr: &Expr, errors: &mut Errors) {
    match expr {
        Expr::Array(array) => array.elems.iter().for_each(|e| refuse_owned_headers(e, errors)),
        Expr::Reference(r) => refuse_owned_headers(&r.expr, errors),
        Expr::Paren(p) => refuse_owned_headers(&p.expr, errors),
        Expr::Group(g) => refuse_owned_headers(&g.expr, errors),
        Expr::Macro(m) if m.mac.path.is_ident("vec") => {
            let list = m.mac.parse_body_with(syn::punctuated::Punctuated::<Expr, Token![,]>::parse_terminated);
            if let Ok(list) = list {
                list.iter().for_each(|e| refuse_owned_headers(e, errors));
            }
        }
        Expr::Tuple(tuple) => {
            if let Some(Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(name), .. })) = tuple.elems.first()
                && let Err(message) = orchestrate_core::headers::settable(&name.value())
            {
                errors.at(name.span(), message);
            }
        }
        _ => {}
    }
}

trait ParseAnyIdent {
    fn parse_any_ident(input: ParseStream<'_>) -> syn::Result<Ident>;
}

impl ParseAnyIdent for Ident {
    fn parse_any_ident(input: ParseStream<'_>) -> syn::Result<Ident> {
        input.parse().map_err(|e| syn::Error::new(e.span(), "`after` lists field names, e.g. `after = [reserve]`"))
    }
}

fn parse_call_retry(input: ParseStream<'_>, key: &Ident, errors: &mut Errors) -> syn::Result<CallRetry> {
    let value = crate::policy::group(input, key.span())?;
    let mut reader = Reader::new(Syntax::Dsl);
    let at = crate::policy::At::span(key.span());
    let policy = orchestrate_core::policy::retry::read(&mut reader, &at, &value, None);
    crate::policy::report(reader.into_problems(), errors);
    Ok(CallRetry { key: key.clone(), policy: policy.unwrap_or(orchestrate_core::policy::RetryPolicy::NONE) })
}

/// `hedge(after = "50ms", max = 1)`, read by the policy grammar (`None` when it is wrong: the
/// problems are reported).
fn parse_call_hedge(input: ParseStream<'_>, key: &Ident, errors: &mut Errors) -> syn::Result<Option<CallHedge>> {
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            key.span(),
            "`hedge` takes its settings in parentheses, e.g. `hedge(after = \"50ms\")`",
        ));
    }
    let value = crate::policy::group(input, key.span())?;
    let mut reader = Reader::new(Syntax::Dsl);
    let at = crate::policy::At::span(key.span());
    let policy = orchestrate_core::policy::hedge::read(&mut reader, &at, &value);
    crate::policy::report(reader.into_problems(), errors);
    Ok(policy.map(|policy| CallHedge { key: key.clone(), policy }))
}

/// `cache(ttl = "60s", stale = "30s", key = expr, tags = [expr, ..])`: the durations go to the
/// policy grammar, `key` and `tags` are expressions.
pub(crate) fn parse_cache(input: ParseStream<'_>, key: &Ident, errors: &mut Errors) -> syn::Result<CacheAttr> {
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            key.span(),
            "`cache` takes its settings in parentheses, e.g. `cache(ttl = \"60s\", stale = \"30s\")`",
        ));
    }
    let content;
    parenthesized!(content in input);
    let mut durations = Vec::new();
    let (mut cache_key, mut tags) = (None, Vec::new());
    let mut seen = Seen::new("cache");
    while !content.is_empty() {
        let k: Ident = content.parse()?;
        if !seen.first(&k, errors) {
            kw::skip_to_comma(&content);
        } else {
            match k.to_string().as_str() {
                "ttl" | "stale" => durations.push(crate::policy::entry_after_key(&content, &k)?),
                "key" => {
                    kw::eq_token(&content, &k)?;
                    cache_key = Some(content.parse::<Expr>()?);
                }
                "tags" => {
                    kw::eq_token(&content, &k)?;
                    let list;
                    bracketed!(list in content);
                    tags = list.parse_terminated(Expr::parse, Token![,])?.into_iter().collect();
                }
                _ => {
                    kw::unknown(&k, "cache", orchestrate_core::policy::cache::KEYS, &seen.names(), errors);
                    kw::skip_to_comma(&content);
                }
            }
        }
        kw::comma_or_end(&content)?;
    }
    let at = crate::policy::At::span(key.span());
    let value = orchestrate_core::policy::Value::Table(durations, at.clone());
    let mut reader = Reader::new(Syntax::Dsl);
    let policy = orchestrate_core::policy::cache::read(&mut reader, &at, &value);
    crate::policy::report(reader.into_problems(), errors);
    let policy = policy
        .unwrap_or(orchestrate_core::policy::CachePolicy::new(std::time::Duration::ZERO, std::time::Duration::ZERO));
    Ok(CacheAttr { key_token: key.clone(), policy, key: cache_key, tags })
}

/// `compensate = post("/path", body = .., headers = .., idempotency_key = .., idempotent,
/// timeout = "2s", retry(..))`: the method and path, the expressions, and the policy (read by
/// `orchestrate_core::policy::saga`).
fn parse_compensate(input: ParseStream<'_>, key: &Ident, errors: &mut Errors) -> syn::Result<Compensate> {
    const USAGE: &str = "write `compensate = post(\"/charges/{payment.id}/refund\", idempotency_key = ..)`";
    kw::eq_token(input, key)?;
    let method_token: Ident = input
        .call(syn::ext::IdentExt::parse_any)
        .map_err(|e| syn::Error::new(e.span(), format!("`compensate` takes a request; {USAGE}")))?;
    let name = method_token.to_string();
    let method = HttpMethod::from_name(&name).filter(|_| name.chars().all(|c| c.is_ascii_lowercase()));
    let Some(method) = method else {
        return Err(syn::Error::new(
            method_token.span(),
            format!("`{method_token}` is not a method; use `post`, `put`, `patch` or `delete`: {USAGE}"),
        ));
    };
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            method_token.span(),
            format!("`{method_token}` needs its path in parentheses; {USAGE}"),
        ));
    }
    let content;
    parenthesized!(content in input);
    let template: LitStr =
        content.parse().map_err(|e| syn::Error::new(e.span(), format!("the path comes first; {USAGE}")))?;
    let parts = parse_template(&template, errors);
    let mut compensate = Compensate {
        key: key.clone(),
        method,
        method_token,
        template,
        parts,
        body: None,
        headers: None,
        idempotency_key: None,
        idempotent: None,
        policy: orchestrate_core::policy::CompensationPolicy::DEFAULT,
        uses: Vec::new(),
    };
    let mut policy_entries = Vec::new();
    let mut seen = Seen::new("compensate");
    while !content.is_empty() {
        content.parse::<Token![,]>()?;
        if content.is_empty() {
            break;
        }
        let k: Ident = content.call(syn::ext::IdentExt::parse_any)?;
        if !seen.first(&k, errors) {
            kw::skip_to_comma(&content);
            continue;
        }
        match k.to_string().as_str() {
            "body" => compensate.body = Some(keyed(&content, &k)?),
            "headers" => compensate.headers = Some(keyed(&content, &k)?),
            "idempotency_key" => compensate.idempotency_key = Some(keyed(&content, &k)?),
            "idempotent" => compensate.idempotent = Some(flag(&content, &k)?),
            "timeout" => policy_entries.push(crate::policy::entry_after_key(&content, &k)?),
            "retry" => {
                let at = crate::policy::At::span(k.span());
                let value = crate::policy::group(&content, k.span())?;
                policy_entries.push(orchestrate_core::policy::Entry::new("retry", at, value));
            }
            _ => {
                kw::unknown(&k, "compensate", orchestrate_core::policy::saga::KEYS, &seen.names(), errors);
                kw::skip_to_comma(&content);
            }
        }
    }
    let at = crate::policy::At::span(key.span());
    let value = orchestrate_core::policy::Value::Table(policy_entries, at.clone());
    let mut reader = Reader::new(Syntax::Dsl);
    if let Some(policy) = orchestrate_core::policy::saga::read(&mut reader, &at, &value) {
        compensate.policy = policy;
    }
    crate::policy::report(reader.into_problems(), errors);
    let mut uses = Vec::new();
    for part in &compensate.parts {
        if let TemplatePart::Value { expr, .. } = part {
            uses.extend(free_names(expr, &[]));
        }
    }
    for keyed in [&compensate.body, &compensate.headers, &compensate.idempotency_key].into_iter().flatten() {
        uses.extend(free_names(&keyed.expr, &[]));
    }
    compensate.uses = uses;
    Ok(compensate)
}

/// Splits a call template and parses each placeholder as an expression whose tokens point at the
/// template (inside it, where the compiler supports sub-spans).
fn parse_template(lit: &LitStr, errors: &mut Errors) -> Vec<TemplatePart> {
    let text = lit.value();
    let parts = match parse_call_template(&text) {
        Ok(parts) => parts,
        Err(e) => {
            // The grammar's messages name the template and say the fix.
            errors.at(kw::sub_span(lit, &e.at), e.to_string());
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            Part::Literal(range) => out.push(TemplatePart::Literal(text[range].to_owned())),
            Part::Value { expr, in_query } => {
                let span = kw::sub_span(lit, &expr);
                let source = &text[expr];
                match syn::parse_str::<TokenStream>(source).and_then(|tokens| syn::parse2::<Expr>(respan(tokens, span)))
                {
                    Ok(parsed) => out.push(TemplatePart::Value { expr: parsed, in_query }),
                    Err(e) => errors.at(span, format!("`{{{source}}}` is not a Rust expression: {e}")),
                }
            }
        }
    }
    out
}

/// Gives every token of `tokens` the span `span`.
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                TokenTree::Group(group)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

/// Records every field name the call's expressions read.
fn collect_uses(call: &mut Call) {
    let bound: Vec<Ident> = call.for_each.as_ref().map(|f| f.bindings.clone()).unwrap_or_default();
    let mut uses = Vec::new();
    if let Some(CallTarget::Http { parts, .. }) = &call.target {
        for part in parts {
            if let TemplatePart::Value { expr, .. } = part {
                uses.extend(free_names(expr, &bound));
            }
        }
    }
    if let Some(CallTarget::With { call: with, .. }) = &call.target {
        uses.extend(free_names(&Expr::Call(with.clone()), &[]));
    }
    for keyed in [&call.body, &call.query, &call.headers, &call.idempotency_key].into_iter().flatten() {
        uses.extend(free_names(&keyed.expr, &bound));
    }
    for keyed in [&call.when, &call.fallback].into_iter().flatten() {
        uses.extend(free_names(&keyed.expr, &[]));
    }
    if let Some(each) = &call.for_each {
        uses.extend(free_names(&each.collection, &[]));
    }
    if let Some(cache) = &call.cache {
        for expr in cache.key.iter().chain(&cache.tags) {
            uses.extend(free_names(expr, &bound));
        }
    }
    uses.extend(call.after.iter().cloned());
    call.uses = uses;
}
