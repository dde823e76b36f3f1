//! Policy values as written, in either syntax, and the reader that checks them.
//!
//! `services!`, `#[call(..)]` and `#[endpoint(..)]` (Rust tokens) and the start-up configuration
//! file (TOML) write the same policies in two syntaxes. Each turns what it parsed into a tree of
//! [`Value`]s, every node carrying a position of the caller's choice (`P`: a span for the macros,
//! a byte range for the file), and hands it to the rules of this module's siblings. The rules
//! report [`Problem`]s at those positions, so the wording of every message lives here and the
//! callers only turn positions into their own (a compile error at a span, `file:line:col`).

use crate::suggest::did_you_mean_excluding;
use std::ops::Range;

/// The two places policies are written; messages give examples in the syntax of the place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Rust attribute and macro tokens: `retry(attempts = 3, backoff = "100ms")`, `on = [5xx]`.
    Dsl,
    /// The configuration file: `retry = { attempts = 3, backoff = "100ms" }`, `on = ["5xx"]`.
    Toml,
}

/// A value as written, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<P> {
    /// A whole number (one too large for an `i128` is written as `i128::MAX`).
    Number(i128, P),
    /// A string.
    Str(String, P),
    /// `true` or `false`.
    Bool(bool, P),
    /// A bare word (an identifier, or a token such as `5xx`); only the DSL writes these.
    Word(String, P),
    /// `[..]`.
    List(Vec<Value<P>>, P),
    /// `name(k = v, ..)` in the DSL, `{ k = v }` or `[table]` in TOML.
    Table(Vec<Entry<P>>, P),
    /// Anything else (a float, a date, an expression), with a name for messages.
    Other(&'static str, P),
}

impl<P> Value<P> {
    /// Where the value was written.
    pub fn at(&self) -> &P {
        match self {
            Self::Number(_, at)
            | Self::Str(_, at)
            | Self::Bool(_, at)
            | Self::Word(_, at)
            | Self::List(_, at)
            | Self::Table(_, at)
            | Self::Other(_, at) => at,
        }
    }

    /// What kind of value it is, for "found .." in messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Number(..) => "a number",
            Self::Str(..) => "a string",
            Self::Bool(..) => "a boolean",
            Self::Word(..) => "a word",
            Self::List(..) => "a list",
            Self::Table(..) => "a table",
            Self::Other(name, _) => name,
        }
    }
}

/// `key = value` (or `key(..)`), with the key's position.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<P> {
    /// The key as written.
    pub key: String,
    /// Where the key was written.
    pub at: P,
    /// Its value.
    pub value: Value<P>,
}

impl<P> Entry<P> {
    /// An entry.
    pub fn new(key: impl Into<String>, at: P, value: Value<P>) -> Self {
        Self { key: key.into(), at, value }
    }
}

/// A mistake in a policy: where, which key (dotted, e.g. `retry.backoff`), and a lowercase
/// sentence that says what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem<P> {
    /// The position of the value (or key) at fault.
    pub at: P,
    /// The offending part inside a string value, as a byte range of its text, when known.
    pub inner: Option<Range<usize>>,
    /// The key at fault, dotted from the policy group (`retry.backoff`, `max_in_flight`).
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// A second position that explains the first ("first `timeout` is here").
    pub note: Option<(P, String)>,
}

/// Reads policy values and collects every problem, so that all of them are reported at once.
#[derive(Debug)]
pub struct Reader<P> {
    syntax: Syntax,
    problems: Vec<Problem<P>>,
}

impl<P: Clone> Reader<P> {
    /// A reader for values written in `syntax`.
    pub fn new(syntax: Syntax) -> Self {
        Self { syntax, problems: Vec::new() }
    }

    /// The syntax of the values read.
    pub fn syntax(&self) -> Syntax {
        self.syntax
    }

    /// Every problem found so far, in the order found.
    pub fn problems(&self) -> &[Problem<P>] {
        &self.problems
    }

    /// Takes the problems found.
    pub fn into_problems(self) -> Vec<Problem<P>> {
        self.problems
    }

    /// How many problems were found so far (to tell whether a part read cleanly).
    pub fn seen(&self) -> usize {
        self.problems.len()
    }

    /// Records a problem at `at`.
    pub fn fail(&mut self, at: &P, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            at: at.clone(),
            inner: None,
            key: key.to_owned(),
            message: message.into(),
            note: None,
        });
    }

    /// Records a problem at the part `inner` (a byte range of its text) of the string at `at`.
    pub fn fail_at(&mut self, at: &P, inner: Range<usize>, key: &str, message: impl Into<String>) {
        self.fail_inner(at, inner, key, message.into());
    }

    fn fail_inner(&mut self, at: &P, inner: Range<usize>, key: &str, message: String) {
        self.problems.push(Problem { at: at.clone(), inner: Some(inner), key: key.to_owned(), message, note: None });
    }

    /// The entries of a table value, or a problem naming what was expected.
    pub fn table<'v>(&mut self, value: &'v Value<P>, key: &str, example: &Example) -> Option<&'v [Entry<P>]> {
        match value {
            Value::Table(entries, _) => Some(entries),
            other => {
                let message = format!(
                    "`{}` is a group of settings, e.g. `{}`; found {}",
                    short(key),
                    example.of(self.syntax),
                    other.type_name()
                );
                self.fail(other.at(), key, message);
                None
            }
        }
    }

    /// Checks the keys of a table: each must be one of `keys` and appear once. Returns the
    /// entries to read, and the keys written or most likely meant by a misspelled key (a key
    /// reported as unknown or malformed is not also reported missing).
    pub fn keys<'v>(&mut self, group: &str, entries: &'v [Entry<P>], keys: &[&'static str]) -> Keys<'v, P> {
        let mut out = Keys { entries: Vec::new(), written: Vec::new() };
        let present: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        for (i, entry) in entries.iter().enumerate() {
            let path = join(group, &entry.key);
            if !keys.contains(&entry.key.as_str()) {
                let near = crate::suggest::closest_excluding(&entry.key, keys.iter().copied(), &present);
                out.written.extend(near);
                let message = unknown_key(&entry.key, group_name(group), keys, &present);
                self.fail(&entry.at, &path, message);
                continue;
            }
            if let Some(first) = entries[..i].iter().find(|e| e.key == entry.key) {
                let message = format!("duplicate `{}` in `{}`; remove one of them", entry.key, group_name(group));
                self.problems.push(Problem {
                    at: entry.at.clone(),
                    inner: None,
                    key: path,
                    message,
                    note: Some((first.at.clone(), format!("first `{}` is here", entry.key))),
                });
                continue;
            }
            if let Some(known) = keys.iter().find(|k| **k == entry.key) {
                out.written.push(known);
            }
            out.entries.push(entry);
        }
        out
    }

    /// One problem at `at` listing every key of `required` that `keys` lacks.
    pub fn require(&mut self, at: &P, group: &str, keys: &Keys<'_, P>, required: &[&str], example: &Example) {
        let missing: Vec<String> =
            required.iter().filter(|k| !keys.written.contains(k)).map(|k| format!("`{k}`")).collect();
        if let Some((last, rest)) = missing.split_last() {
            let list = if rest.is_empty() { last.clone() } else { format!("{} and {last}", rest.join(", ")) };
            let message = format!("`{}` needs {list}, e.g. `{}`", short(group), example.of(self.syntax));
            self.fail(at, group, message);
        }
    }

    /// A whole number from `min` to `max`.
    pub fn number(&mut self, value: &Value<P>, key: &str, min: u64, max: u64) -> Option<u64> {
        let name = short(key);
        match value {
            Value::Number(n, at) if *n < i128::from(min) => {
                self.fail(at, key, format!("`{name}` must be at least {min}"));
                None
            }
            Value::Number(n, at) if *n > i128::from(max) => {
                self.fail(at, key, too_large(name, max));
                None
            }
            Value::Number(n, _) => u64::try_from(*n).ok(),
            other => {
                let message = format!("`{name}` takes a whole number, e.g. `{name} = 3`; found {}", other.type_name());
                self.fail(other.at(), key, message);
                None
            }
        }
    }

    /// A whole number that fits a `u32`, from `min`.
    pub fn count(&mut self, value: &Value<P>, key: &str, min: u32) -> Option<u32> {
        self.number(value, key, u64::from(min), u64::from(u32::MAX)).map(|n| n as u32)
    }

    /// A string.
    pub fn string<'v>(&mut self, value: &'v Value<P>, key: &str, example: &str) -> Option<&'v str> {
        self.text(value, key, "a string", example)
    }

    fn text<'v>(&mut self, value: &'v Value<P>, key: &str, what: &str, example: &str) -> Option<&'v str> {
        match value {
            Value::Str(text, _) => Some(text),
            other => {
                let name = short(key);
                let message = format!("`{name}` takes {what}, e.g. `{name} = {example}`; found {}", other.type_name());
                self.fail(other.at(), key, message);
                None
            }
        }
    }

    /// A duration string (`"100ms"`).
    pub fn duration(&mut self, value: &Value<P>, key: &str) -> Option<std::time::Duration> {
        let text = self.text(value, key, "a duration", "\"100ms\"")?;
        match crate::duration::parse_duration(text) {
            Ok(duration) => Some(duration),
            Err(e) => {
                self.fail_inner(value.at(), e.at, key, format!("invalid `{}`: {}", short(key), e.message));
                None
            }
        }
    }

    /// A percentage string (`"50%"`), a whole number from 0 to 100.
    pub fn percent(&mut self, value: &Value<P>, key: &str) -> Option<u32> {
        let text = self.text(value, key, "a percentage", "\"50%\"")?;
        let name = short(key);
        let digits = text.strip_suffix('%');
        match digits.map(str::trim).map(str::parse::<u32>) {
            Some(Ok(n)) if n <= 100 => Some(n),
            Some(Ok(_)) => {
                self.fail(value.at(), key, format!("`{name}` is a percentage, at most \"100%\""));
                None
            }
            _ => {
                let message = match text.parse::<u32>() {
                    Ok(n) => format!("invalid `{name}`: write the share with `%`, e.g. \"{n}%\""),
                    Err(_) => format!("invalid `{name}`: write a whole percentage, e.g. \"50%\""),
                };
                self.fail(value.at(), key, message);
                None
            }
        }
    }

    /// A size string (`"8MiB"`).
    pub fn size(&mut self, value: &Value<P>, key: &str) -> Option<u64> {
        let text = self.text(value, key, "a size", "\"8MiB\"")?;
        match crate::size::parse_size(text) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.fail_inner(value.at(), e.at, key, format!("invalid `{}`: {}", short(key), e.message));
                None
            }
        }
    }

    /// `true` or `false`.
    pub fn switch(&mut self, value: &Value<P>, key: &str) -> Option<bool> {
        match value {
            Value::Bool(b, _) => Some(*b),
            other => {
                let name = short(key);
                self.fail(other.at(), key, format!("`{name}` takes `true` or `false`; found {}", other.type_name()));
                None
            }
        }
    }

    /// The items of a list, or a problem with `example` (in this reader's syntax).
    pub fn list<'v>(&mut self, value: &'v Value<P>, key: &str, example: &Example) -> Option<&'v [Value<P>]> {
        match value {
            Value::List(items, _) => Some(items),
            other => {
                let name = short(key);
                let message =
                    format!("`{name}` takes a list, e.g. `{}`; found {}", example.of(self.syntax), other.type_name());
                self.fail(other.at(), key, message);
                None
            }
        }
    }

    /// The text of a list item written as a word (DSL) or a string (TOML).
    pub fn word<'v>(&mut self, value: &'v Value<P>, key: &str) -> Option<&'v str> {
        match value {
            Value::Word(text, _) | Value::Str(text, _) => Some(text),
            Value::Number(..) => None,
            other => {
                self.fail(other.at(), key, format!("expected a name in `{}`; found {}", short(key), other.type_name()));
                None
            }
        }
    }
}

/// The keys of one table that passed [`Reader::keys`].
#[derive(Debug)]
pub struct Keys<'v, P> {
    /// Known keys, each once, in the order written.
    pub entries: Vec<&'v Entry<P>>,
    /// Keys written (well-formed or not) or most likely meant by an unknown key.
    pub written: Vec<&'static str>,
}

/// An example of a setting in both syntaxes, for messages.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    /// As written in `services!` or an attribute.
    pub dsl: &'static str,
    /// As written in the configuration file.
    pub toml: &'static str,
}

impl Example {
    /// The example in `syntax`.
    pub fn of(&self, syntax: Syntax) -> &'static str {
        match syntax {
            Syntax::Dsl => self.dsl,
            Syntax::Toml => self.toml,
        }
    }
}

/// `group.key`, or `key` at the top level.
pub(crate) fn join(group: &str, key: &str) -> String {
    if group.is_empty() || group.starts_with('#') { key.to_owned() } else { format!("{group}.{key}") }
}

/// The last part of a dotted key.
pub(crate) fn short(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// How a group is named in messages: the top level of a service is "service policies".
fn group_name(group: &str) -> &str {
    if group.is_empty() { "service policies" } else { group }
}

fn too_large(name: &str, max: u64) -> String {
    match name {
        "attempts" => format!("more than {max} attempts multiplies load on a failing service; use at most {max}"),
        "percent" => format!("`percent` is a share of calls, at most {max}"),
        _ => format!("`{name}` must be at most {max}"),
    }
}

/// "unknown key `timout` in `#[call]`; did you mean `timeout`? (expected one of: ..)".
///
/// A key already present is never suggested (it cannot be the one meant).
pub fn unknown_key(name: &str, group: &str, valid: &[&str], present: &[&str]) -> String {
    let near = did_you_mean_excluding(name, valid.iter().copied(), present);
    format!("unknown key `{name}` in `{group}`{near} (expected one of: {})", valid.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    type V = Value<u32>;

    #[test]
    fn numbers_are_checked_against_their_range_with_one_wording() {
        let mut r = Reader::new(Syntax::Dsl);
        assert_eq!(r.number(&V::Number(3, 1), "retry.attempts", 1, 10), Some(3));
        assert_eq!(r.number(&V::Number(0, 2), "retry.attempts", 1, 10), None);
        assert_eq!(r.number(&V::Number(11, 3), "retry.attempts", 1, 10), None);
        assert_eq!(r.number(&V::Number(-4, 4), "max_in_flight", 1, u64::from(u32::MAX)), None);
        assert_eq!(r.number(&V::Str("3".into(), 5), "retry.attempts", 1, 10), None);
        let messages: Vec<(u32, &str)> = r.problems().iter().map(|p| (p.at, p.message.as_str())).collect();
        assert_eq!(
            messages,
            [
                (2, "`attempts` must be at least 1"),
                (3, "more than 10 attempts multiplies load on a failing service; use at most 10"),
                (4, "`max_in_flight` must be at least 1"),
                (5, "`attempts` takes a whole number, e.g. `attempts = 3`; found a string"),
            ]
        );
    }

    #[test]
    fn unknown_and_duplicate_keys_are_reported_once_each_and_never_suggest_a_present_key() {
        let mut r = Reader::new(Syntax::Toml);
        let entries = vec![
            Entry::new("attempts", 1, V::Number(2, 2)),
            Entry::new("attempt", 3, V::Number(2, 4)),
            Entry::new("backof", 5, V::Str("1s".into(), 6)),
            Entry::new("backoff", 7, V::Str("1s".into(), 8)),
            Entry::new("backoff", 9, V::Str("1s".into(), 10)),
        ];
        let keys = r.keys("retry", &entries, &["attempts", "backoff", "max_backoff", "on"]);
        assert_eq!(keys.entries.len(), 2);
        let messages: Vec<&str> = r.problems().iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unknown key `attempt` in `retry` (expected one of: attempts, backoff, max_backoff, on)",
                "unknown key `backof` in `retry` (expected one of: attempts, backoff, max_backoff, on)",
                "duplicate `backoff` in `retry`; remove one of them",
            ]
        );
        assert_eq!(r.problems()[2].note, Some((7, "first `backoff` is here".to_owned())));
    }

    #[test]
    fn durations_point_inside_the_string() {
        let mut r = Reader::new(Syntax::Dsl);
        assert_eq!(r.duration(&V::Str("100 ms".into(), 1), "retry.backoff"), None);
        let problem = &r.problems()[0];
        assert_eq!((problem.inner.clone(), problem.key.as_str()), (Some(3..4), "retry.backoff"));
        assert_eq!(problem.message, "invalid `backoff`: durations have no spaces; write \"100ms\"");
    }
}
