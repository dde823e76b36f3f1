//! Policy tokens → [`orchestrate_core::policy`] values, and the problems it finds → compile
//! errors at the user's tokens.
//!
//! The rules (keys, ranges, defaults, wording) are all in `orchestrate_core::policy`; this
//! module only parses the token syntax (`key = value`, `key(k = v, ..)`, `[a, b]`) and maps
//! positions: a value's span, or the offending part inside a string literal where the compiler
//! supports sub-spans.

use crate::ctxt::Errors;
use crate::kw;
use orchestrate_core::policy::{Entry, Problem, Value};
use proc_macro2::Span;
use syn::parse::ParseStream;
use syn::{Ident, LitStr, Token, bracketed, parenthesized};

/// Where a policy value was written: its span and, for a string, the literal (for sub-spans).
#[derive(Clone)]
pub(crate) struct At {
    pub(crate) span: Span,
    lit: Option<LitStr>,
}

impl At {
    pub(crate) fn span(span: Span) -> Self {
        Self { span, lit: None }
    }
}

/// Parses `key = value` / `key(k = v, ..)` entries separated by commas until the end of `input`.
/// A malformed entry is reported and skipped; parsing resumes at the next comma.
pub(crate) fn entries(input: ParseStream<'_>, errors: &mut Errors) -> Vec<Entry<At>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        match entry(input) {
            Ok(entry) => out.push(entry),
            Err(e) => {
                errors.push(e);
                kw::skip_to_comma(input);
            }
        }
        if !input.is_empty() && input.parse::<Token![,]>().is_err() {
            errors.at(input.span(), "expected `,` between settings");
            kw::skip_to_comma(input);
            let _ = input.parse::<Token![,]>();
        }
    }
    out
}

/// One `key = value` or `key(..)` entry.
pub(crate) fn entry(input: ParseStream<'_>) -> syn::Result<Entry<At>> {
    let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
    let at = At::span(key.span());
    let name = key.to_string();
    if input.peek(syn::token::Paren) {
        return Ok(Entry::new(name, at, group(input, key.span())?));
    }
    if !input.peek(Token![=]) {
        return Err(syn::Error::new(key.span(), format!("`{key}` needs a value: `{key} = ..`")));
    }
    input.parse::<Token![=]>()?;
    Ok(Entry::new(name, at, value(input)?))
}

/// The `= value` of an entry whose key was already parsed.
pub(crate) fn entry_after_key(input: ParseStream<'_>, key: &Ident) -> syn::Result<Entry<At>> {
    if !input.peek(Token![=]) {
        return Err(syn::Error::new(key.span(), format!("`{key}` needs a value: `{key} = ..`")));
    }
    input.parse::<Token![=]>()?;
    Ok(Entry::new(key.to_string(), At::span(key.span()), value(input)?))
}

/// `(k = v, ..)` as a table.
pub(crate) fn group(input: ParseStream<'_>, span: Span) -> syn::Result<Value<At>> {
    let content;
    parenthesized!(content in input);
    let mut items = Vec::new();
    while !content.is_empty() {
        items.push(entry(&content)?);
        if !content.is_empty() {
            content.parse::<Token![,]>()?;
        }
    }
    Ok(Value::Table(items, At::span(span)))
}

/// A literal, a word, `-number` or a `[..]` list.
fn value(input: ParseStream<'_>) -> syn::Result<Value<At>> {
    if input.peek(syn::token::Bracket) {
        let list;
        let bracket = bracketed!(list in input);
        let mut items = Vec::new();
        while !list.is_empty() {
            items.push(value(&list)?);
            if !list.is_empty() {
                list.parse::<Token![,]>()?;
            }
        }
        return Ok(Value::List(items, At::span(bracket.span.join())));
    }
    if input.peek(Token![-]) {
        let minus: Token![-] = input.parse()?;
        let lit: syn::LitInt = input.parse()?;
        let n = lit.base10_parse::<u128>().map_or(i128::MIN, |n| -(i128::try_from(n).unwrap_or(i128::MAX)));
        return Ok(Value::Number(n, At::span(minus.span)));
    }
    if input.peek(Ident) {
        let ident: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        let text = ident.to_string();
        return Ok(match text.as_str() {
            "true" => Value::Bool(true, At::span(ident.span())),
            "false" => Value::Bool(false, At::span(ident.span())),
            _ => Value::Word(text, At::span(ident.span())),
        });
    }
    let lit: syn::Lit =
        input.parse().map_err(|e| syn::Error::new(e.span(), "expected a value, e.g. `3`, `\"100ms\"` or `[..]`"))?;
    let span = lit.span();
    Ok(match lit {
        syn::Lit::Str(s) => {
            let text = s.value();
            Value::Str(text, At { span, lit: Some(s) })
        }
        // `5xx` is an integer with the suffix `xx` to the tokenizer: a word here.
        syn::Lit::Int(i) if !i.suffix().is_empty() => Value::Word(i.to_string(), At::span(span)),
        syn::Lit::Int(i) => Value::Number(
            i.base10_parse::<u128>().map_or(i128::MAX, |n| i128::try_from(n).unwrap_or(i128::MAX)),
            At::span(span),
        ),
        syn::Lit::Bool(b) => Value::Bool(b.value, At::span(span)),
        syn::Lit::Float(_) => Value::Other("a decimal number", At::span(span)),
        _ => Value::Other("a literal of another kind", At::span(span)),
    })
}

/// Reports `problems` as compile errors at their positions.
pub(crate) fn report(problems: Vec<Problem<At>>, errors: &mut Errors) {
    for problem in problems {
        let span = match (&problem.at.lit, &problem.inner) {
            (Some(lit), Some(range)) => kw::sub_span(lit, range),
            _ => problem.at.span,
        };
        errors.at(span, &problem.message);
        if let Some((at, note)) = problem.note {
            errors.at(at.span, note);
        }
    }
}
