//! An endpoint's call sequence and dependency graph as documentation: the design template's "Call
//! sequence" table (Markdown) and a Mermaid graph.
//!
//! One implementation for both places the documentation appears: `#[endpoint]` appends it to the
//! struct's rustdoc (from its model, at compile time) and the runtime serves it at `/_orchestrate`
//! (from the endpoint's static spec), so the two cannot drift apart.
//!
//! **Order** is a call's stage: the number of calls on its longest dependency chain, itself
//! included (computed fields add nothing). Calls of one stage are marked "(parallel)". Execution
//! has no stage barriers: a call starts the moment the calls it uses have answered.
//!
//! ```
//! use orchestrate_core::sequence::{Call, Kind, Node, Retries, Target, call_table};
//! let call = |service, path, deps| Node {
//!     name: service,
//!     deps,
//!     kind: Kind::Call(Call {
//!         service,
//!         target: Target::Http { method: "GET", path },
//!         required: true,
//!         timeout_ms: 200,
//!         retries: Retries::Service,
//!         fallback: None,
//!         when: None,
//!         for_each: None,
//!         cache: None,
//!         side_effect: false,
//!         compensation: None,
//!         hedge: None,
//!     }),
//! };
//! let nodes = [call("user", "/users/{id}", &[]), call("orders", "/orders?user={id}", &[0])];
//! assert_eq!(
//!     call_table(&nodes),
//!     "| Order | Service call | Required? | Timeout | Retries | Fallback |\n\
//!      |---|---|---|---|---|---|\n\
//!      | 1 | User: `GET /users/{id}` | Yes | 200ms | service policy | Fail request |\n\
//!      | 2 | Orders: `GET /orders?user={id}` | Yes | 200ms | service policy | Fail request |\n"
//! );
//! ```

use std::fmt::Write as _;

/// One node of an endpoint's graph: a downstream call or a computed field.
///
/// ```
/// use orchestrate_core::sequence::{Kind, Node};
/// // `total = pricing.subtotal + tax.amount`, using nodes 2 and 4 of the same list.
/// let total = Node { name: "total", deps: &[2, 4], kind: Kind::Compute("pricing.subtotal + tax.amount") };
/// assert_eq!(total.deps, [2, 4]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node<'a> {
    /// The field's name.
    pub name: &'a str,
    /// Positions (in the same node list) of the nodes this one uses.
    pub deps: &'a [usize],
    /// What the node does.
    pub kind: Kind<'a>,
}

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    /// A downstream call.
    Call(Call<'a>),
    /// A value computed from other fields, with its expression as written.
    Compute(&'a str),
}

/// A downstream call as the table shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    /// The service's name in `services!`.
    pub service: &'a str,
    /// The request, or the custom logic.
    pub target: Target<'a>,
    /// Whether a failure fails the whole request.
    pub required: bool,
    /// Per-attempt timeout in milliseconds.
    pub timeout_ms: u64,
    /// How the call is retried.
    pub retries: Retries,
    /// The `fallback` expression of an optional call.
    pub fallback: Option<&'a str>,
    /// The `when` condition.
    pub when: Option<&'a str>,
    /// Fan-out: the collection expression and the concurrency bound.
    pub for_each: Option<(&'a str, u32)>,
    /// How its answers are cached, if they are.
    pub cache: Option<crate::policy::CachePolicy>,
    /// Whether the call changes something downstream: a request other than GET not marked
    /// `idempotent` (which says it only computes).
    pub side_effect: bool,
    /// What undoes it when a later required step fails: method and path, e.g.
    /// `("POST", "/charges/{payment.id}/refund")`.
    pub compensation: Option<(&'a str, &'a str)>,
    /// When a hedge of each attempt is sent (`hedge(after = "50ms")`), if the call is hedged.
    pub hedge: Option<&'a crate::policy::HedgePolicy>,
}

/// How a call reaches its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// A request: upper-case method and path template as written.
    Http {
        /// `"GET"`, `"POST"`, ...
        method: &'a str,
        /// `"/carts/{req.cart_id}"`
        path: &'a str,
    },
    /// `with = some::async_fn(..)`, the expression as written.
    With(&'a str),
}

/// The retries of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retries {
    /// The call's own `retry(..)`.
    Call {
        /// Attempts including the first.
        attempts: u32,
        /// First backoff in milliseconds.
        backoff_ms: u64,
    },
    /// The service's retry policy, not known where the table is written (`#[endpoint]` cannot
    /// see `services!`).
    Service,
    /// The service's retry policy, as configured at start-up.
    ServiceResolved {
        /// Attempts including the first.
        attempts: u32,
        /// First backoff in milliseconds.
        backoff_ms: u64,
    },
    /// Never retried: repeating the call is not known to be safe.
    NotIdempotent,
}

impl Retries {
    /// The table's text, e.g. `"3 attempts, 100ms backoff"` or `"none (not idempotent)"`.
    ///
    /// ```
    /// use orchestrate_core::sequence::Retries;
    /// assert_eq!(Retries::Call { attempts: 3, backoff_ms: 100 }.text(), "3 attempts, 100ms backoff");
    /// assert_eq!(Retries::ServiceResolved { attempts: 1, backoff_ms: 0 }.text(), "none (service policy)");
    /// ```
    pub fn text(&self) -> String {
        fn attempts(attempts: u32, backoff_ms: u64) -> String {
            if attempts <= 1 { "none".to_owned() } else { format!("{attempts} attempts, {backoff_ms}ms backoff") }
        }
        match *self {
            Self::Call { attempts: n, backoff_ms } => attempts(n, backoff_ms),
            Self::Service => "service policy".to_owned(),
            Self::ServiceResolved { attempts: n, backoff_ms } => {
                format!("{} (service policy)", attempts(n, backoff_ms))
            }
            Self::NotIdempotent => "none (not idempotent)".to_owned(),
        }
    }
}

/// What an endpoint answers when a call fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// A required call: the request fails (502/504).
    FailRequest,
    /// An optional `Option<T>` call: `null`.
    Null,
    /// An optional call's `fallback` expression.
    Value(String),
}

/// One row of the call sequence table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Position of the call in the node list.
    pub node: usize,
    /// Calls on the longest dependency chain ending at this one (1 for a call that uses no other
    /// call).
    pub stage: usize,
    /// Whether other calls share the stage.
    pub parallel: bool,
    /// The field's name.
    pub field: String,
    /// The service's name.
    pub service: String,
    /// `"GET /carts/{req.cart_id}"` or `"with some::fn(&cart)"`.
    pub request: String,
    /// The `when` condition.
    pub when: Option<String>,
    /// Fan-out: the collection expression and the concurrency bound.
    pub for_each: Option<(String, u32)>,
    /// Whether a failure fails the whole request.
    pub required: bool,
    /// Per-attempt timeout in milliseconds.
    pub timeout_ms: u64,
    /// The retries, as the table writes them.
    pub retries: String,
    /// What a failure gives.
    pub fallback: Fallback,
    /// How its answers are cached, if they are.
    pub cache: Option<crate::policy::CachePolicy>,
    /// What undoes the call if the request fails after it.
    pub compensation: Compensation,
}

/// The "Compensation" column of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compensation {
    /// Nothing to undo: no side effect, or no required step can fail after it.
    NotNeeded,
    /// The compensation's request, e.g. `"POST /charges/{payment.id}/refund"`.
    Request(String),
    /// A side effect that a later required step's failure would leave in place.
    Missing,
}

/// The side-effecting calls without a compensation after which a required call can fail, each
/// with the first such call: `(call, later)` by node position. A required call can fail after
/// `call` committed unless it is one of the calls `call` waits for (directly or not).
///
/// ```
/// use orchestrate_core::sequence::{Call, Kind, Node, Retries, Target, uncompensated};
/// let call = |method, required, side_effect| Kind::Call(Call {
///     service: "s", target: Target::Http { method, path: "/" }, required, timeout_ms: 100,
///     retries: Retries::Service, fallback: None, when: None, for_each: None, cache: None,
///     side_effect, compensation: None, hedge: None,
/// });
/// // reserve (POST) → charge (POST, required): charge can fail after reserve; not the reverse.
/// let nodes = [
///     Node { name: "reserve", deps: &[], kind: call("POST", true, true) },
///     Node { name: "charge", deps: &[0], kind: call("POST", true, true) },
/// ];
/// assert_eq!(uncompensated(&nodes), [(0, 1)]);
/// ```
pub fn uncompensated(nodes: &[Node<'_>]) -> Vec<(usize, usize)> {
    let n = nodes.len();
    // Transitive closure by rounds: endpoints have at most 64 nodes.
    // before[i]: every node `i` waits for, directly or not.
    let mut before: Vec<Vec<bool>> = vec![vec![false; n]; n];
    for _ in 0..n {
        let mut changed = false;
        for i in 0..n {
            for &d in nodes[i].deps.iter().filter(|&&d| d < n) {
                let inherited: Vec<usize> = (0..n).filter(|&k| before[d][k]).collect();
                for k in std::iter::once(d).chain(inherited) {
                    if !before[i][k] {
                        before[i][k] = true;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut out = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let Kind::Call(call) = &node.kind else { continue };
        if !call.side_effect || call.compensation.is_some() {
            continue;
        }
        let later = nodes
            .iter()
            .enumerate()
            .position(|(j, other)| j != i && !before[i][j] && matches!(&other.kind, Kind::Call(c) if c.required));
        if let Some(j) = later {
            out.push((i, j));
        }
    }
    out
}

impl Row {
    /// The Order column: `"2 (parallel)"`.
    pub fn order(&self) -> String {
        if self.parallel { format!("{} (parallel)", self.stage) } else { self.stage.to_string() }
    }

    /// The service as the template titles it: `"Cart"` for `cart` (see [`rows`] for an example).
    pub fn service_title(&self) -> String {
        let mut chars = self.service.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        }
    }
}

/// For each node, the number of nodes on its longest dependency chain before it (0 for a node
/// that uses nothing): the column of a layered drawing of the graph.
///
/// Dependencies that point at no node, or around a cycle, are ignored after `nodes.len()` rounds.
///
/// ```
/// use orchestrate_core::sequence::{Kind, Node, layers};
/// let node = |name, deps| Node { name, deps, kind: Kind::Compute("..") };
/// // a → b → c, and a → c directly: c is two steps from a.
/// assert_eq!(layers(&[node("a", &[]), node("b", &[0]), node("c", &[0, 1])]), [0, 1, 2]);
/// ```
pub fn layers(nodes: &[Node<'_>]) -> Vec<usize> {
    longest(nodes, |_| 1).into_iter().map(|(before, _)| before).collect()
}

/// For each node, `(longest chain before it, longest chain including it)` with each node weighing
/// `weight(node)`.
fn longest(nodes: &[Node<'_>], weight: impl Fn(&Node<'_>) -> usize) -> Vec<(usize, usize)> {
    let mut depth = vec![(0, 0); nodes.len()];
    // Specs list nodes in topological order, so one round suffices; more rounds keep hand-written
    // specs in any order right.
    for _ in 0..nodes.len().max(1) {
        let mut changed = false;
        for (i, node) in nodes.iter().enumerate() {
            let before = node.deps.iter().filter_map(|&d| depth.get(d).map(|&(_, with)| with)).max().unwrap_or(0);
            let next = (before, before + weight(node));
            if depth[i] != next {
                depth[i] = next;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

/// The rows of the call sequence table: calls by stage, then in the nodes' order.
///
/// ```
/// use orchestrate_core::sequence::{Call, Fallback, Kind, Node, Retries, Target, rows};
/// let call = |service, required| Kind::Call(Call {
///     service, target: Target::Http { method: "GET", path: "/" }, required, timeout_ms: 100,
///     retries: Retries::Service, fallback: None, when: None, for_each: None, cache: None,
///     side_effect: false, compensation: None, hedge: None,
/// });
/// let nodes = [
///     Node { name: "user", deps: &[], kind: call("users", true) },
///     Node { name: "prefs", deps: &[], kind: call("preferences", false) },
///     Node { name: "recs", deps: &[0], kind: call("recommendations", false) },
/// ];
/// let rows = rows(&nodes);
/// assert_eq!(rows.iter().map(|r| r.order()).collect::<Vec<_>>(), ["1 (parallel)", "1 (parallel)", "2"]);
/// assert_eq!((rows[1].fallback.clone(), rows[1].service_title()), (Fallback::Null, "Preferences".to_owned()));
/// ```
pub fn rows(nodes: &[Node<'_>]) -> Vec<Row> {
    let depth = longest(nodes, |node| usize::from(matches!(node.kind, Kind::Call(_))));
    let missing: Vec<usize> = uncompensated(nodes).into_iter().map(|(i, _)| i).collect();
    let mut rows: Vec<Row> = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, node)| {
            let Kind::Call(call) = &node.kind else { return None };
            Some(Row {
                node: i,
                stage: depth[i].1,
                parallel: false,
                field: node.name.to_owned(),
                service: call.service.to_owned(),
                request: match call.target {
                    Target::Http { method, path } => format!("{method} {path}"),
                    Target::With(expr) => format!("with {expr}"),
                },
                when: call.when.map(str::to_owned),
                for_each: call.for_each.map(|(collection, n)| (collection.to_owned(), n)),
                required: call.required,
                timeout_ms: call.timeout_ms,
                retries: match call.hedge {
                    Some(hedge) => format!("{}; hedged after {}ms", call.retries.text(), hedge.after.as_millis()),
                    None => call.retries.text(),
                },
                fallback: match (call.required, call.fallback) {
                    (true, _) => Fallback::FailRequest,
                    (false, Some(expr)) => Fallback::Value(expr.to_owned()),
                    (false, None) => Fallback::Null,
                },
                cache: call.cache,
                compensation: match call.compensation {
                    Some((method, path)) => Compensation::Request(format!("{method} {path}")),
                    None if missing.contains(&i) => Compensation::Missing,
                    None => Compensation::NotNeeded,
                },
            })
        })
        .collect();
    rows.sort_by_key(|row| (row.stage, row.node));
    let stages: Vec<usize> = rows.iter().map(|row| row.stage).collect();
    for row in &mut rows {
        row.parallel = stages.iter().filter(|&&s| s == row.stage).count() > 1;
    }
    rows
}

/// The design template's "Call sequence" table in Markdown (GitHub tables, as rustdoc renders
/// them). Everything taken from code is in code spans, with `|` escaped.
pub fn call_table(nodes: &[Node<'_>]) -> String {
    let rows = rows(nodes);
    // The design template's "Cache TTL", as a column when some call is cached.
    let cached = rows.iter().any(|row| row.cache.is_some());
    // "Compensation", as a column when some call is compensated: the endpoint undoes side
    // effects, and the column shows which it would leave in place.
    let compensated = rows.iter().any(|row| matches!(row.compensation, Compensation::Request(_)));
    let mut out = String::from("| Order | Service call | Required? | Timeout | Retries | Fallback |");
    let mut columns = 6;
    if cached {
        out.push_str(" Cache TTL |");
        columns += 1;
    }
    if compensated {
        out.push_str(" Compensation |");
        columns += 1;
    }
    out.push('\n');
    out.push('|');
    out.push_str(&"---|".repeat(columns));
    out.push('\n');
    for row in rows {
        let mut call = format!("{}: {}", text(&row.service_title()), code(&row.request));
        if let Some((collection, concurrency)) = &row.for_each {
            let _ = write!(call, ", for each item of {} ({concurrency} at a time)", code(collection));
        }
        if let Some(when) = &row.when {
            let _ = write!(call, ", only when {}", code(when));
        }
        let fallback = match &row.fallback {
            Fallback::FailRequest => "Fail request".to_owned(),
            Fallback::Null => "`null`".to_owned(),
            Fallback::Value(expr) => code(expr),
        };
        let _ = write!(
            out,
            "| {} | {call} | {} | {}ms | {} | {fallback} |",
            row.order(),
            if row.required { "Yes" } else { "No" },
            row.timeout_ms,
            row.retries,
        );
        if cached {
            let ttl = row.cache.map_or_else(|| "No cache".to_owned(), |c| c.describe());
            let _ = write!(out, " {ttl} |");
        }
        if compensated {
            let cell = match &row.compensation {
                Compensation::Request(request) => code(request),
                Compensation::Missing => crate::policy::saga::NOT_COMPENSATED.to_owned(),
                Compensation::NotNeeded => "–".to_owned(),
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out
}

/// A Mermaid flowchart of the graph, left to right: one box per call (field, then service and
/// request; dashed when optional), one rounded box per computed field, an arrow from each node to
/// every node that uses it.
///
/// ```
/// use orchestrate_core::sequence::{Kind, Node, mermaid};
/// let nodes = [Node { name: "a", deps: &[], kind: Kind::Compute("1") }, Node { name: "b", deps: &[0], kind: Kind::Compute("a + 1") }];
/// assert_eq!(mermaid(&nodes), "flowchart LR\nn0([\"a = 1\"])\nn1([\"b = a + 1\"])\nn0 --> n1\n");
/// ```
pub fn mermaid(nodes: &[Node<'_>]) -> String {
    let mut out = String::from("flowchart LR\n");
    let mut optional = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        match &node.kind {
            Kind::Call(call) => {
                let request = match call.target {
                    Target::Http { method, path } => format!("{method} {path}"),
                    Target::With(expr) => format!("with {expr}"),
                };
                let label = format!(
                    "{}<br/>{}: {}",
                    mermaid_text(node.name),
                    mermaid_text(call.service),
                    mermaid_text(&request)
                );
                let _ = writeln!(out, "n{i}[\"{label}\"]");
                if !call.required {
                    optional.push(format!("n{i}"));
                }
            }
            Kind::Compute(expr) => {
                let _ = writeln!(out, "n{i}([\"{} = {}\"])", mermaid_text(node.name), mermaid_text(expr));
            }
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        for &d in node.deps.iter().filter(|&&d| d < nodes.len()) {
            let _ = writeln!(out, "n{d} --> n{i}");
        }
    }
    if !optional.is_empty() {
        let _ = writeln!(out, "classDef optional stroke-dasharray: 5 5\nclass {} optional", optional.join(","));
    }
    out
}

/// The documentation `#[endpoint]` appends to an endpoint's rustdoc and `/_orchestrate` shows:
/// a "Call sequence" section with the table and a "Dependency graph" section with the Mermaid
/// graph in a fenced `mermaid` block.
///
/// ```
/// use orchestrate_core::sequence::{Kind, Node, endpoint_doc};
/// let doc = endpoint_doc(500, &[Node { name: "now", deps: &[], kind: Kind::Compute("0") }]);
/// assert!(doc.starts_with("# Call sequence\n\nGenerated by `#[endpoint]`; total timeout: 500ms. No downstream calls."));
/// assert!(doc.ends_with("# Dependency graph\n\n```mermaid\nflowchart LR\nn0([\"now = 0\"])\n```\n"));
/// ```
pub fn endpoint_doc(timeout_ms: u64, nodes: &[Node<'_>]) -> String {
    endpoint_doc_cached(timeout_ms, None, nodes)
}

/// [`endpoint_doc`] for an endpoint whose assembled answers are cached as `cache` says.
///
/// ```
/// use orchestrate_core::policy::CachePolicy;
/// use orchestrate_core::sequence::endpoint_doc_cached;
/// use std::time::Duration;
/// let doc = endpoint_doc_cached(2000, Some(CachePolicy::new(Duration::from_secs(60), Duration::ZERO)), &[]);
/// assert!(doc.contains("Cache TTL of the whole answer: 1m."), "{doc}");
/// ```
pub fn endpoint_doc_cached(timeout_ms: u64, cache: Option<crate::policy::CachePolicy>, nodes: &[Node<'_>]) -> String {
    let mut out = String::from("# Call sequence\n\n");
    if let Some(cache) = cache {
        let _ = writeln!(out, "Cache TTL of the whole answer: {}.\n", cache.describe());
    }
    if nodes.iter().any(|n| matches!(n.kind, Kind::Call(_))) {
        let _ = write!(
            out,
            "Generated by `#[endpoint]`; total timeout: {timeout_ms}ms. Order counts the calls on a call's \
             longest dependency chain; a call starts as soon as the calls it uses have answered.\n\n{}",
            call_table(nodes)
        );
    } else {
        let _ = writeln!(out, "Generated by `#[endpoint]`; total timeout: {timeout_ms}ms. No downstream calls.");
    }
    let _ = write!(out, "\n# Dependency graph\n\n```mermaid\n{}```\n", mermaid(nodes));
    out
}

/// A code span of `text` that stays one table cell: `|` escaped, backticks fenced by longer runs.
fn code(text: &str) -> String {
    let text = text.replace('|', "\\|").replace(['\n', '\r'], " ");
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if longest == 0 { format!("{fence}{text}{fence}") } else { format!("{fence} {text} {fence}") }
}

/// Plain Markdown text: punctuation that Markdown or HTML would interpret is backslash-escaped.
fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '&' | '!') {
            out.push('\\');
        }
        out.push(if c == '\n' { ' ' } else { c });
    }
    out
}

/// Text inside a quoted Mermaid label: quotes and markup as Mermaid entity codes.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(service: &'static str, method: &'static str, path: &'static str, required: bool) -> Kind<'static> {
        Kind::Call(Call {
            service,
            target: Target::Http { method, path },
            required,
            timeout_ms: 100,
            retries: if method == "GET" { Retries::Service } else { Retries::NotIdempotent },
            fallback: None,
            when: None,
            for_each: None,
            cache: None,
            side_effect: method != "GET",
            compensation: None,
            hedge: None,
        })
    }

    /// The checkout graph: cart → {inventory, pricing, shipping} → tax; computed fields on top.
    fn checkout() -> Vec<Node<'static>> {
        vec![
            Node { name: "cart", deps: &[], kind: call("cart", "GET", "/carts/{req.cart_id}", true) },
            Node { name: "availability", deps: &[0], kind: call("inventory", "POST", "/check-availability", true) },
            Node { name: "pricing", deps: &[0], kind: call("pricing", "POST", "/calculate", true) },
            Node { name: "shipping", deps: &[0], kind: call("shipping", "POST", "/estimate", false) },
            Node { name: "tax", deps: &[0, 2], kind: call("tax", "POST", "/calculate", true) },
            Node { name: "total", deps: &[2, 4], kind: Kind::Compute("pricing.subtotal + tax.amount") },
            Node { name: "availability_confirmed", deps: &[1], kind: Kind::Compute("availability.available") },
        ]
    }

    #[test]
    fn stages_count_calls_on_the_longest_chain_and_mark_parallel_ones() {
        let rows = rows(&checkout());
        let orders: Vec<(String, String)> = rows.iter().map(|r| (r.field.clone(), r.order())).collect();
        let expected = [
            ("cart", "1"),
            ("availability", "2 (parallel)"),
            ("pricing", "2 (parallel)"),
            ("shipping", "2 (parallel)"),
            ("tax", "3"),
        ];
        assert_eq!(orders, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
        assert_eq!(layers(&checkout()), vec![0, 1, 1, 1, 2, 3, 2]);
    }

    #[test]
    fn computed_fields_between_calls_add_no_stage() {
        let nodes = [
            Node { name: "a", deps: &[], kind: call("a", "GET", "/a", true) },
            Node { name: "id", deps: &[0], kind: Kind::Compute("a.id") },
            Node { name: "b", deps: &[1], kind: call("b", "GET", "/b/{id}", true) },
        ];
        assert_eq!(rows(&nodes).iter().map(Row::order).collect::<Vec<_>>(), ["1", "2"]);
    }

    #[test]
    fn a_compensated_endpoint_shows_what_undoes_each_side_effect_and_what_nothing_would() {
        let with = |compensation, side_effect, required| {
            let Kind::Call(mut call) = call("s", "POST", "/x", required) else { unreachable!() };
            call.compensation = compensation;
            call.side_effect = side_effect;
            Kind::Call(call)
        };
        let nodes = [
            Node { name: "quote", deps: &[], kind: with(None, false, true) },
            Node { name: "reserve", deps: &[0], kind: with(None, true, true) },
            Node { name: "charge", deps: &[1], kind: with(Some(("POST", "/charges/{charge.id}/refund")), true, true) },
            Node { name: "ship", deps: &[2], kind: with(None, true, true) },
        ];
        // `reserve` stays in place when `charge` or `ship` fails; nothing can fail after `ship`.
        assert_eq!(uncompensated(&nodes), [(1, 2)]);
        let table = call_table(&nodes);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].ends_with("| Fallback | Compensation |"), "{table}");
        assert_eq!(lines[1], "|---|---|---|---|---|---|---|");
        assert!(lines[2].ends_with("| – |"), "{table}");
        assert!(lines[3].ends_with("| **none** |"), "{table}");
        assert!(lines[4].ends_with("| `POST /charges/{charge.id}/refund` |"), "{table}");
        assert!(lines[5].ends_with("| – |"), "{table}");
        // Without any compensation, the table keeps its six columns.
        assert!(!call_table(&checkout()).contains("Compensation"));
    }

    #[test]
    fn cells_stay_cells_and_labels_stay_labels() {
        let nodes = [Node {
            name: "x",
            deps: &[7],
            kind: Kind::Call(Call {
                service: "odd_name",
                target: Target::With("f(|a| a || `b`)"),
                required: false,
                timeout_ms: 5,
                retries: Retries::Call { attempts: 2, backoff_ms: 10 },
                fallback: Some("Vec::<u8>::new()"),
                when: Some("a | b"),
                for_each: Some(("cart.items", 4)),
                cache: None,
                side_effect: false,
                compensation: None,
                hedge: Some(&crate::policy::HedgePolicy::new(std::time::Duration::from_millis(40))),
            }),
        }];
        let table = call_table(&nodes);
        let row = table.lines().nth(2).unwrap();
        assert_eq!(
            row,
            "| 1 | Odd\\_name: `` with f(\\|a\\| a \\|\\| `b`) ``, for each item of `cart.items` (4 at a time), \
             only when `a \\| b` | No | 5ms | 2 attempts, 10ms backoff; hedged after 40ms | `Vec::<u8>::new()` |"
        );
        // An unescaped `|` would split the row: exactly seven separators remain.
        assert_eq!(row.replace("\\|", "").matches('|').count(), 7);
        let graph = mermaid(&nodes);
        assert!(graph.contains("n0[\"x<br/>odd_name: with f(|a| a || `b`)\"]"), "{graph}");
        assert!(!graph.contains("-->"), "a dependency on no node draws no edge: {graph}");
        let quoted = mermaid(&[Node { name: "q", deps: &[], kind: Kind::Compute("\"<b>\" # x") }]);
        assert!(quoted.contains("n0([\"q = #quot;#lt;b#gt;#quot; #35; x\"])"), "{quoted}");
    }

    #[test]
    fn the_doc_has_both_sections_and_a_closed_fence() {
        let doc = endpoint_doc(2000, &checkout());
        assert!(doc.starts_with("# Call sequence\n\nGenerated by `#[endpoint]`; total timeout: 2000ms."));
        assert!(doc.contains("\n# Dependency graph\n\n```mermaid\nflowchart LR\n"));
        assert!(doc.ends_with("class n3 optional\n```\n"), "{doc}");
        assert!(doc.contains("n2 --> n4\n"));
        assert_eq!(doc.matches("```").count(), 2);
    }
}
