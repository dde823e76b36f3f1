//! Byte sizes as written in the DSL and in configuration: `"8MiB"`, `"512KiB"`, `"1000B"`.
//!
//! ```
//! use orchestrate_core::size::parse_size;
//! assert_eq!(parse_size("8MiB"), Ok(8 * 1024 * 1024));
//! assert!(parse_size("8 MB").is_err());
//! ```

use crate::GrammarError;

const UNITS: [(&str, u64); 7] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

/// Parses `<digits><unit>` with units `B`, `KiB`, `MiB`, `GiB`, `KB`, `MB`, `GB`; the size must be
/// greater than zero.
///
/// # Errors
///
/// A [`GrammarError`] for spaces, a missing number, an unknown unit, zero or an overflow.
pub fn parse_size(text: &str) -> Result<u64, GrammarError> {
    if let Some(pos) = text.find(char::is_whitespace) {
        return Err(GrammarError::new(
            format!("sizes have no spaces; write \"{}\"", text.split_whitespace().collect::<String>()),
            pos..pos + 1,
        ));
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(GrammarError::new("expected a number; write a size like \"8MiB\"", 0..text.len()));
    }
    let Some((_, factor)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(GrammarError::new(
            format!("unknown size unit `{unit}`; use `B`, `KiB`, `MiB`, `GiB`, `KB`, `MB` or `GB`"),
            split..text.len(),
        ));
    };
    let overflow = || GrammarError::new("size is too large to represent", 0..text.len());
    let value: u64 = digits.parse().map_err(|_| overflow())?;
    let bytes = value.checked_mul(*factor).ok_or_else(overflow)?;
    if bytes == 0 {
        return Err(GrammarError::new("a size of zero is not allowed; use at least \"1B\"", 0..text.len()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_units() {
        assert_eq!(parse_size("1B").unwrap(), 1);
        assert_eq!(parse_size("512KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_size("8MiB").unwrap(), 8 << 20);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
    }

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(parse_size("8 MiB").unwrap_err().at, 1..2);
        assert_eq!(parse_size("8mb").unwrap_err().at, 1..3);
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("0B").unwrap_err().message.contains("zero"));
        assert!(parse_size("99999999999GiB").unwrap_err().message.contains("too large"));
    }
}
