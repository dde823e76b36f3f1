//! Path templates: the downstream paths of `#[call]` and the routes of `#[endpoint]`.
//!
//! A **call template** is a path, optionally followed by `?query`, where `{expr}` placeholders
//! hold Rust expressions: `"/carts/{req.cart_id}"`, `"/search?q={term}&limit=10"`. The value of a
//! placeholder is percent-encoded at run time as one path segment or one query value, so it can
//! never change the path, the query or the host.
//!
//! A **route template** is what axum 0.8 serves: `"/checkout/{cart_id}"`, `"/files/{*rest}"`.
//!
//! ```
//! use orchestrate_core::template::{parse_call_template, Part};
//! let parts = parse_call_template("/carts/{req.cart_id}").unwrap();
//! assert_eq!(parts, vec![Part::Literal(0..7), Part::Value { expr: 8..19, in_query: false }]);
//! ```

use crate::GrammarError;
use std::ops::Range;

/// A piece of a call template, as byte ranges into the template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text sent as written.
    Literal(Range<usize>),
    /// The source text of a `{expr}` placeholder (without the braces).
    Value {
        /// Byte range of the expression text.
        expr: Range<usize>,
        /// Whether the placeholder sits in the query string (after `?`), which changes how the
        /// value is encoded.
        in_query: bool,
    },
}

/// Splits a call template into literal text and placeholders.
///
/// # Errors
///
/// A [`GrammarError`] when the template does not start with `/`, has an unbalanced `{` or `}`, an
/// empty `{}`, braces inside a placeholder, a `#fragment`, or whitespace in literal text.
pub fn parse_call_template(text: &str) -> Result<Vec<Part>, GrammarError> {
    if !text.starts_with('/') {
        return Err(GrammarError::new(
            format!("a downstream path starts with `/`; write \"/{}\"", text.trim_start_matches('/')),
            0..text.len().min(1),
        ));
    }
    let mut parts = Vec::new();
    let mut in_query = false;
    let mut literal_start = 0;
    let mut iter = text.char_indices();
    while let Some((i, c)) = iter.next() {
        match c {
            '{' => {
                if literal_start < i {
                    parts.push(Part::Literal(literal_start..i));
                }
                let expr_start = i + 1;
                let mut end = None;
                for (j, c) in iter.by_ref() {
                    match c {
                        '}' => {
                            end = Some(j);
                            break;
                        }
                        '{' => {
                            return Err(GrammarError::new(
                                "a placeholder cannot contain `{`; compute the value in a `#[compute]` field and name that field here",
                                j..j + 1,
                            ));
                        }
                        _ => {}
                    }
                }
                let Some(end) = end else {
                    return Err(GrammarError::new(
                        "unclosed `{` in path template; close the placeholder with `}`",
                        i..i + 1,
                    ));
                };
                if text[expr_start..end].trim().is_empty() {
                    return Err(GrammarError::new(
                        "empty placeholder `{}`; put the value to send inside, e.g. `{req.cart_id}`",
                        i..end + 1,
                    ));
                }
                parts.push(Part::Value { expr: expr_start..end, in_query });
                literal_start = end + 1;
            }
            '}' => {
                return Err(GrammarError::new(
                    "unmatched `}` in path template; placeholders are written `{expr}`",
                    i..i + 1,
                ));
            }
            '?' if !in_query => in_query = true,
            '#' => {
                return Err(GrammarError::new("a `#fragment` is never sent to a server; remove it", i..text.len()));
            }
            c if c.is_whitespace() => {
                return Err(GrammarError::new(
                    "whitespace in a path template; put values with spaces in a `{placeholder}`, which is percent-encoded",
                    i..i + c.len_utf8(),
                ));
            }
            _ => {}
        }
    }
    if literal_start < text.len() {
        parts.push(Part::Literal(literal_start..text.len()));
    }
    Ok(parts)
}

/// A route parameter of an endpoint path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteParam {
    /// The parameter's name, e.g. `cart_id` in `"/carts/{cart_id}"`.
    pub name: String,
    /// Byte range of the name inside the route.
    pub at: Range<usize>,
    /// `true` for a catch-all `{*rest}`.
    pub catch_all: bool,
}

/// Validates an endpoint route in axum 0.8 syntax and returns its parameters in order.
///
/// ```
/// use orchestrate_core::template::parse_route;
/// let params = parse_route("/users/{user_id}/orders/{order_id}").unwrap();
/// assert_eq!(params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["user_id", "order_id"]);
/// assert!(parse_route("/users/:id").is_err());
/// ```
///
/// # Errors
///
/// A [`GrammarError`] for a route not starting with `/`, a query string, unbalanced or empty
/// braces, a parameter name that is not an identifier, a repeated name, a catch-all that is not
/// the last segment, or the `:param` syntax axum 0.8 no longer accepts.
pub fn parse_route(text: &str) -> Result<Vec<RouteParam>, GrammarError> {
    if !text.starts_with('/') {
        return Err(GrammarError::new(
            format!("a route starts with `/`; write \"/{}\"", text.trim_start_matches('/')),
            0..text.len().min(1),
        ));
    }
    if let Some(q) = text.find(['?', '#']) {
        return Err(GrammarError::new(
            "a route has no query string or fragment; read query values with `#[input(query)]`",
            q..text.len(),
        ));
    }
    let mut params: Vec<RouteParam> = Vec::new();
    let mut offset = 0;
    for segment in text.split('/') {
        let seg_range = offset..offset + segment.len();
        offset += segment.len() + 1;
        if let Some(rest) = segment.strip_prefix(':') {
            return Err(GrammarError::new(
                format!("axum 0.8 writes route parameters in braces; write `{{{rest}}}`"),
                seg_range,
            ));
        }
        if segment.starts_with('*') {
            return Err(GrammarError::new(format!("a catch-all is written `{{{segment}}}`"), seg_range));
        }
        let open = segment.find('{');
        let close = segment.find('}');
        match (open, close) {
            (None, None) => continue,
            (Some(o), None) => {
                return Err(GrammarError::new(
                    "unclosed `{` in route; close the parameter with `}`",
                    seg_range.start + o..seg_range.start + o + 1,
                ));
            }
            (None, Some(c)) => {
                return Err(GrammarError::new(
                    "unmatched `}` in route; parameters are written `{name}`",
                    seg_range.start + c..seg_range.start + c + 1,
                ));
            }
            (Some(o), Some(c)) if c < o => {
                return Err(GrammarError::new(
                    "unmatched `}` in route; parameters are written `{name}`",
                    seg_range.start + c..seg_range.start + c + 1,
                ));
            }
            (Some(o), Some(c)) => {
                if o != 0 || c != segment.len() - 1 {
                    return Err(GrammarError::new(
                        "a route parameter must be a whole path segment, like `/carts/{cart_id}`",
                        seg_range,
                    ));
                }
                let inner = &segment[1..segment.len() - 1];
                let (name, catch_all) = match inner.strip_prefix('*') {
                    Some(name) => (name, true),
                    None => (inner, false),
                };
                let name_start = seg_range.start + 1 + usize::from(catch_all);
                let at = name_start..name_start + name.len();
                if name.is_empty() {
                    return Err(GrammarError::new("empty route parameter `{}`; name it, e.g. `{cart_id}`", seg_range));
                }
                if !is_identifier(name) {
                    return Err(GrammarError::new(
                        format!(
                            "route parameter `{name}` is not a Rust identifier; name it like a field, e.g. `{{cart_id}}`"
                        ),
                        at,
                    ));
                }
                if params.iter().any(|p| p.name == name) {
                    return Err(GrammarError::new(format!("route parameter `{name}` appears twice"), at));
                }
                if params.last().is_some_and(|p| p.catch_all) {
                    return Err(GrammarError::new("a catch-all `{*..}` must be the last segment", at));
                }
                params.push(RouteParam { name: name.to_owned(), at, catch_all });
            }
        }
    }
    if let Some(p) = params.iter().rev().skip(1).find(|p| p.catch_all) {
        return Err(GrammarError::new("a catch-all `{*..}` must be the last segment", p.at.clone()));
    }
    Ok(params)
}

/// Whether `name` is a plain Rust identifier (ASCII letters, digits, `_`; not starting with a digit).
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && name != "_"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slices<'a>(text: &'a str, parts: &[Part]) -> Vec<(&'a str, bool)> {
        parts
            .iter()
            .map(|p| match p {
                Part::Literal(r) => (&text[r.clone()], false),
                Part::Value { expr, .. } => (&text[expr.clone()], true),
            })
            .collect()
    }

    #[test]
    fn splits_literals_and_placeholders() {
        let t = "/carts/{req.cart_id}/items/{item.sku}";
        let parts = parse_call_template(t).unwrap();
        assert_eq!(
            slices(t, &parts),
            [("/carts/", false), ("req.cart_id", true), ("/items/", false), ("item.sku", true)]
        );
    }

    #[test]
    fn marks_placeholders_in_the_query() {
        let t = "/search/{kind}?q={term}&limit=10";
        let parts = parse_call_template(t).unwrap();
        let in_query: Vec<bool> = parts
            .iter()
            .filter_map(|p| match p {
                Part::Value { in_query, .. } => Some(*in_query),
                Part::Literal(_) => None,
            })
            .collect();
        assert_eq!(in_query, [false, true]);
        assert_eq!(parts.last(), Some(&Part::Literal(23..32)));
    }

    #[test]
    fn rejects_bad_call_templates_at_the_mistake() {
        assert_eq!(parse_call_template("/carts/{id").unwrap_err().at, 7..8);
        assert_eq!(parse_call_template("/carts/id}").unwrap_err().at, 9..10);
        assert_eq!(parse_call_template("/carts/{}").unwrap_err().at, 7..9);
        assert!(parse_call_template("/carts/{ }").unwrap_err().message.contains("empty placeholder"));
        assert!(parse_call_template("/a/{x{y}}").unwrap_err().message.contains("cannot contain"));
        assert!(parse_call_template("carts").unwrap_err().message.contains("starts with `/`"));
        assert!(parse_call_template("/a#b").unwrap_err().message.contains("fragment"));
        assert!(parse_call_template("/a b").unwrap_err().message.contains("whitespace"));
    }

    #[test]
    fn parses_routes() {
        assert!(parse_route("/checkout/summary").unwrap().is_empty());
        let p = parse_route("/files/{*rest}").unwrap();
        assert!(p[0].catch_all);
        assert_eq!(p[0].name, "rest");
        assert_eq!(&"/files/{*rest}"[p[0].at.clone()], "rest");
    }

    #[test]
    fn rejects_bad_routes() {
        assert!(parse_route("/users/:id").unwrap_err().message.contains("`{id}`"));
        assert!(parse_route("/users/{id").unwrap_err().message.contains("unclosed"));
        assert!(parse_route("/users/id}").unwrap_err().message.contains("unmatched"));
        assert!(parse_route("/users/{}").unwrap_err().message.contains("empty"));
        assert!(parse_route("/users/{1d}").unwrap_err().message.contains("identifier"));
        assert!(parse_route("/users/{id}/{id}").unwrap_err().message.contains("twice"));
        assert!(parse_route("/users/x{id}").unwrap_err().message.contains("whole path segment"));
        assert!(parse_route("/a/{*rest}/b/{c}").unwrap_err().message.contains("last segment"));
        assert!(parse_route("/a?x=1").unwrap_err().message.contains("query"));
        assert!(parse_route("users").unwrap_err().message.contains("starts with"));
    }
}
