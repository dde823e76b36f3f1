//! Durations as written in the DSL and in configuration: `"200ms"`, `"2s"`, `"1m30s"`.
//!
//! Grammar: one or more `<digits><unit>` groups with no spaces, units `ms`, `s`, `m`, `h`, each unit
//! at most once and from larger to smaller. The total must be greater than zero.
//!
//! ```
//! use orchestrate_core::duration::parse_duration;
//! use std::time::Duration;
//!
//! assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
//! assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
//! assert!(parse_duration("200 ms").is_err());
//! ```

use crate::GrammarError;
use std::time::Duration;

const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses a duration string; see the [module docs](self) for the grammar.
///
/// # Errors
///
/// A [`GrammarError`] naming the offending part: spaces, a missing number or unit, an unknown
/// unit, a repeated or out-of-order unit, an overflow, or a total of zero.
pub fn parse_duration(text: &str) -> Result<Duration, GrammarError> {
    strict(text).map_err(|mut error| {
        // Say what to write when the intent is clear: `"2.5s"`, `"2 seconds"`, `"1sec"`.
        if let Some(fixed) = rewrite(text)
            && fixed != text
        {
            error.message = if text.contains(char::is_whitespace) {
                format!("durations have no spaces; write \"{fixed}\"")
            } else if text.contains(['.', ',']) {
                format!("durations are whole numbers: write \"{fixed}\"")
            } else {
                format!("{}; write \"{fixed}\"", error.message)
            };
        }
        error
    })
}

/// The grammar itself, without advice.
fn strict(text: &str) -> Result<Duration, GrammarError> {
    if text.is_empty() {
        return Err(GrammarError::new("empty duration; write a number and a unit, e.g. \"200ms\" or \"2s\"", 0..0));
    }
    if let Some(pos) = text.find(char::is_whitespace) {
        return Err(GrammarError::new("durations have no spaces", pos..pos + 1));
    }
    let bytes = text.as_bytes();
    let mut total: u64 = 0;
    let mut i = 0;
    // Index into UNITS of the last unit seen: each next unit must be smaller.
    let mut last_unit: Option<usize> = None;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(GrammarError::new(
                format!("expected a number at `{}`; write e.g. \"200ms\"", &text[start..]),
                start..text.len(),
            ));
        }
        let digits = &text[start..i];
        if i < bytes.len() && (bytes[i] == b'.' || bytes[i] == b',') {
            return Err(GrammarError::new(
                "durations are whole numbers; write a smaller unit, e.g. \"1500ms\" for 1.5 s",
                start..text.len(),
            ));
        }
        let unit_start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphabetic() || !bytes[i].is_ascii()) {
            i += 1;
        }
        let unit = &text[unit_start..i];
        if unit.is_empty() {
            return Err(GrammarError::new(
                format!("`{digits}` has no unit; write \"{digits}ms\" or \"{digits}s\""),
                start..i,
            ));
        }
        let Some(unit_index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(GrammarError::new(
                format!("unknown duration unit `{unit}`; use `ms`, `s`, `m` or `h`"),
                unit_start..i,
            ));
        };
        if let Some(last) = last_unit
            && unit_index <= last
        {
            return Err(GrammarError::new(
                format!(
                    "unit `{unit}` after `{}`; write each unit once, from hours down to milliseconds",
                    UNITS[last].0
                ),
                unit_start..i,
            ));
        }
        last_unit = Some(unit_index);
        let value: u64 = digits.parse().map_err(|_| too_long(start..i))?;
        let millis = value.checked_mul(UNITS[unit_index].1).ok_or_else(|| too_long(start..i))?;
        total = total.checked_add(millis).ok_or_else(|| too_long(start..i))?;
    }
    if total == 0 {
        return Err(GrammarError::new("a duration of zero is not allowed here; use at least \"1ms\"", 0..text.len()));
    }
    Ok(Duration::from_millis(total))
}

/// Unit words people write, and the unit they mean.
const WORDS: [(&str, &str); 16] = [
    ("milliseconds", "ms"),
    ("millisecond", "ms"),
    ("millis", "ms"),
    ("msecs", "ms"),
    ("msec", "ms"),
    ("seconds", "s"),
    ("second", "s"),
    ("secs", "s"),
    ("sec", "s"),
    ("minutes", "m"),
    ("minute", "m"),
    ("mins", "m"),
    ("min", "m"),
    ("hours", "h"),
    ("hour", "h"),
    ("hrs", "h"),
];

/// The duration `text` most likely means, in the grammar: spaces removed, unit words replaced,
/// a decimal written in milliseconds. `None` when no reading of it is valid.
fn rewrite(text: &str) -> Option<String> {
    let compact: String = text.split_whitespace().collect();
    let mut total: u64 = 0;
    let mut rest = compact.as_str();
    while !rest.is_empty() {
        let whole_len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let whole: u64 = rest[..whole_len].parse().ok()?;
        rest = &rest[whole_len..];
        let mut fraction = "";
        if let Some(after) = rest.strip_prefix(['.', ',']) {
            let len = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
            fraction = &after[..len];
            rest = &after[len..];
        }
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let word = rest[..unit_len].to_ascii_lowercase();
        rest = &rest[unit_len..];
        let unit = WORDS.iter().find(|(w, _)| *w == word).map_or(word.as_str(), |(_, u)| u);
        let factor = UNITS.iter().find(|(name, _)| *name == unit)?.1;
        let scale = 10u64.checked_pow(u32::try_from(fraction.len()).ok()?)?;
        let fraction: u64 = if fraction.is_empty() { 0 } else { fraction.parse().ok()? };
        let part = fraction.checked_mul(factor)?;
        if part % scale != 0 {
            return None;
        }
        total = total.checked_add(whole.checked_mul(factor)?)?.checked_add(part / scale)?;
    }
    if total == 0 {
        return None;
    }
    let exact = format_duration(Duration::from_millis(total));
    // One unit reads better than "2s500ms" for what was written as "2.5s".
    if compact.contains(['.', ',']) { Some(format!("{total}ms")) } else { Some(exact) }
}

fn too_long(at: std::ops::Range<usize>) -> GrammarError {
    GrammarError::new("duration is too long to represent", at)
}

/// Formats a duration the way the DSL writes it (`"1m30s"`, `"250ms"`), for messages and docs.
///
/// ```
/// use orchestrate_core::duration::format_duration;
/// use std::time::Duration;
/// assert_eq!(format_duration(Duration::from_millis(90_250)), "1m30s250ms");
/// ```
pub fn format_duration(duration: Duration) -> String {
    let mut millis = duration.as_millis();
    if millis == 0 {
        return "0ms".to_owned();
    }
    let mut out = String::new();
    for (name, factor) in UNITS {
        let factor = u128::from(factor);
        if millis >= factor {
            out.push_str(&format!("{}{name}", millis / factor));
            millis %= factor;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> GrammarError {
        parse_duration(text).expect_err(text)
    }

    #[test]
    fn accepts_single_and_compound_units() {
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1s500ms").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1h2m3s4ms").unwrap(), Duration::from_millis(3_723_004));
    }

    #[test]
    fn rejects_spaces_and_says_how_to_write_it() {
        let e = err("200 ms");
        assert_eq!(e.at, 3..4);
        assert_eq!(e.message, "durations have no spaces; write \"200ms\"");
        assert_eq!(err("2 seconds").message, "durations have no spaces; write \"2s\"");
    }

    #[test]
    fn rejects_unknown_units_pointing_at_the_unit() {
        let e = err("2x");
        assert_eq!(e.at, 1..2);
        assert!(e.message.contains("unknown duration unit `x`"), "{}", e.message);
        assert_eq!(err("2sec").message, "unknown duration unit `sec`; use `ms`, `s`, `m` or `h`; write \"2s\"");
        assert_eq!(
            err("1minute30s").message,
            "unknown duration unit `minute`; use `ms`, `s`, `m` or `h`; write \"1m30s\""
        );
    }

    #[test]
    fn rejects_zero_missing_parts_and_disorder() {
        assert!(err("0ms").message.contains("zero"));
        assert!(err("0s0ms").message.contains("zero"));
        assert!(err("").message.contains("empty"));
        assert!(err("200").message.contains("no unit"));
        assert!(err("ms").message.contains("expected a number"));
        assert!(err("-5ms").message.contains("expected a number"));
        assert!(err("5ms1s").message.contains("from hours down"));
        assert!(err("1s1s").message.contains("from hours down"));
        assert!(err("99999999999999999999ms").message.contains("too long"));
        assert!(err("9999999999999999h").message.contains("too long"));
    }

    #[test]
    fn a_decimal_says_what_to_write() {
        assert_eq!(err("2.5s").message, "durations are whole numbers: write \"2500ms\"");
        assert_eq!(err("1.5 m").message, "durations have no spaces; write \"90000ms\"");
        assert_eq!(err("0,25s").message, "durations are whole numbers: write \"250ms\"");
        assert_eq!(err("2.5s").at, 0..4);
        // Below a millisecond there is nothing to write instead.
        assert!(err("0.5ms").message.starts_with("durations are whole numbers; write a smaller unit"));
    }

    #[test]
    fn formats_back_to_the_grammar() {
        for text in ["200ms", "2s", "1m30s", "1h", "1s500ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
