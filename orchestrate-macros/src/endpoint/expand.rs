//! Code generation for a checked endpoint. Each generator returns a `TokenStream`; paths are
//! absolute through `::orchestrate` (see `__private`).
//!
//! The generated `execute` is one future, shaped like this for the checkout endpoint:
//!
//! ```text
//! let SummaryInputs { req } = inputs;
//! let calls = Downstream::new(runtime, context);                 // the executor's port
//! let exec = Exec::new(&calls, SPEC);
//! let slot_cart = Slot::<Cart>::new(); ...                      // one slot per node
//! let report = {
//!     let mut node_cart = pin!(async { /* build request */ exec.fetch::<Cart>(0, req).await });
//!     let mut node_tax = pin!(async { let cart = slot_cart.get(); let pricing = ...; ... });
//!     let mut deadline = pin!(exec.deadline_sleep());
//!     let mut driver = Driver::<_, 7>::new(&exec);
//!     poll_fn(|cx| {
//!         driver.poll_deadline(deadline.as_mut(), cx)?;
//!         if driver.ready(0, 0b0) { driver.poll_call(0, node_cart.as_mut(), &slot_cart, cx)?; }
//!         ...                                                    // topological order
//!         if driver.ready(5, 0b10100) { let pricing = ..; let tax = ..; slot_total.set(expr); driver.computed(5); }
//!         driver.finish()
//!     }).await
//! };
//! Ok(Outcome { value: Summary { req, cart: slot_cart.into_value(), .. }, .. })
//! ```

use super::check::Plan;
use super::model::*;
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, ItemStruct, Type};

pub(crate) fn expand(endpoint: &Endpoint, plan: &Plan, item: &ItemStruct) -> TokenStream {
    let inputs_struct = inputs_struct(endpoint, item);
    let spec = spec(endpoint, plan);
    let execute = execute(endpoint, plan);
    let budget = budget_check(endpoint, plan);
    let extract = extract(endpoint);
    let retry_safety = retry_safety(endpoint);
    let aliases = service_aliases(endpoint);
    let ident = &endpoint.ident;
    let inputs_ident = inputs_ident(endpoint);
    // The struct's rustdoc gains its call sequence table and dependency graph.
    let item = super::doc::documented(endpoint, plan, item);
    quote! {
        #item

        #aliases

        #inputs_struct

        #[automatically_derived]
        impl ::orchestrate::Endpoint for #ident {
            type Inputs = #inputs_ident;
            const SPEC: &'static ::orchestrate::EndpointSpec = &#spec;
            #execute
        }

        #extract

        #budget

        #retry_safety
    }
}

/// For each call that is unsafe to repeat and has no `retry(..)` of its own, a constant that
/// fails the build (E0080, at the call's method) when its service's policy in `services!`
/// retries: the endpoint macro cannot see that policy, the compiler can.
fn retry_safety(endpoint: &Endpoint) -> TokenStream {
    let checks = endpoint.fields.iter().filter_map(|field| {
        let FieldKind::Call(call) = &field.kind else { return None };
        if call.retry.is_some() || call.retryable() {
            return None;
        }
        let service = call.service.as_ref()?;
        let (method, span) = match &call.target {
            Some(CallTarget::Http { method, key, .. }) => (Some(method.upper()), key.span()),
            Some(CallTarget::With { call: with }) => (None, expr_span(&syn::Expr::Call(with.clone()))),
            None => return None,
        };
        let message = orchestrate_core::policy::retry::unsafe_service_retry(
            &field.ident.to_string(),
            method,
            &service.value(),
            "`services!`",
        );
        let path = service_path(endpoint, field, call);
        let fail = quote_spanned!(span=> ::core::panic!("{}", #message)); // ok: emitted; rustc reports it as E0080
        Some(quote! {
            if <#path as ::orchestrate::Service>::SPEC.retry.attempts > 1 {
                #fail
            }
        })
    });
    let checks: Vec<TokenStream> = checks.collect();
    if checks.is_empty() {
        return TokenStream::new();
    }
    quote! {
        #[doc(hidden)]
        const _: () = { #(#checks)* };
    }
}

/// `impl Extract`: how the router reads each input from a request. Each read is spanned at the
/// field's type, so a type that cannot be read is an error there.
fn extract(endpoint: &Endpoint) -> TokenStream {
    let p = quote!(::orchestrate::__private);
    let ident = &endpoint.ident;
    let inputs_ident = inputs_ident(endpoint);
    let reads = inputs(endpoint).map(|(field, input)| {
        let (name, ty) = (&field.ident, &field.ty);
        let span = ty.span();
        let read = match (&input.source, shape(ty)) {
            (InputSource::Body, _) => quote_spanned!(span=> __inbound.body::<#ty>()),
            (InputSource::Query, _) => quote_spanned!(span=> __inbound.query::<#ty>()),
            (InputSource::Path(param), _) => quote_spanned!(span=> __inbound.path::<#ty>(#param)),
            (InputSource::QueryParam(param), Shape::Option(inner)) => {
                quote_spanned!(span=> __inbound.query_param_opt::<#inner>(#param))
            }
            (InputSource::QueryParam(param), Shape::Plain) => {
                quote_spanned!(span=> __inbound.query_param::<#ty>(#param))
            }
            (InputSource::Header(header), Shape::Option(inner)) => {
                quote_spanned!(span=> __inbound.header_opt::<#inner>(#header))
            }
            (InputSource::Header(header), Shape::Plain) => quote_spanned!(span=> __inbound.header::<#ty>(#header)),
            (InputSource::Claim(claim), Shape::Option(inner)) => {
                let field = name.to_string();
                quote_spanned!(span=> __inbound.claim_opt::<#inner>(#claim, #field))
            }
            (InputSource::Claim(claim), Shape::Plain) => {
                let field = name.to_string();
                quote_spanned!(span=> __inbound.claim::<#ty>(#claim, #field))
            }
        };
        quote!(#name: #read?,)
    });
    let max_body = endpoint.max_body.map(|bytes| quote!(const MAX_BODY: u64 = #bytes;));
    let cache = endpoint.cache.as_ref().filter(|c| c.key.is_some() || !c.tags.is_empty()).map(|cache| {
        let names: Vec<&Ident> = inputs(endpoint).map(|(f, _)| &f.ident).collect();
        let bind = quote!(#(#[allow(unused_variables)] let #names = &__inputs.#names;)*);
        let key = cache.key.as_ref().map(|expr| {
            quote_spanned! {expr_span(expr)=>
                fn cache_key(__inputs: &Self::Inputs) -> ::core::option::Option<::std::string::String> {
                    #bind
                    ::core::option::Option::Some(::std::string::ToString::to_string(&(#expr)))
                }
            }
        });
        let tags = (!cache.tags.is_empty()).then(|| {
            let tags =
                cache.tags.iter().map(|t| quote_spanned!(expr_span(t)=> ::std::string::ToString::to_string(&(#t))));
            quote! {
                fn cache_tags(__inputs: &Self::Inputs) -> ::std::vec::Vec<::std::string::String> {
                    #bind
                    ::std::vec![#(#tags),*]
                }
            }
        });
        quote!(#key #tags)
    });
    quote! {
        #[automatically_derived]
        impl #p::Extract for #ident {
            #max_body
            #cache
            fn extract(__inbound: &#p::Inbound) -> ::core::result::Result<Self::Inputs, #p::InputError> {
                ::core::result::Result::Ok(#inputs_ident { #(#reads)* })
            }
        }
    }
}

pub(super) fn inputs_ident(endpoint: &Endpoint) -> Ident {
    format_ident!("{}Inputs", endpoint.ident)
}

fn slot(field: &Field) -> Ident {
    format_ident!("__slot_{}", field.ident)
}

fn node_future(field: &Field) -> Ident {
    format_ident!("__node_{}", field.ident)
}

fn inputs(endpoint: &Endpoint) -> impl Iterator<Item = (&Field, &Input)> {
    endpoint.fields.iter().filter_map(|f| match &f.kind {
        FieldKind::Input(input) => Some((f, input)),
        _ => None,
    })
}

pub(super) fn inputs_struct(endpoint: &Endpoint, item: &ItemStruct) -> TokenStream {
    let vis = &item.vis;
    let ident = inputs_ident(endpoint);
    let doc = format!(
        "Inputs of [`{}`]: one field per `#[input]` field, as the router extracts them from a request.",
        endpoint.ident
    );
    let fields = inputs(endpoint).map(|(field, input)| {
        let name = &field.ident;
        let ty = &field.ty;
        let doc = match &input.source {
            InputSource::Body => "The JSON request body.".to_owned(),
            InputSource::Path(p) => format!("Route parameter `{{{p}}}`."),
            InputSource::Query => "The query string.".to_owned(),
            InputSource::QueryParam(p) => format!("Query parameter `{p}`."),
            InputSource::Header(h) => format!("Request header `{h}`."),
            InputSource::Claim(c) => format!("Claim `{c}` of the verified bearer token."),
        };
        quote!(#[doc = #doc] pub #name: #ty,)
    });
    quote! {
        #[doc = #doc]
        #[allow(missing_debug_implementations)]
        #vis struct #ident { #(#fields)* }
    }
}

fn millis(d: std::time::Duration) -> TokenStream {
    let ms = d.as_millis() as u64;
    quote!(::core::time::Duration::from_millis(#ms))
}

/// An expression's text in the spec, as the rustdoc call table writes it.
fn expr_text(tokens: &impl ToTokens) -> String {
    super::doc::code_text(tokens)
}

/// The service of a call as a type: an alias (see [`service_aliases`]), or `()` when the call
/// names none.
fn service_path(endpoint: &Endpoint, field: &Field, call: &Call) -> TokenStream {
    match &call.service {
        Some(_) => service_alias(endpoint, field).to_token_stream(),
        None => quote!(()),
    }
}

fn service_alias(endpoint: &Endpoint, field: &Field) -> Ident {
    format_ident!("__orchestrate_service_{}_{}", endpoint.ident, field.ident)
}

/// One type alias per call for its service's marker type, looked up through the macro
/// `services!` generates (`services::service!(cart)`), spanned at the `service = ".."` literal:
/// a name `services!` does not declare is one error there, with the closest declared name,
/// however often the generated code refers to the service.
pub(super) fn service_aliases(endpoint: &Endpoint) -> TokenStream {
    let aliases = endpoint.fields.iter().filter_map(|field| {
        let FieldKind::Call(call) = &field.kind else { return None };
        let lit = call.service.as_ref()?;
        let alias = service_alias(endpoint, field);
        let name = Ident::new(&lit.value(), lit.span());
        Some(quote_spanned! {lit.span()=>
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            type #alias = services::service!(#name);
        })
    });
    quote!(#(#aliases)*)
}

fn spec(endpoint: &Endpoint, plan: &Plan) -> TokenStream {
    let name = endpoint.ident.to_string();
    let method = format_ident!("{}", endpoint.method.variant());
    let route = &endpoint.route;
    let timeout = millis(endpoint.timeout.as_ref().map_or_else(Default::default, |t| t.value));
    let inputs = inputs(endpoint).map(|(field, input)| {
        let name = field.ident.to_string();
        let ty = type_text(&field.ty);
        let source = match &input.source {
            InputSource::Body => quote!(Body),
            InputSource::Path(p) => quote!(Path(#p)),
            InputSource::Query => quote!(Query),
            InputSource::QueryParam(p) => quote!(QueryParam(#p)),
            InputSource::Header(h) => quote!(Header(#h)),
            InputSource::Claim(c) => quote!(Claim(#c)),
        };
        quote!(::orchestrate::InputSpec::new(#name, ::orchestrate::InputSource::#source, #ty))
    });
    let nodes = plan.order.iter().enumerate().map(|(pos, &f)| {
        let field = &endpoint.fields[f];
        let name = field.ident.to_string();
        let ty = type_text(&field.ty);
        let deps = &plan.deps[pos];
        let used_inputs = plan.inputs[pos].iter().map(|&i| endpoint.fields[i].ident.to_string());
        let kind = match &field.kind {
            FieldKind::Call(call) => {
                let call = call_spec(endpoint, field, call);
                quote!(::orchestrate::NodeKind::Call(#call))
            }
            FieldKind::Compute(compute) => {
                let expr = expr_text(&compute.expr);
                quote!(::orchestrate::NodeKind::Compute { expr: #expr })
            }
            _ => quote!(::orchestrate::NodeKind::Compute { expr: "" }),
        };
        quote!(::orchestrate::NodeSpec::new(#name, #ty, &[#(#deps),*], &[#(#used_inputs),*], #kind))
    });
    let cache = endpoint.cache.as_ref().map(|cache| {
        let policy = cache_policy(&cache.policy);
        quote!(.with_cache(#policy))
    });
    let rate_limit = (!endpoint.rate_limit.is_none()).then(|| {
        let limits = rate_limits(&endpoint.rate_limit);
        quote!(.with_rate_limit(#limits))
    });
    let slo = endpoint.slo.as_ref().map(|slo| {
        let mut policy = quote!(::orchestrate::Slo::new());
        if let Some(a) = slo.policy.availability {
            let ppm = a.ppm();
            policy.extend(quote!(.with_availability(::orchestrate::Availability::from_ppm(#ppm))));
        }
        if let Some(p99) = slo.policy.p99 {
            let p99 = millis(p99);
            policy.extend(quote!(.with_p99(#p99)));
        }
        quote!(.with_slo(#policy))
    });
    let auth = (endpoint.effective_auth() == Auth::Jwt).then(|| quote!(.with_auth(::orchestrate::auth::Auth::Jwt)));
    let replays = endpoint.replays().then(|| quote!(.with_idempotent_requests(true)));
    let canary = endpoint.canary.as_ref().map(|canary| {
        use orchestrate_core::policy::CanaryKey;
        let c = &canary.policy;
        let (version, weight) = (&c.version, c.weight);
        let key = match &c.key {
            CanaryKey::Subject => quote!(::orchestrate::CanaryKey::Subject),
            CanaryKey::Header(name) => quote!(::orchestrate::CanaryKey::Header(#name)),
            CanaryKey::RequestId => quote!(::orchestrate::CanaryKey::RequestId),
        };
        let r = &c.rollback;
        let (margin, p99, window, min) =
            (r.error_margin_percent, millis(r.p99_margin), millis(r.window), r.min_requests);
        quote!(.with_canary(::orchestrate::Canary::new(#version, #weight, #key,
            ::orchestrate::Rollback::DEFAULT.with_margins(#margin, #p99).with_window(#window, #min))))
    });
    let wait = endpoint.idempotent_wait.map(|wait| {
        let wait = millis(wait);
        quote!(.with_idempotent_wait(#wait))
    });
    quote! {
        ::orchestrate::EndpointSpec::new(
            #name,
            ::orchestrate::Method::#method,
            #route,
            #timeout,
            &[#(#inputs),*],
            &[#(#nodes),*],
        )
        #cache
        #rate_limit
        #slo
        #auth
        #replays
        #canary
        #wait
    }
}

/// `RateLimits::NONE.with_per_user(Rate::new(100, ..))..` for the spec.
fn rate_limits(limits: &orchestrate_core::policy::RateLimits) -> TokenStream {
    use orchestrate_core::policy::rate_limit::Scope;
    let mut out = quote!(::orchestrate::RateLimits::NONE);
    for scope in Scope::ALL {
        let Some(rate) = limits.get(scope) else { continue };
        let with = format_ident!("with_{}", scope.as_str());
        let count = rate.count;
        let secs = rate.per.as_secs();
        out.extend(quote!(.#with(::orchestrate::Rate::new(#count, ::core::time::Duration::from_secs(#secs)))));
    }
    out
}

fn call_spec(endpoint: &Endpoint, field: &Field, call: &Call) -> TokenStream {
    let service = call.service.as_ref().map(syn::LitStr::value).unwrap_or_default();
    let path = service_path(endpoint, field, call);
    let target = match &call.target {
        Some(CallTarget::Http { method, template, .. }) => {
            let method = format_ident!("{}", method.variant());
            quote!(::orchestrate::CallTarget::Http { method: ::orchestrate::Method::#method, path: #template })
        }
        Some(CallTarget::With { call, .. }) => {
            let expr = expr_text(call);
            quote!(::orchestrate::CallTarget::With { expr: #expr })
        }
        None => quote!(::orchestrate::CallTarget::With { expr: "" }),
    };
    let timeout = millis(call.timeout.as_ref().map_or_else(Default::default, |t| t.value));
    let required = call.required.is_some();
    let retryable = call.retryable();
    let mut spec = quote! {
        ::orchestrate::CallSpec::new(#service, <#path as ::orchestrate::Service>::INDEX, #target, #timeout)
            .with_required(#required)
            .with_retryable(#retryable)
    };
    if call.idempotency_key.is_some() {
        spec.extend(quote!(.with_idempotency_key(true)));
    }
    if let Some(r) = &call.retry {
        let retry = crate::services::retry_tokens(&r.policy);
        spec.extend(quote!(.with_retry(#retry)));
    }
    if let Some(h) = &call.hedge {
        let (after, max) = (millis(h.policy.after), h.policy.max);
        spec.extend(quote!(.with_hedge(&::orchestrate::HedgePolicy::new(#after).with_max(#max))));
    }
    if let Some(k) = &call.fallback {
        let text = expr_text(&k.expr);
        spec.extend(quote!(.with_fallback(#text)));
    }
    if let Some(k) = &call.when {
        let text = expr_text(&k.expr);
        spec.extend(quote!(.with_when(#text)));
    }
    if let Some(each) = &call.for_each {
        let collection = expr_text(&each.collection);
        let concurrency = call.concurrency.map_or(DEFAULT_CONCURRENCY, |(n, _)| n);
        spec.extend(quote!(.with_for_each(#collection, #concurrency)));
    }
    if let Some(cache) = &call.cache {
        let policy = cache_policy(&cache.policy);
        spec.extend(quote!(.with_cache(#policy)));
    }
    if let Some(c) = &call.compensate {
        let method = format_ident!("{}", c.method.variant());
        let path = &c.template;
        let timeout = millis(c.policy.timeout);
        let retry = crate::services::retry_tokens(&c.policy.retry);
        let keyed = c.idempotency_key.is_some();
        spec.extend(quote! {
            .with_compensation(&::orchestrate::CompensationSpec::new(
                ::orchestrate::Method::#method,
                #path,
                ::orchestrate::CompensationPolicy::new(#timeout, #retry),
                #keyed,
            ))
        });
    }
    spec
}

fn cache_policy(policy: &orchestrate_core::policy::CachePolicy) -> TokenStream {
    let (ttl, stale) = (millis(policy.ttl), millis(policy.stale));
    quote!(::orchestrate::CachePolicy::new(#ttl, #stale))
}

fn mask(deps: &[usize]) -> TokenStream {
    let mask: u64 = deps.iter().fold(0, |m, d| m | (1u64 << d));
    let lit = proc_macro2::Literal::u64_unsuffixed(mask);
    quote!(#lit)
}

/// `let dep: &Dep = slot_dep.get();` for each dependency and `let input = &input;` for inputs.
fn bindings(endpoint: &Endpoint, plan: &Plan, pos: usize) -> TokenStream {
    let deps = plan.deps[pos].iter().map(|&d| {
        let field = &endpoint.fields[plan.order[d]];
        let (name, ty, slot) = (&field.ident, &field.ty, slot(field));
        quote!(#[allow(unused_variables)] let #name: &#ty = #slot.get();)
    });
    let inputs = plan.inputs[pos].iter().map(|&i| {
        let field = &endpoint.fields[i];
        let (name, ty) = (&field.ident, &field.ty);
        quote!(#[allow(unused_variables)] let #name: &#ty = &#name;)
    });
    quote!(#(#deps)* #(#inputs)*)
}

fn execute(endpoint: &Endpoint, plan: &Plan) -> TokenStream {
    let p = quote!(::orchestrate::__private);
    let inputs_ident = inputs_ident(endpoint);
    let input_names: Vec<&Ident> = inputs(endpoint).map(|(f, _)| &f.ident).collect();
    let nodes: Vec<&Field> = plan.order.iter().map(|&f| &endpoint.fields[f]).collect();
    let count = nodes.len();
    let slots = nodes.iter().map(|field| {
        let (slot, ty) = (slot(field), &field.ty);
        quote!(let #slot: #p::Slot<#ty> = #p::Slot::new();)
    });
    let futures = nodes.iter().enumerate().filter_map(|(pos, field)| {
        let FieldKind::Call(call) = &field.kind else { return None };
        let future = node_future(field);
        let bindings = bindings(endpoint, plan, pos);
        let body = call_body(field, call, pos);
        Some(quote!(let mut #future = #p::pin!(async { #bindings #body });))
    });
    let steps = nodes.iter().enumerate().map(|(pos, field)| {
        let mask = mask(&plan.deps[pos]);
        let slot = slot(field);
        match &field.kind {
            FieldKind::Compute(compute) => {
                let bindings = bindings(endpoint, plan, pos);
                let expr = &compute.expr;
                let ty = &field.ty;
                let value = quote_spanned!(expr_span(expr)=> let __value: #ty = #expr;);
                quote! {
                    if __driver.ready(#pos, #mask) {
                        #bindings
                        #value
                        #slot.set(__value);
                        __driver.computed(#pos);
                    }
                }
            }
            _ => {
                let future = node_future(field);
                quote! {
                    if __driver.ready(#pos, #mask) {
                        __driver.poll_call(#pos, #future.as_mut(), &#slot, __cx)?;
                    }
                }
            }
        }
    });
    // Every call still in flight was dropped with the node futures; then the committed ones are
    // compensated. Endpoints without compensations skip the step entirely.
    let compensates = nodes.iter().any(|f| matches!(&f.kind, FieldKind::Call(c) if c.compensate.is_some()));
    let on_failure = if compensates { quote!(__exec.compensate(failure).await) } else { quote!(failure) };
    // A run that needed no compensation tells the port, which closes its saga's journal record.
    let on_success = if compensates { quote!(__exec.succeeded();) } else { quote!() };
    let assemble = nodes.iter().map(|field| {
        let (name, slot) = (&field.ident, slot(field));
        quote!(#name: #slot.into_value(),)
    });
    quote! {
        #[allow(clippy::all, clippy::pedantic, unused_mut, unused_variables)]
        fn execute(
            __runtime: &::orchestrate::Runtime,
            __inputs: Self::Inputs,
            __context: ::orchestrate::RequestContext,
        ) -> impl ::core::future::Future<Output = ::core::result::Result<::orchestrate::Outcome<Self>, ::orchestrate::Failure>> + ::core::marker::Send + '_ {
            async move {
                let #inputs_ident { #(#input_names),* } = __inputs;
                let __calls = #p::Downstream::new(__runtime, __context);
                let __exec = #p::Exec::new(&__calls, <Self as ::orchestrate::Endpoint>::SPEC);
                #(#slots)*
                let __report = {
                    #(#futures)*
                    let mut __deadline = #p::pin!(__exec.deadline_sleep());
                    let mut __driver = #p::Driver::<_, #count>::new(&__exec);
                    #p::poll_fn(|__cx| {
                        __driver.poll_deadline(__deadline.as_mut(), __cx)?;
                        #(#steps)*
                        __driver.finish()
                    })
                    .await
                };
                let __report = match __report {
                    ::core::result::Result::Ok(report) => report,
                    ::core::result::Result::Err(failure) => return ::core::result::Result::Err(#on_failure),
                };
                #on_success
                ::core::result::Result::Ok(::orchestrate::Outcome {
                    value: Self { #(#input_names,)* #(#assemble)* },
                    failed: __report.failed,
                    timeline: __report.timeline,
                })
            }
        }
    }
}

fn expr_span(expr: &syn::Expr) -> Span {
    expr.to_token_stream().into_iter().next().map_or_else(Span::call_site, |t| t.span())
}

/// The type each answer decodes into, and how the call's result becomes the field's value.
struct Shaping {
    /// Type of the value the request(s) produce (`T`, or `Vec<T>` for a fan-out).
    produced: TokenStream,
    /// Applied to the `CallDone<produced>` to get `CallDone<field type>`.
    wrap: TokenStream,
    /// Value of the field when `when` is false.
    skipped: TokenStream,
}

fn shaping(field: &Field, call: &Call) -> Shaping {
    let ty = &field.ty;
    let fallback = call.fallback.as_ref().map(|k| {
        let expr = &k.expr;
        quote_spanned!(expr_span(expr)=> || #expr)
    });
    let none = quote!(::core::option::Option::None);
    match (shape(ty), call.required.is_some(), fallback) {
        (Shape::Option(inner), true, _) => Shaping {
            produced: inner.to_token_stream(),
            wrap: quote!(.map(::core::option::Option::Some)),
            skipped: none,
        },
        (Shape::Option(inner), false, None) => {
            Shaping { produced: inner.to_token_stream(), wrap: quote!(.optional()), skipped: none }
        }
        (Shape::Option(inner), false, Some(_)) => {
            // The conversion of a plain `T` into the field's `Option<T>` is spanned at the user's
            // expression, so a fallback of the wrong type is an error there.
            let fb = call.fallback.as_ref().map(|k| {
                let expr = &k.expr;
                quote_spanned!(expr_span(expr)=> || ::orchestrate::__private::IntoFallback::<#ty>::into_fallback(#expr))
            });
            Shaping { produced: inner.to_token_stream(), wrap: quote!(.optional_or(#fb)), skipped: none }
        }
        (Shape::Plain, false, Some(fb)) => {
            let skipped = call.fallback.as_ref().map(|k| k.expr.to_token_stream()).unwrap_or_default();
            Shaping { produced: ty.to_token_stream(), wrap: quote!(.or_fallback(#fb)), skipped }
        }
        (Shape::Plain, _, _) => Shaping { produced: ty.to_token_stream(), wrap: TokenStream::new(), skipped: none },
    }
}

/// The body of a call's node future: build the request(s), send, shape the result.
pub(super) fn call_body(field: &Field, call: &Call, pos: usize) -> TokenStream {
    let p = quote!(::orchestrate::__private);
    let Shaping { produced, wrap, skipped } = shaping(field, call);
    let send = match &call.target {
        Some(CallTarget::Http { method, parts, .. }) => {
            let outgoing = outgoing(call, *method, parts);
            match &call.for_each {
                Some(each) => {
                    let pat = &each.pat;
                    let collection = &each.collection;
                    let concurrency = call.concurrency.map_or(DEFAULT_CONCURRENCY, |(n, _)| n);
                    let element =
                        match syn::parse2::<Type>(produced.clone()).ok().as_ref().and_then(|t| generic_arg(t, "Vec")) {
                            Some(element) => element.to_token_stream(),
                            None => quote!(_),
                        };
                    let span = element.clone().into_iter().next().map_or_else(Span::call_site, |t| t.span());
                    let fetch =
                        quote_spanned!(span=> __exec.fan_out::<#element, _>(#pos, #concurrency, __requests).await);
                    // The requests are built before the first await: a lazy `map` over the
                    // collection would keep a closure over borrowed items alive across it, and
                    // rustc cannot prove such a future `Send` ("`FnOnce` is not general enough").
                    quote! {{
                        let __requests: ::std::vec::Vec<#p::Outgoing> =
                            ::core::iter::Iterator::collect(
                                ::core::iter::Iterator::map(::core::iter::IntoIterator::into_iter(#collection), |#pat| #outgoing),
                            );
                        #fetch
                    }}
                }
                None => {
                    // Spanned at the field's type: a type that cannot be decoded from JSON is
                    // an error there.
                    let span = produced.clone().into_iter().next().map_or_else(Span::call_site, |t| t.span());
                    let fetch = quote_spanned!(span=> __exec.fetch::<#produced>(#pos, __outgoing).await);
                    quote!({
                        let __outgoing = #outgoing;
                        #fetch
                    })
                }
            }
        }
        Some(CallTarget::With { call: with, .. }) => {
            let span = expr_span(&syn::Expr::Call(with.clone()));
            let invoke = custom_invocation(with, span);
            quote! {{
                let __tally = #p::Tally::new();
                let __done: #p::CallDone<#produced> = match __exec.custom(#pos, &__tally) {
                    ::core::result::Result::Ok(__client) => #p::CallDone::custom(#invoke, &__tally),
                    ::core::result::Result::Err(__error) => #p::CallDone::failed(__error, 0, ::core::option::Option::None),
                };
                __done
            }}
        }
        None => {
            quote!(#p::CallDone::<#produced>::failed(::orchestrate::CallError::new(::orchestrate::CallErrorKind::UnknownService), 0, None))
        }
    };
    // A call with a compensation hands it to the executor the moment it succeeded, built from
    // its answer (bound under the field's name) and what the call itself read.
    let send = match &call.compensate {
        Some(c) => {
            let name = &field.ident;
            let outgoing = compensation_outgoing(c);
            quote! {{
                let __done: #p::CallDone<#produced> = #send;
                if let ::core::result::Result::Ok(__answer) = &__done.value {
                    #[allow(unused_variables)]
                    let #name: &#produced = __answer;
                    __exec.commit(#pos, #outgoing);
                }
                __done
            }}
        }
        None => send,
    };
    match &call.when {
        Some(when) => {
            let cond = &when.expr;
            let cond = quote_spanned!(expr_span(cond)=> { let __when: bool = #cond; __when });
            quote! {
                if #cond { #send #wrap } else { #p::CallDone::skipped(#skipped) }
            }
        }
        None => quote!(#send #wrap),
    }
}

/// `f(client, a, b)` through the `CustomLogic` trait (a function of the wrong shape is one error
/// at `f` naming the shape expected), or directly past six arguments.
fn custom_invocation(with: &syn::ExprCall, span: Span) -> TokenStream {
    let func = &with.func;
    let args: Vec<&syn::Expr> = with.args.iter().collect();
    if args.len() > 6 {
        return quote_spanned!(span=> #func(__client, #(#args),*).await);
    }
    // Spanned at the function, so an unfit function is an error there (the same span as the
    // argument's, so rustc reports the unmet bound once).
    let call_span = expr_span(func);
    let check = quote_spanned!(call_span=> ::orchestrate::__private::custom_logic);
    quote_spanned!(span=> #check(#func)(__client, (#(#args,)*)).await)
}

/// A placeholder's expression with every token still at the placeholder but resolved as the
/// macro's own code: rustc reports a type error there (`no field `idd` on `&Cart``) without a
/// "replace with" suggestion, whose replacement would be the whole template string.
fn resolved_as_macro(expr: &syn::Expr) -> TokenStream {
    fn respan(tokens: TokenStream) -> TokenStream {
        tokens
            .into_iter()
            .map(|tree| match tree {
                proc_macro2::TokenTree::Group(g) => {
                    let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream()));
                    group.set_span(g.span().resolved_at(Span::call_site()));
                    proc_macro2::TokenTree::Group(group)
                }
                mut other => {
                    other.set_span(other.span().resolved_at(Span::call_site()));
                    other
                }
            })
            .collect()
    }
    respan(expr.to_token_stream())
}

/// Builds the `Outgoing` of an HTTP call: template, body, query, headers, idempotency key.
fn outgoing(call: &Call, method: HttpMethod, parts: &[TemplatePart]) -> TokenStream {
    let mut chain = TokenStream::new();
    if let Some(body) = &call.body {
        let expr = &body.expr;
        chain.extend(quote_spanned!(expr_span(expr)=> .json(&(#expr))));
    }
    if let Some(query) = &call.query {
        let expr = &query.expr;
        chain.extend(quote_spanned!(expr_span(expr)=> .query(&(#expr))));
    }
    if let Some(headers) = &call.headers {
        let expr = &headers.expr;
        chain.extend(quote_spanned!(expr_span(expr)=> .headers(#expr)));
    }
    if let Some(key) = &call.idempotency_key {
        let expr = &key.expr;
        chain.extend(quote_spanned!(expr_span(expr)=> .idempotency_key(&(#expr))));
    }
    if let Some(cache) = &call.cache {
        if let Some(expr) = &cache.key {
            chain.extend(quote_spanned!(expr_span(expr)=> .cache_key(&(#expr))));
        }
        if !cache.tags.is_empty() {
            let tags =
                cache.tags.iter().map(|t| quote_spanned!(expr_span(t)=> ::std::string::ToString::to_string(&(#t))));
            chain.extend(quote!(.cache_tags(::std::vec![#(#tags),*])));
        }
    }
    new_outgoing(method, parts, chain)
}

/// Builds the `Outgoing` of a compensation: template, body, headers, idempotency key.
fn compensation_outgoing(c: &Compensate) -> TokenStream {
    let mut chain = TokenStream::new();
    if let Some(body) = &c.body {
        let expr = &body.expr;
        chain.extend(quote_spanned!(expr_span(expr)=> .json(&(#expr))));
    }
    if let Some(headers) = &c.headers {
        let expr = &headers.expr;
        chain.extend(quote_spanned!(expr_span(expr)=> .headers(#expr)));
    }
    if let Some(key) = &c.idempotency_key {
        let expr = &key.expr;
        chain.extend(quote_spanned!(expr_span(expr)=> .idempotency_key(&(#expr))));
    }
    new_outgoing(c.method, &c.parts, chain)
}

/// `Outgoing::new(method, target)` with the target's template written part by part (values
/// percent-encoded as path segments or query values), then the builder calls of `chain`.
fn new_outgoing(method: HttpMethod, parts: &[TemplatePart], chain: TokenStream) -> TokenStream {
    let p = quote!(::orchestrate::__private);
    let method = format_ident!("{}", method.upper());
    let pushes = parts.iter().map(|part| match part {
        TemplatePart::Literal(text) => quote!(__target.literal(#text);),
        TemplatePart::Value { expr, in_query: false } => {
            let expr = resolved_as_macro(expr);
            quote!(__target.segment(&(#expr));)
        }
        TemplatePart::Value { expr, in_query: true } => {
            let expr = resolved_as_macro(expr);
            quote!(__target.query_value(&(#expr));)
        }
    });
    quote!({
        let mut __target = #p::Target::new();
        #(#pushes)*
        #p::Outgoing::new(#p::HttpMethod::#method, __target) #chain
    })
}

/// A compile-time check of the critical path including the services' retry policies, which only
/// the compiler can see: evaluated as a constant, it fails the build with the path and the sum.
fn budget_check(endpoint: &Endpoint, plan: &Plan) -> TokenStream {
    let Some(timeout) = &endpoint.timeout else { return TokenStream::new() };
    let p = quote!(::orchestrate::__private);
    let mut uses_service_retries = false;
    let costs = plan.order.iter().map(|&f| {
        let field = &endpoint.fields[f];
        let name = field.ident.to_string();
        match &field.kind {
            FieldKind::Call(call) if call.retry.is_none() && call.retryable() => {
                uses_service_retries = true;
                let path = service_path(endpoint, field, call);
                let ms = call.timeout.as_ref().map_or(0, |t| t.value.as_millis() as u64);
                quote! {
                    #p::Cost::call(
                        #name,
                        #ms,
                        <#path as ::orchestrate::Service>::SPEC.retry.attempts,
                        <#path as ::orchestrate::Service>::SPEC.retry.backoff.as_millis() as u64,
                        <#path as ::orchestrate::Service>::SPEC.retry.max_backoff.as_millis() as u64,
                    )
                }
            }
            _ => {
                let cost = super::check::cost(field, &name);
                let (ms, attempts, backoff, max) =
                    (cost.timeout_ms, cost.attempts, cost.backoff_ms, cost.max_backoff_ms);
                if cost.attempts == 0 {
                    quote!(#p::Cost::free(#name))
                } else {
                    quote!(#p::Cost::call(#name, #ms, #attempts, #backoff, #max))
                }
            }
        }
    });
    let costs: Vec<TokenStream> = costs.collect();
    if !uses_service_retries {
        return TokenStream::new();
    }
    let deps = plan.deps.iter().map(|d| quote!(&[#(#d),*]));
    let name = endpoint.ident.to_string();
    let budget = timeout.value.as_millis() as u64;
    let fail = quote_spanned!(timeout.lit.span()=> ::core::panic!("{}", message.as_str())); // ok: emitted; rustc reports it as E0080
    quote! {
        #[doc(hidden)]
        const _: () = {
            const COSTS: &[#p::Cost<'static>] = &[#(#costs),*];
            const DEPS: &[&[usize]] = &[#(#deps),*];
            if let ::core::option::Option::Some(message) = #p::over_budget(#name, COSTS, DEPS, #budget) {
                #fail
            }
        };
    }
}
