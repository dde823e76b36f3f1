//! Collects every error of one item so a user with three mistakes sees three errors in one build.

use proc_macro2::{Span, TokenStream};
use std::fmt::Display;

/// An error collector. Call [`Errors::finish`] to turn what was collected into a result.
#[derive(Default)]
pub(crate) struct Errors {
    errors: Vec<syn::Error>,
}

impl Errors {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records an error at `span`.
    pub(crate) fn at(&mut self, span: Span, message: impl Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// Records an error spanning `tokens` (first to last token).
    pub(crate) fn spanned(&mut self, tokens: impl quote::ToTokens, message: impl Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records a `syn` error (e.g. from a nested parser).
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// Records the error of `result` and returns its value, if any.
    pub(crate) fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(error);
                None
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.errors.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// All errors combined into one, or `Ok(())` when there were none.
    pub(crate) fn finish(self) -> syn::Result<()> {
        let mut errors = self.errors.into_iter();
        let Some(mut first) = errors.next() else {
            return Ok(());
        };
        for error in errors {
            first.combine(error);
        }
        Err(first)
    }
}

/// The compile errors of `error`, followed by `fallback` (the user's item without our
/// attributes), so one mistake does not cascade into "cannot find type" errors elsewhere.
pub(crate) fn with_fallback(error: syn::Error, fallback: TokenStream) -> TokenStream {
    let mut out = error.into_compile_error();
    out.extend(fallback);
    out
}
