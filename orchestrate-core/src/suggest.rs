//! "Did you mean" suggestions for misspelled names, shared by the start-up configuration and
//! the macros.
//!
//! ```
//! use orchestrate_core::suggest::closest;
//! assert_eq!(closest("carts", ["cart", "pricing"]), Some("cart"));
//! assert_eq!(closest("inventory", ["cart", "pricing"]), None);
//! ```

/// The candidate closest to `name` by edit distance, if it is within a third of `name`'s length
/// (rounded up), i.e. a likely typo.
///
/// ```
/// assert_eq!(orchestrate_core::suggest::closest("max_in_flite", ["max_in_flight", "max_body"]), Some("max_in_flight"));
/// ```
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = name.chars().count().div_ceil(3);
    candidates
        .into_iter()
        .map(|c| (distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `"; did you mean `x`?"`, or an empty string when nothing is close.
///
/// ```
/// assert_eq!(orchestrate_core::suggest::did_you_mean("taxes", ["tax"]), "; did you mean `tax`?");
/// ```
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default()
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names_only() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(closest("pricng", ["cart", "pricing"]), Some("pricing"));
        assert_eq!(did_you_mean("xyz", ["cart"]), "");
    }
}
