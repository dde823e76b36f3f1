//! What `#[endpoint]` emits when the endpoint has mistakes: the user's struct, and stand-ins for
//! everything the macro would have generated (thiserror's `fallback.rs` is the model).
//!
//! The stand-ins keep the rest of the crate compiling against the endpoint (`SummaryInputs`,
//! `impl Endpoint`, the router of an `#[api]` module), so that one mistake is one error and not a
//! cascade, and they keep every expression of the endpoint in front of rustc: a type mismatch in
//! a `body`, an unknown service, custom logic of the wrong shape are reported in the same build as
//! the macro's own errors. Expressions that read a name the macro already reported as unknown are
//! left out, so that mistake is not reported twice.

use super::model::*;
use super::{check, expand};
use crate::ctxt::Errors;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::ItemStruct;

/// The struct, the stand-in impls and the expression checks of a mistaken endpoint.
pub(crate) fn fallback(endpoint: &Endpoint, item: &ItemStruct) -> TokenStream {
    let ident = &endpoint.ident;
    let name = ident.to_string();
    let inputs_struct = expand::inputs_struct(endpoint, item);
    let inputs_ident = expand::inputs_ident(endpoint);
    let aliases = expand::service_aliases(endpoint);
    let checks = expression_checks(endpoint);
    let method = format_ident!("{}", endpoint.method.variant());
    let route = &endpoint.route;
    let unreachable = format!("orchestrate: `{name}` has compile errors");
    quote! {
        #item

        #aliases

        #inputs_struct

        #[automatically_derived]
        impl ::orchestrate::Endpoint for #ident {
            type Inputs = #inputs_ident;
            const SPEC: &'static ::orchestrate::EndpointSpec = &::orchestrate::EndpointSpec::new(
                #name,
                ::orchestrate::Method::#method,
                #route,
                ::core::time::Duration::ZERO,
                &[],
                &[],
            );
            fn execute(
                _: &::orchestrate::Runtime,
                _: Self::Inputs,
                _: ::orchestrate::RequestContext,
            ) -> impl ::core::future::Future<Output = ::core::result::Result<::orchestrate::Outcome<Self>, ::orchestrate::Failure>> + ::core::marker::Send + '_ {
                async move { ::core::unreachable!(#unreachable) }
            }
        }

        #[automatically_derived]
        impl ::orchestrate::__private::Extract for #ident {
            fn extract(_: &::orchestrate::__private::Inbound) -> ::core::result::Result<Self::Inputs, ::orchestrate::__private::InputError> {
                ::core::unreachable!(#unreachable)
            }
        }

        #checks
    }
}

/// Whether the macro found nothing wrong with the call itself: the expansion of a call it
/// rejected (a fan-out into a field that is not a `Vec`, say) would only add rustc's view of the
/// same mistake.
fn sound(field: &Field, call: &Call) -> bool {
    let mut errors = Errors::new();
    check::check_call(field, call, &mut errors);
    !call.malformed && errors.is_empty()
}

/// A never-called function in which every call and computed field of the endpoint is written as
/// the real expansion writes it, with every field of the struct in scope as a reference.
fn expression_checks(endpoint: &Endpoint) -> TokenStream {
    let p = quote!(::orchestrate::__private);
    let fields: Vec<&Field> = endpoint.fields.iter().filter(|f| !matches!(f.kind, FieldKind::Unknown)).collect();
    let known = |uses: &[syn::Ident]| uses.iter().all(|u| endpoint.fields.iter().any(|f| f.ident == *u));
    let params = fields.iter().map(|f| {
        let (name, ty) = (&f.ident, &f.ty);
        quote!(#name: &#ty)
    });
    let bodies = endpoint.fields.iter().enumerate().filter_map(|(pos, field)| match &field.kind {
        FieldKind::Call(call) if known(&call.uses) && sound(field, call) => {
            let body = expand::call_body(field, call, pos);
            Some(quote!({ let _ = async { #body }; }))
        }
        FieldKind::Compute(compute) if known(&compute.uses) => {
            let (expr, ty) = (&compute.expr, &field.ty);
            Some(quote!({ let __value: #ty = #expr; }))
        }
        _ => None,
    });
    let check = format_ident!("__orchestrate_check_{}", endpoint.ident);
    quote! {
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case, unused_variables, unreachable_code, clippy::all)]
        async fn #check(__exec: &#p::Exec<'_, #p::Downstream<'_>>, #(#params),*) {
            #(#bodies)*
        }
    }
}
