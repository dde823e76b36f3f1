//! Parsing of `key = value`, `key(...)` and `flag` lists inside attributes, with duplicate and
//! unknown-key detection.

use crate::ctxt::Errors;
use orchestrate_core::policy::unknown_key;
use proc_macro2::Span;
use syn::parse::ParseStream;
use syn::{Ident, LitStr, Token};

/// Keys seen so far in one attribute, to report duplicates at the second occurrence.
pub(crate) struct Seen {
    what: &'static str,
    keys: Vec<(String, Span)>,
}

impl Seen {
    pub(crate) fn new(what: &'static str) -> Self {
        Self { what, keys: Vec::new() }
    }

    /// Records `key`; a repeat is an error at the repeat plus a pointer to the first.
    pub(crate) fn first(&mut self, key: &Ident, errors: &mut Errors) -> bool {
        let name = key.to_string();
        if let Some((_, first)) = self.keys.iter().find(|(k, _)| *k == name) {
            errors.at(key.span(), format!("duplicate `{name}` in `{}`; remove one of them", self.what));
            errors.at(*first, format!("first `{name}` is here"));
            return false;
        }
        self.keys.push((name, key.span()));
        true
    }

    /// The keys seen, in order.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.keys.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// Whether `key` was seen.
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == key)
    }

    /// Records `key` under another name (e.g. every method key as "method").
    pub(crate) fn first_of(&mut self, group: &str, key: &Ident, errors: &mut Errors) -> bool {
        if let Some((_, first)) = self.keys.iter().find(|(k, _)| k == group) {
            errors.at(key.span(), format!("`{}` already has a {group}; keep one", self.what));
            errors.at(*first, format!("first {group} is here"));
            return false;
        }
        self.keys.push((group.to_owned(), key.span()));
        true
    }
}

/// An unknown key: error at the key with the list of valid ones and the closest one not already
/// `present` (the wording is the policy grammar's, `orchestrate_core::policy::unknown_key`).
pub(crate) fn unknown(key: &Ident, what: &str, valid: &[&str], present: &[&str], errors: &mut Errors) {
    errors.at(key.span(), unknown_key(&key.to_string(), what, valid, present));
}

/// Parses `= "text"`.
pub(crate) fn eq_str(input: ParseStream<'_>, key: &Ident) -> syn::Result<LitStr> {
    eq_token(input, key)?;
    input.parse().map_err(|e| syn::Error::new(e.span(), format!("`{key}` takes a string, e.g. `{key} = \"..\"`")))
}

/// Parses `=` with a message that names the key.
pub(crate) fn eq_token(input: ParseStream<'_>, key: &Ident) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        Ok(())
    } else {
        Err(syn::Error::new(key.span(), format!("`{key}` needs a value: `{key} = ..`")))
    }
}

/// Skips to the next top-level comma after a parse error, so later keys are still checked.
pub(crate) fn skip_to_comma(input: ParseStream<'_>) {
    while !input.is_empty() && !input.peek(Token![,]) {
        if input.parse::<proc_macro2::TokenTree>().is_err() {
            break;
        }
    }
}

/// Parses the separator after an item: a comma or the end.
pub(crate) fn comma_or_end(input: ParseStream<'_>) -> syn::Result<()> {
    if input.is_empty() {
        return Ok(());
    }
    input.parse::<Token![,]>().map(drop)
}

/// Parses a duration literal, reporting grammar mistakes at the literal.
pub(crate) fn duration(lit: &LitStr, key: &str) -> syn::Result<std::time::Duration> {
    orchestrate_core::duration::parse_duration(&lit.value())
        .map_err(|e| syn::Error::new(sub_span(lit, &e.at), format!("invalid `{key}`: {e}")))
}

/// The span of `range` (byte offsets into the value) inside `lit`, where the compiler supports
/// sub-spans, else the whole literal.
pub(crate) fn sub_span(lit: &LitStr, range: &std::ops::Range<usize>) -> Span {
    // Offsets are into the value; the token starts with `"`. Only plain (unescaped) literals map
    // one to one.
    let token = lit.token();
    let raw = token.to_string();
    if raw.starts_with('"')
        && raw.len() == lit.value().len() + 2
        && let Some(span) = token.subspan(range.start + 1..range.end + 1)
    {
        return span;
    }
    lit.span()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_gets_the_closest_and_the_list() {
        assert_eq!(
            unknown_key("timout", "#[call]", &["service", "timeout"], &[]),
            "unknown key `timout` in `#[call]`; did you mean `timeout`? (expected one of: service, timeout)"
        );
        assert_eq!(
            unknown_key("cache", "#[call]", &["service", "timeout"], &[]),
            "unknown key `cache` in `#[call]` (expected one of: service, timeout)"
        );
    }
}
