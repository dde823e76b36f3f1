//! Grammar and arithmetic shared by `orchestrate`'s compile-time checks and its start-up
//! configuration.
//!
//! The macros validate durations, sizes and path templates while the user's crate compiles; the
//! runtime validates the same values when they come from the environment or a configuration file.
//! Both must accept exactly the same language, so the rules live here once, in a crate with no
//! required dependencies (it is built for the host by the proc-macro crate and for the target by the
//! runtime; keeping it tiny keeps that double build cheap).
//!
//! The critical-path arithmetic is `const fn` so that the code generated for an endpoint can
//! evaluate it at compile time against the retry policies declared in `services!`, which the
//! endpoint macro itself cannot see.
//!
//! [`sequence`] renders an endpoint's call sequence table and dependency graph, once for both
//! readers: the rustdoc `#[endpoint]` generates and the runtime's `/_orchestrate` page.
//!
//! [`policy`] holds every policy (retries, breakers, budgets, ...) once: its type, keys, defaults,
//! ranges and the wording of every mistake, for `services!`, `#[call(..)]` and the configuration
//! file alike.
//!
//! The only dependency is `serde`, optional (feature `serde`, which the runtime turns on so the
//! policies serialize in `/_orchestrate.json`; the macros' host build goes without).
//!
//! Everything here is hand-written on purpose: the grammars are a few dozen lines, must report the
//! byte range of a mistake so the macros can point at it, and must be strict (`"200 ms"` is an
//! error); the general-purpose duration crates are lenient and report no positions.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
#![forbid(unsafe_code)]

pub mod budget;
pub mod duration;
pub mod headers;
pub mod policy;
pub mod sequence;
pub mod size;
pub mod suggest;
pub mod template;
pub mod url;

use std::fmt;
use std::ops::Range;

/// A mistake in a duration, size or template string: what is wrong, how to fix it, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrammarError {
    /// A lowercase sentence that says what is wrong and how to fix it.
    pub message: String,
    /// Byte range of the offending part inside the parsed string.
    pub at: Range<usize>,
}

impl GrammarError {
    pub(crate) fn new(message: impl Into<String>, at: Range<usize>) -> Self {
        Self { message: message.into(), at }
    }
}

impl fmt::Display for GrammarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GrammarError {}
