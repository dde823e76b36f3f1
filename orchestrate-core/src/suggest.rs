//! "Did you mean" suggestions for misspelled names, shared by the start-up configuration and
//! the macros.
//!
//! Candidates are ranked by an edit distance in which a transposed pair of letters (`requried`)
//! counts as one edit, like a missing, doubled or wrong letter (the optimal string alignment
//! distance), then by the length of the prefix they share with the name: typos happen late in a
//! word more often than at its start.
//!
//! ```
//! use orchestrate_core::suggest::closest;
//! assert_eq!(closest("carts", ["cart", "pricing"]), Some("cart"));
//! assert_eq!(closest("requried", ["required", "retry"]), Some("required"));
//! assert_eq!(closest("inventory", ["cart", "pricing"]), None);
//! ```

/// The candidate closest to `name`, if it is within a third of `name`'s length (rounded up) in
/// edits, i.e. a likely typo.
///
/// ```
/// assert_eq!(orchestrate_core::suggest::closest("max_in_flite", ["max_in_flight", "max_body"]), Some("max_in_flight"));
/// ```
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    closest_excluding(name, candidates, &[])
}

/// Like [`closest`], never suggesting one of `present` (a key that is already written: the user
/// cannot have meant to write it twice).
///
/// ```
/// use orchestrate_core::suggest::closest_excluding;
/// assert_eq!(closest_excluding("attempt", ["attempts", "backoff"], &["attempts"]), None);
/// ```
pub fn closest_excluding<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    present: &[&str],
) -> Option<&'a str> {
    let limit = name.chars().count().div_ceil(3);
    let mut best: Option<(usize, usize, &'a str)> = None;
    for candidate in candidates {
        if present.contains(&candidate) || candidate == name {
            continue;
        }
        let d = distance(name, candidate);
        if d > limit {
            continue;
        }
        let prefix = shared_prefix(name, candidate);
        let better = match best {
            None => true,
            Some((bd, bp, _)) => d < bd || (d == bd && prefix > bp),
        };
        if better {
            best = Some((d, prefix, candidate));
        }
    }
    best.map(|(_, _, c)| c)
}

/// `"; did you mean `x`?"`, or an empty string when nothing is close.
///
/// ```
/// assert_eq!(orchestrate_core::suggest::did_you_mean("taxes", ["tax"]), "; did you mean `tax`?");
/// ```
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean_excluding(name, candidates, &[])
}

/// [`did_you_mean`] without suggesting one of `present`.
///
/// ```
/// use orchestrate_core::suggest::did_you_mean_excluding;
/// assert_eq!(did_you_mean_excluding("timout", ["timeout", "service"], &[]), "; did you mean `timeout`?");
/// assert_eq!(did_you_mean_excluding("timout", ["timeout", "service"], &["timeout"]), "");
/// ```
pub fn did_you_mean_excluding<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    present: &[&str],
) -> String {
    closest_excluding(name, candidates, present).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default()
}

fn shared_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

/// Optimal string alignment distance: insertions, deletions, substitutions and transpositions
/// of adjacent characters each cost one.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best =
                (d[(i - 1) * width + j] + 1).min(d[i * width + j - 1] + 1).min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL_KEYS: &[&str] = &[
        "service",
        "timeout",
        "required",
        "get",
        "post",
        "with",
        "body",
        "query",
        "headers",
        "when",
        "fallback",
        "idempotency_key",
        "idempotent",
        "after",
        "retry",
    ];

    #[test]
    fn a_transposition_or_a_doubled_letter_is_one_edit() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("requried", "required"), 1);
        assert_eq!(distance("timeoout", "timeout"), 1);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn common_typos_of_call_keys_find_the_key_meant() {
        for (typo, meant) in [
            ("timout", "timeout"),
            ("requried", "required"),
            ("fallbak", "fallback"),
            ("servce", "service"),
            ("idempotnet", "idempotent"),
            ("retyr", "retry"),
            ("header", "headers"),
        ] {
            assert_eq!(closest(typo, CALL_KEYS.iter().copied()), Some(meant), "{typo}");
        }
        assert_eq!(did_you_mean("xyz", ["cart"]), "");
    }

    #[test]
    fn a_shared_prefix_breaks_ties_and_present_keys_are_never_suggested() {
        // `cart` is one edit from both: the one sharing its start wins, whatever the order.
        assert_eq!(closest("cart", ["dart", "carts"]), Some("carts"));
        assert_eq!(closest("cart", ["carts", "dart"]), Some("carts"));
        assert_eq!(closest_excluding("timout", CALL_KEYS.iter().copied(), &["timeout"]), None);
    }
}
