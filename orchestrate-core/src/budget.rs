//! Worst-case time of an endpoint's dependency graph, computable at compile time.
//!
//! A call's worst case is `timeout × attempts` plus the longest backoff it can wait between
//! attempts (exponential, doubled per retry, capped; full jitter never waits longer than the cap).
//! An endpoint's worst case is the largest sum of call worst cases along one dependency path. If
//! that exceeds the endpoint's `timeout`, the configuration promises something the deadline can
//! never allow, and the generated code refuses to compile.
//!
//! Every function is `const fn` because the retry policies live in `services!` and only the
//! compiler's const evaluation can combine them with an endpoint's graph.
//!
//! ```
//! use orchestrate_core::budget::{over_budget, Cost};
//! // cart (200ms, 3 attempts, 100ms backoff) → tax (300ms)
//! const NODES: [Cost; 2] = [Cost::call("cart", 200, 3, 100, 1_000), Cost::call("tax", 300, 1, 0, 0)];
//! const DEPS: [&[usize]; 2] = [&[], &[0]];
//! assert!(over_budget("Summary", &NODES, &DEPS, 1_200).is_none());
//! let message = over_budget("Summary", &NODES, &DEPS, 1_000).unwrap();
//! assert!(message.as_str().contains("cart (200ms × 3 attempts + 300ms backoff = 900ms) → tax (300ms) = 1200ms"));
//! ```

/// The worst-case contribution of one node of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost<'a> {
    /// The node's field name.
    pub name: &'a str,
    /// Per-attempt timeout in milliseconds (0 for nodes that make no call).
    pub timeout_ms: u64,
    /// Attempts, including the first (0 for nodes that make no call).
    pub attempts: u32,
    /// First backoff in milliseconds; doubled for each further retry.
    pub backoff_ms: u64,
    /// Upper bound of one backoff in milliseconds.
    pub max_backoff_ms: u64,
}

impl<'a> Cost<'a> {
    /// A downstream call.
    pub const fn call(name: &'a str, timeout_ms: u64, attempts: u32, backoff_ms: u64, max_backoff_ms: u64) -> Self {
        let attempts = if attempts == 0 { 1 } else { attempts };
        Self { name, timeout_ms, attempts, backoff_ms, max_backoff_ms }
    }

    /// A node that makes no call (a `#[compute]`): it costs nothing but carries dependencies.
    pub const fn free(name: &'a str) -> Self {
        Self { name, timeout_ms: 0, attempts: 0, backoff_ms: 0, max_backoff_ms: 0 }
    }

    /// Sum of the longest waits between attempts.
    pub const fn backoff_total_ms(&self) -> u64 {
        let mut total: u64 = 0;
        let mut delay = self.backoff_ms;
        let mut retry = 1;
        while retry < self.attempts {
            let capped = if delay > self.max_backoff_ms { self.max_backoff_ms } else { delay };
            total = total.saturating_add(capped);
            delay = delay.saturating_mul(2);
            retry += 1;
        }
        total
    }

    /// `timeout × attempts + backoff`.
    pub const fn worst_case_ms(&self) -> u64 {
        self.timeout_ms.saturating_mul(self.attempts as u64).saturating_add(self.backoff_total_ms())
    }
}

/// The most nodes one endpoint may have (the executor tracks completion in a 64-bit mask).
pub const MAX_NODES: usize = 64;

/// The longest path of a graph whose nodes are listed in topological order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongestPath {
    /// Sum of the worst cases along the path, in milliseconds.
    pub total_ms: u64,
    /// Node indices along the path, from first to last; only the first `len` are meaningful.
    pub nodes: [usize; MAX_NODES],
    /// Number of nodes on the path.
    pub len: usize,
}

/// Finds the longest path. `deps[i]` lists the nodes node `i` waits for, each smaller than `i`
/// (dependencies on later nodes are ignored: the macros emit nodes in topological order). Nodes
/// past [`MAX_NODES`] are ignored.
pub const fn longest_path(costs: &[Cost<'_>], deps: &[&[usize]]) -> LongestPath {
    let n = if costs.len() < deps.len() { costs.len() } else { deps.len() };
    let n = if n > MAX_NODES { MAX_NODES } else { n };
    let mut finish = [0u64; MAX_NODES];
    let mut via = [usize::MAX; MAX_NODES];
    let mut i = 0;
    while i < n {
        let mut start = 0;
        let mut d = 0;
        while d < deps[i].len() {
            let dep = deps[i][d];
            if dep < i && finish[dep] >= start {
                start = finish[dep];
                via[i] = dep;
            }
            d += 1;
        }
        finish[i] = start.saturating_add(costs[i].worst_case_ms());
        i += 1;
    }
    let mut last = usize::MAX;
    let mut best = 0;
    let mut i = 0;
    while i < n {
        if last == usize::MAX || finish[i] >= best {
            best = finish[i];
            last = i;
        }
        i += 1;
    }
    let mut reversed = [0usize; MAX_NODES];
    let mut len = 0;
    let mut at = last;
    while at != usize::MAX && len < n {
        reversed[len] = at;
        len += 1;
        at = via[at];
    }
    let mut nodes = [0usize; MAX_NODES];
    let mut k = 0;
    while k < len {
        nodes[k] = reversed[len - 1 - k];
        k += 1;
    }
    LongestPath { total_ms: best, nodes, len }
}

/// Returns the error message when the longest path's worst case exceeds `budget_ms`.
///
/// The message names every call on the path with its arithmetic and ends with the fix. Nodes that
/// cost nothing (computed fields) are left out of the printed path.
pub const fn over_budget(endpoint: &str, costs: &[Cost<'_>], deps: &[&[usize]], budget_ms: u64) -> Option<Message> {
    let path = longest_path(costs, deps);
    if path.total_ms <= budget_ms {
        return None;
    }
    let mut m = Message::new();
    m.push_str("the worst case of `");
    m.push_str(endpoint);
    m.push_str("` exceeds its timeout of ");
    m.push_u64(budget_ms);
    m.push_str("ms: ");
    let mut k = 0;
    let mut printed = 0;
    while k < path.len {
        let c = &costs[path.nodes[k]];
        k += 1;
        if c.attempts == 0 {
            continue;
        }
        if printed > 0 {
            m.push_str(" → ");
        }
        printed += 1;
        m.push_str(c.name);
        m.push_str(" (");
        m.push_u64(c.timeout_ms);
        m.push_str("ms");
        if c.attempts > 1 {
            m.push_str(" × ");
            m.push_u64(c.attempts as u64);
            m.push_str(" attempts + ");
            m.push_u64(c.backoff_total_ms());
            m.push_str("ms backoff = ");
            m.push_u64(c.worst_case_ms());
            m.push_str("ms");
        }
        m.push_str(")");
    }
    m.push_str(" = ");
    m.push_u64(path.total_ms);
    m.push_str("ms; raise the endpoint's `timeout`, or lower the timeouts or retries of the calls on this path");
    Some(m)
}

/// A bounded string built during constant evaluation (`const fn` cannot use `format!`).
///
/// Text past the capacity is cut at a character boundary and marked with `…`.
#[derive(Clone, Copy)]
pub struct Message {
    buf: [u8; Message::CAPACITY],
    len: usize,
    truncated: bool,
}

impl core::fmt::Debug for Message {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Message {
    const CAPACITY: usize = 1024;
    const ELLIPSIS: &'static str = "…";

    /// An empty message.
    pub const fn new() -> Self {
        Self { buf: [0; Self::CAPACITY], len: 0, truncated: false }
    }

    /// Appends text; whole characters only, so the buffer stays valid UTF-8.
    pub const fn push_str(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let room = Self::CAPACITY - Self::ELLIPSIS.len();
        let mut i = 0;
        while i < bytes.len() {
            // Length of the UTF-8 sequence that starts at `i`.
            let b = bytes[i];
            let width = if b < 0x80 {
                1
            } else if b >= 0xF0 {
                4
            } else if b >= 0xE0 {
                3
            } else {
                2
            };
            if self.len + width > room {
                if !self.truncated {
                    self.truncated = true;
                    let e = Self::ELLIPSIS.as_bytes();
                    let mut j = 0;
                    while j < e.len() {
                        self.buf[self.len] = e[j];
                        self.len += 1;
                        j += 1;
                    }
                }
                return;
            }
            let mut j = 0;
            while j < width {
                self.buf[self.len] = bytes[i + j];
                self.len += 1;
                j += 1;
            }
            i += width;
        }
    }

    /// Appends a number in decimal.
    pub const fn push_u64(&mut self, value: u64) {
        let mut digits = [0u8; 20];
        let mut n = value;
        let mut count = 0;
        loop {
            digits[19 - count] = b'0' + (n % 10) as u8;
            count += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let (_, used) = digits.split_at(20 - count);
        match core::str::from_utf8(used) {
            Ok(text) => self.push_str(text),
            Err(_) => self.push_str("?"),
        }
    }

    /// The text so far.
    pub const fn as_str(&self) -> &str {
        let (used, _) = self.buf.split_at(self.len);
        match core::str::from_utf8(used) {
            Ok(text) => text,
            Err(_) => "",
        }
    }
}

impl Default for Message {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checkout graph of the design: cart → {inventory, pricing, shipping}; {cart, pricing} →
    /// tax; {pricing, tax} → total; inventory → availability_confirmed.
    fn checkout(cart_attempts: u32) -> ([Cost<'static>; 7], [&'static [usize]; 7]) {
        (
            [
                Cost::call("cart", 200, cart_attempts, 100, 1_000),
                Cost::call("availability", 400, 1, 0, 0),
                Cost::call("pricing", 200, 1, 0, 0),
                Cost::call("shipping", 500, 1, 0, 0),
                Cost::call("tax", 300, 1, 0, 0),
                Cost::free("total"),
                Cost::free("availability_confirmed"),
            ],
            [&[], &[0], &[0], &[0], &[0, 2], &[2, 4], &[1]],
        )
    }

    #[test]
    fn call_worst_case_is_attempts_times_timeout_plus_capped_backoff() {
        assert_eq!(Cost::call("a", 200, 1, 100, 1000).worst_case_ms(), 200);
        assert_eq!(Cost::call("a", 200, 3, 100, 1000).worst_case_ms(), 600 + 100 + 200);
        assert_eq!(Cost::call("a", 100, 5, 100, 250).worst_case_ms(), 500 + 100 + 200 + 250 + 250);
        assert_eq!(Cost::call("a", 100, 0, 100, 250).worst_case_ms(), 100, "0 attempts means one");
        assert_eq!(Cost::free("total").worst_case_ms(), 0);
        assert_eq!(Cost::call("a", u64::MAX, 3, u64::MAX, u64::MAX).worst_case_ms(), u64::MAX);
    }

    #[test]
    fn longest_path_of_checkout_is_cart_pricing_tax_without_retries() {
        let (costs, deps) = checkout(1);
        let path = longest_path(&costs, &deps);
        // cart 200 + pricing 200 + tax 300 = 700 ties cart 200 + shipping 500; ties go to the
        // path that ends later in topological order, which here is the longer chain.
        assert_eq!(path.total_ms, 700);
        let names: Vec<&str> = path.nodes[..path.len].iter().map(|&i| costs[i].name).collect();
        assert_eq!(names, ["cart", "pricing", "tax", "total"]);
    }

    #[test]
    fn retries_on_the_first_call_count_in_every_path() {
        let (costs, deps) = checkout(3);
        assert_eq!(longest_path(&costs, &deps).total_ms, 900 + 200 + 300);
        assert!(over_budget("Summary", &costs, &deps, 1_400).is_none());
        let message = over_budget("Summary", &costs, &deps, 1_399).unwrap();
        assert_eq!(
            message.as_str(),
            "the worst case of `Summary` exceeds its timeout of 1399ms: cart (200ms × 3 attempts + 300ms backoff = 900ms) → pricing (200ms) → tax (300ms) = 1400ms; raise the endpoint's `timeout`, or lower the timeouts or retries of the calls on this path"
        );
    }

    #[test]
    fn independent_nodes_take_the_longest_single_node() {
        let costs = [Cost::call("a", 50, 1, 0, 0), Cost::call("b", 80, 1, 0, 0), Cost::call("c", 60, 1, 0, 0)];
        let deps: [&[usize]; 3] = [&[], &[], &[]];
        let path = longest_path(&costs, &deps);
        assert_eq!((path.total_ms, path.len, path.nodes[0]), (80, 1, 1));
    }

    #[test]
    fn message_is_evaluated_in_const_context() {
        const M: Option<Message> = {
            let costs = [Cost::call("cart", 300, 1, 0, 0)];
            let deps: [&[usize]; 1] = [&[]];
            over_budget("E", &costs, &deps, 200)
        };
        assert!(M.unwrap().as_str().contains("cart (300ms) = 300ms"));
    }

    #[test]
    fn message_truncates_on_a_character_boundary() {
        let mut m = Message::new();
        for _ in 0..600 {
            m.push_str("→");
        }
        assert!(m.as_str().ends_with('…'));
        assert!(m.as_str().len() <= Message::CAPACITY);
        let mut n = Message::new();
        n.push_u64(0);
        n.push_str(" ");
        n.push_u64(u64::MAX);
        assert_eq!(n.as_str(), "0 18446744073709551615");
    }
}
