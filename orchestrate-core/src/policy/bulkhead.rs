//! How many calls to a service may be in flight at once: `max_in_flight = auto` (the default), or a
//! fixed `max_in_flight = 64`.
//!
//! A call over the limit is not made: it fails at once as *shed* (the BFF protecting itself, not a
//! failure of the service). The adaptive limit learns from the latency of the calls: it grows
//! while the service answers as fast as it can and the limit is in use, and shrinks when the
//! service slows down or times out, so that one slow service cannot hold every connection and
//! every task of the BFF.

use super::value::{Reader, Value};

/// The concurrency limit of a service.
///
/// ```
/// use orchestrate_core::policy::Concurrency;
/// assert_eq!(Concurrency::default(), Concurrency::AUTO);
/// assert_eq!(Concurrency::Fixed(48).fixed(), Some(48));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(tag = "kind", rename_all = "camelCase"))]
#[non_exhaustive]
pub enum Concurrency {
    /// Learned from latency, between `min` and `max`, starting at `initial`.
    Adaptive {
        /// The limit before anything is learned.
        initial: u32,
        /// It never goes below.
        min: u32,
        /// It never goes above.
        max: u32,
    },
    /// At most this many.
    Fixed(u32),
}

impl Concurrency {
    /// The adaptive limit with its defaults: starts at 256 (enough for a burst of healthy calls),
    /// never below 4 nor above 1024.
    pub const AUTO: Self = Self::Adaptive { initial: 256, min: 4, max: 1024 };

    /// The fixed limit, if it is one.
    pub const fn fixed(&self) -> Option<u32> {
        match self {
            Self::Fixed(n) => Some(*n),
            Self::Adaptive { .. } => None,
        }
    }

    /// The most calls it could ever admit at once.
    pub const fn ceiling(&self) -> u32 {
        match self {
            Self::Fixed(n) => *n,
            Self::Adaptive { max, .. } => *max,
        }
    }
}

impl Concurrency {
    /// The limit in words, for documentation pages.
    ///
    /// ```
    /// use orchestrate_core::policy::Concurrency;
    /// assert_eq!(Concurrency::AUTO.describe(), "adaptive, 4 to 1024 in flight (starts at 256)");
    /// assert_eq!(Concurrency::Fixed(48).describe(), "48 in flight");
    /// ```
    pub fn describe(&self) -> String {
        match self {
            Self::Fixed(n) => format!("{n} in flight"),
            Self::Adaptive { initial, min, max } => format!("adaptive, {min} to {max} in flight (starts at {initial})"),
        }
    }
}

impl Default for Concurrency {
    fn default() -> Self {
        Self::AUTO
    }
}

/// Reads `max_in_flight`: `auto` (a word in Rust, `"auto"` in TOML) or a whole number from 1.
pub fn read<P: Clone>(reader: &mut Reader<P>, value: &Value<P>) -> Option<Concurrency> {
    match value {
        Value::Word(word, _) | Value::Str(word, _) if word == "auto" => Some(Concurrency::AUTO),
        Value::Word(word, at) | Value::Str(word, at) => {
            reader.fail(at, "max_in_flight", format!("`max_in_flight` is `auto` or a whole number of at least 1, e.g. `max_in_flight = 64`; found `{word}`"));
            None
        }
        other => reader.count(other, "max_in_flight", 1).map(Concurrency::Fixed),
    }
}
