//! Cross-cutting rules of an endpoint: names resolve, the graph has no cycle, each call's type
//! fits its failure policy, retries are safe, routes match inputs and the critical path fits the
//! deadline. Graph algorithms work on ids; errors are turned back into the user's tokens.

use super::model::*;
use crate::ctxt::Errors;
use orchestrate_core::budget::{Cost, MAX_NODES, over_budget};
use orchestrate_core::suggest::{closest, did_you_mean};
use orchestrate_core::template::parse_route;
use proc_macro2::{Ident, Span};

/// A checked endpoint, ready to expand.
pub(crate) struct Plan {
    /// Field indices of the nodes (calls and computed fields) in topological order.
    pub(crate) order: Vec<usize>,
    /// For each node (by position in `order`), the positions of the nodes it waits for.
    pub(crate) deps: Vec<Vec<usize>>,
    /// For each node, the field indices of the inputs it reads.
    pub(crate) inputs: Vec<Vec<usize>>,
}

/// Node id → the nodes it uses, each with the token of its first use.
type Uses = Vec<Vec<(usize, Span)>>;

pub(crate) fn check(endpoint: &Endpoint, errors: &mut Errors) -> Option<Plan> {
    let before = errors_len(errors);
    check_inputs(endpoint, errors);
    check_endpoint_cache(endpoint, errors);
    check_slo(endpoint, errors);
    check_canary(endpoint, errors);
    for field in &endpoint.fields {
        if let FieldKind::Call(call) = &field.kind {
            check_call(field, call, errors);
        }
    }
    let node_count = endpoint.fields.iter().filter(|f| f.kind.is_node()).count();
    if node_count > MAX_NODES {
        errors.at(
            endpoint.ident.span(),
            format!("an endpoint has at most {MAX_NODES} calls and computed fields; split it"),
        );
    }
    let (uses, inputs) = resolve(endpoint, errors);
    check_compensation_reads(endpoint, errors);
    let cycles = find_cycles(&edges(&uses));
    for cycle in &cycles {
        report_cycle(endpoint, &uses, cycle, errors);
    }
    if !cycles.is_empty() || errors_len(errors) > before {
        return None;
    }
    let order = topological_order(&edges(&uses))?;
    let nodes: Vec<usize> = order.iter().copied().filter(|&i| endpoint.fields[i].kind.is_node()).collect();
    let position = |field: usize| nodes.iter().position(|&n| n == field);
    let deps: Vec<Vec<usize>> =
        nodes.iter().map(|&f| uses[f].iter().filter_map(|(d, _)| position(*d)).collect()).collect();
    let node_inputs: Vec<Vec<usize>> = nodes.iter().map(|&f| inputs[f].clone()).collect();
    check_budget(endpoint, &nodes, &deps, errors);
    if errors_len(errors) > before {
        return None;
    }
    let plan = Plan { order: nodes, deps, inputs: node_inputs };
    check_saga(endpoint, &plan, errors);
    if errors_len(errors) > before {
        return None;
    }
    Some(plan)
}

/// A compensation runs after the request failed: it may read the call's own answer, the inputs
/// and what the call itself read, nothing that might not have completed.
fn check_compensation_reads(endpoint: &Endpoint, errors: &mut Errors) {
    for field in &endpoint.fields {
        let FieldKind::Call(call) = &field.kind else { continue };
        let Some(compensate) = &call.compensate else { continue };
        let mut reported: Vec<String> = Vec::new();
        for ident in &compensate.uses {
            let name = ident.to_string();
            let allowed = *ident == field.ident
                || call.uses.iter().any(|u| *u == name)
                || matches!(endpoint.field(&name), Some((_, f)) if matches!(f.kind, FieldKind::Input(_)))
                || endpoint.field(&name).is_none();
            if !allowed && !reported.contains(&name) {
                let message = orchestrate_core::policy::saga::compensation_reads(&field.ident.to_string(), &name);
                errors.at(ident.span(), message);
                reported.push(name);
            }
        }
    }
}

/// In a `saga` endpoint, a side effect a later required failure would leave in place is an
/// error at the call's method (elsewhere the docs' "Compensation" column lists it).
fn check_saga(endpoint: &Endpoint, plan: &Plan, errors: &mut Errors) {
    use orchestrate_core::sequence::{self, Kind, Node, Retries, Target};
    if endpoint.saga.is_none() {
        return;
    }
    // The rule of the docs' "Compensation" column, on what it reads of each call.
    let nodes: Vec<Node<'_>> = plan
        .order
        .iter()
        .zip(&plan.deps)
        .map(|(&f, deps)| {
            let kind = match &endpoint.fields[f].kind {
                FieldKind::Call(call) => Kind::Call(sequence::Call {
                    service: "",
                    target: Target::With(""),
                    required: call.required.is_some(),
                    timeout_ms: 0,
                    retries: Retries::Service,
                    fallback: None,
                    when: None,
                    for_each: None,
                    cache: None,
                    side_effect: call.side_effect(),
                    compensation: call.compensate.as_ref().map(|c| (c.method.upper(), "")),
                    hedge: None,
                }),
                _ => Kind::Compute(""),
            };
            Node { name: "", deps, kind }
        })
        .collect();
    for (call, later) in sequence::uncompensated(&nodes) {
        let field = &endpoint.fields[plan.order[call]];
        let later = &endpoint.fields[plan.order[later]];
        let FieldKind::Call(c) = &field.kind else { continue };
        let Some(CallTarget::Http { method, key, .. }) = &c.target else { continue };
        let message = orchestrate_core::policy::saga::uncompensated(
            &field.ident.to_string(),
            method.upper(),
            &later.ident.to_string(),
        );
        errors.at(key.span(), message);
    }
}

fn errors_len(errors: &Errors) -> usize {
    errors.len()
}

/// Resolves every name used by every node: into node edges (with the token of first use) and
/// input reads. Unknown names and self-uses are errors.
fn resolve(endpoint: &Endpoint, errors: &mut Errors) -> (Uses, Vec<Vec<usize>>) {
    let n = endpoint.fields.len();
    let mut uses: Uses = vec![Vec::new(); n];
    let mut inputs = vec![Vec::new(); n];
    let names: Vec<String> = endpoint.fields.iter().map(|f| f.ident.to_string()).collect();
    for (i, field) in endpoint.fields.iter().enumerate() {
        let (used, after): (&[Ident], &[Ident]) = match &field.kind {
            FieldKind::Call(call) => (&call.uses, &call.after),
            FieldKind::Compute(compute) => (&compute.uses, &[]),
            _ => continue,
        };
        let mut reported: Vec<String> = Vec::new();
        for ident in used {
            let name = ident.to_string();
            match endpoint.field(&name) {
                Some((j, _)) if j == i => {
                    if !reported.contains(&name) {
                        errors.at(
                            ident.span(),
                            format!("`{name}` depends on itself; a call or computed field cannot use its own value"),
                        );
                        reported.push(name);
                    }
                }
                Some((j, dep)) => match &dep.kind {
                    FieldKind::Input(_) if after.iter().any(|a| a == &name) => {
                        errors.at(
                            ident.span(),
                            format!("`{name}` is an input and is always ready; remove it from `after`"),
                        );
                    }
                    FieldKind::Input(_) => {
                        if !inputs[i].contains(&j) {
                            inputs[i].push(j);
                        }
                    }
                    FieldKind::Call(_) | FieldKind::Compute(_) => {
                        if !uses[i].iter().any(|(d, _)| *d == j) {
                            uses[i].push((j, ident.span()));
                        }
                    }
                    FieldKind::Unknown => {}
                },
                None => {
                    if !reported.contains(&name) {
                        errors.at(
                            ident.span(),
                            format!(
                                "`{name}` is not a field of `{}`{} (calls and computed fields can only use fields of the endpoint; for an item outside it, write a path such as `self::{name}`)",
                                endpoint.ident,
                                did_you_mean(&name, names.iter().map(String::as_str).filter(|n| *n != names[i]))
                            ),
                        );
                        reported.push(name);
                    }
                }
            }
        }
    }
    (uses, inputs)
}

fn edges(uses: &Uses) -> Vec<Vec<usize>> {
    uses.iter().map(|u| u.iter().map(|(d, _)| *d).collect()).collect()
}

/// Every elementary cycle found by Tarjan's strongly connected components: one cycle per
/// component of more than one node, as `[a, b, .., a]` where each node uses the next.
pub(crate) fn find_cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let components = strongly_connected(edges);
    let mut cycles = Vec::new();
    for component in components.into_iter().filter(|c| c.len() > 1) {
        let start = *component.iter().min().unwrap_or(&0);
        if let Some(path) = path_back(edges, &component, start) {
            cycles.push(path);
        }
    }
    cycles.sort();
    cycles
}

/// A path from `start` back to `start` within `component` (depth first, smallest ids first).
fn path_back(edges: &[Vec<usize>], component: &[usize], start: usize) -> Option<Vec<usize>> {
    let mut path = vec![start];
    let mut visited = vec![false; edges.len()];
    fn walk(
        edges: &[Vec<usize>],
        component: &[usize],
        start: usize,
        path: &mut Vec<usize>,
        visited: &mut [bool],
    ) -> bool {
        let at = *path.last().unwrap_or(&start);
        let mut next: Vec<usize> = edges[at].iter().copied().filter(|n| component.contains(n)).collect();
        next.sort_unstable();
        for n in next {
            if n == start {
                path.push(n);
                return true;
            }
            if !visited[n] {
                visited[n] = true;
                path.push(n);
                if walk(edges, component, start, path, visited) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    walk(edges, component, start, &mut path, &mut visited).then_some(path)
}

/// Tarjan's algorithm, iterative over a small graph.
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        edges: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State<'_>, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.edges[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            s.out.push(component);
        }
    }
    let n = edges.len();
    let mut s = State {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

/// Kahn's algorithm; ties keep declaration order. `None` when there is a cycle.
pub(crate) fn topological_order(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    let n = edges.len();
    let mut waiting: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let next = (0..n).find(|&i| !done[i] && waiting[i] == 0)?;
        done[next] = true;
        order.push(next);
        for (i, deps) in edges.iter().enumerate() {
            waiting[i] -= deps.iter().filter(|&&d| d == next).count();
        }
    }
    Some(order)
}

fn report_cycle(endpoint: &Endpoint, uses: &Uses, cycle: &[usize], errors: &mut Errors) {
    let name = |i: usize| endpoint.fields[i].ident.to_string();
    let chain = cycle.iter().map(|&i| name(i)).collect::<Vec<_>>().join(" → ");
    for (k, pair) in cycle.windows(2).enumerate() {
        let (from, to) = (pair[0], pair[1]);
        let span = uses[from].iter().find(|(d, _)| *d == to).map_or(endpoint.fields[from].ident.span(), |(_, s)| *s);
        let message = if k == 0 {
            format!(
                "dependency cycle `{chain}` (each uses the next), so none of them could ever start: `{}` uses `{}` here; remove this use or another one of the cycle",
                name(from),
                name(to)
            )
        } else {
            format!("`{}` uses `{}` here, part of the cycle `{chain}`", name(from), name(to))
        };
        errors.at(span, message);
    }
}

/// The SLO's `p99` fits in the endpoint's `timeout` (which cuts every request at that time).
/// A canary assigned by the token's subject needs a token.
fn check_canary(endpoint: &Endpoint, errors: &mut Errors) {
    let Some(canary) = &endpoint.canary else { return };
    if canary.policy.key == orchestrate_core::policy::CanaryKey::Subject && endpoint.effective_auth() != Auth::Jwt {
        errors.at(canary.key_span, orchestrate_core::policy::canary::SUBJECT_NEEDS_AUTH);
    }
}

fn check_slo(endpoint: &Endpoint, errors: &mut Errors) {
    let (Some(slo), Some(timeout)) = (&endpoint.slo, &endpoint.timeout) else { return };
    if let Some(message) =
        slo.policy.p99.and_then(|p99| orchestrate_core::policy::slo::p99_over_timeout(p99, timeout.value))
    {
        errors.at(slo.p99_span, message);
    }
}

/// The endpoint's own `cache(..)`: GET only, and its `key`/`tags` read only inputs (the cache is
/// consulted before any call runs).
fn check_endpoint_cache(endpoint: &Endpoint, errors: &mut Errors) {
    let Some(cache) = &endpoint.cache else { return };
    if endpoint.method != HttpMethod::Get {
        errors.at(cache.key_token.span(), orchestrate_core::policy::cache::endpoint_not_get(endpoint.method.upper()));
    }
    for expr in cache.key.iter().chain(&cache.tags) {
        for ident in crate::deps::free_names(expr, &[]) {
            let name = ident.to_string();
            match endpoint.field(&name) {
                Some((_, field)) if matches!(field.kind, FieldKind::Input(_)) => {}
                Some(_) => errors.at(
                    ident.span(),
                    format!("the endpoint's cache is read before any call runs: its `key` and `tags` can use inputs, not `{name}`"),
                ),
                None => errors.at(ident.span(), format!("`{name}` is not an input of `{}`", endpoint.ident)),
            }
        }
    }
}

fn check_inputs(endpoint: &Endpoint, errors: &mut Errors) {
    let route = endpoint.route.value();
    let params = match parse_route(&route) {
        Ok(params) => params,
        Err(e) => {
            // The grammar's messages name the route and say the fix.
            errors.at(crate::kw::sub_span(&endpoint.route, &e.at), e.to_string());
            return;
        }
    };
    let mut body: Option<Span> = None;
    for field in &endpoint.fields {
        let FieldKind::Input(input) = &field.kind else { continue };
        match &input.source {
            InputSource::Path(name) if !params.iter().any(|p| &p.name == name) => {
                let listed = if params.is_empty() {
                    "it has none".to_owned()
                } else {
                    format!(
                        "it has {}",
                        params.iter().map(|p| format!("`{{{}}}`", p.name)).collect::<Vec<_>>().join(", ")
                    )
                };
                let fix = match closest(name, params.iter().map(|p| p.name.as_str())) {
                    Some(near) => format!("did you mean `{near}`? read it with `#[input(path = \"{near}\")]`"),
                    None => format!(
                        "add `{{{name}}}` to the route, or read the value another way, e.g. `#[input(query = \"{name}\")]`"
                    ),
                };
                errors
                    .at(input.span, format!("`{name}` is not a parameter of the route \"{route}\" ({listed}); {fix}"));
            }
            InputSource::Body => {
                if let Some(first) = body {
                    errors.at(input.span, "an endpoint has one JSON body; make one struct with every body field");
                    errors.at(first, "first body input is here");
                }
                body = Some(input.span);
                if endpoint.method == HttpMethod::Get {
                    errors.at(
                        input.span,
                        "a GET endpoint has no body; read the values with `#[input(query)]` or make the endpoint POST",
                    );
                }
            }
            InputSource::Claim(claim) if endpoint.effective_auth() == Auth::None => {
                let ident = &endpoint.ident;
                let name = &field.ident;
                let message = match endpoint.auth {
                    Some((Auth::None, _)) => format!(
                        "`{name}` reads the token claim `{claim}`, but `{ident}` opts out of authentication with `auth = none`; remove `auth = none` so that a token is verified"
                    ),
                    _ => format!(
                        "`{name}` reads the token claim `{claim}`, but `{ident}` verifies no token; add `auth = jwt` to its `#[endpoint]` or to the `#[api]` module"
                    ),
                };
                errors.at(input.span, message);
            }
            _ => {}
        }
    }
    for param in &params {
        let bound = endpoint.fields.iter().any(
            |f| matches!(&f.kind, FieldKind::Input(Input { source: InputSource::Path(n), .. }) if n == &param.name),
        );
        if !bound {
            errors.at(
                crate::kw::sub_span(&endpoint.route, &param.at),
                format!(
                    "route parameter `{{{}}}` has no field; add `#[input(path)] {}: String` to `{}`",
                    param.name, param.name, endpoint.ident
                ),
            );
        }
    }
}

pub(super) fn check_call(field: &Field, call: &Call, errors: &mut Errors) {
    let name = &field.ident;
    if call.service.is_none() && call.missing("service") {
        errors.at(
            call.attr_span,
            format!("`{name}` needs a service: add `service = \"..\"` naming one declared in `services!`"),
        );
    }
    if call.timeout.is_none() && call.missing("timeout") {
        errors.at(call.attr_span, format!("`{name}` needs a per-attempt `timeout`, e.g. `timeout = \"200ms\"`"));
    }
    let Some(target) = &call.target else {
        if call.missing("target") {
            errors.at(call.attr_span, format!("`{name}` needs what to call: `get = \"/path\"` (or `post`, `put`, `patch`, `delete`), or `with = some_fn(..)`"));
        }
        return;
    };
    // A malformed `required` or `fallback` was reported where it is; whether the field's type
    // fits its failure policy cannot be told without it.
    let policy_known =
        (call.required.is_some() || call.missing("required")) && (call.fallback.is_some() || call.missing("fallback"));
    let optional_shape = matches!(shape(&field.ty), Shape::Option(_));
    let conditional = call.when.is_some();
    if let Some(required) = &call.required {
        if let Some(fallback) = &call.fallback {
            errors.at(fallback.key.span(), format!("`{name}` is required, so a failure fails the endpoint and a fallback is never used; remove `fallback` or `required`"));
        }
        if let Shape::Option(inner) = shape(&field.ty)
            && !conditional
        {
            errors.at(required.span(), format!("`{name}` is `required` but typed `Option<{}>`; a required call always has a value: type it `{}` or remove `required`", type_text(inner), type_text(inner)));
        }
    } else if !optional_shape && call.fallback.is_none() && policy_known {
        errors.spanned(
            &field.ty,
            format!("`{name}` is optional (no `required`), so it needs a value when it fails: type it `Option<{}>`, add `fallback = ..`, or mark it `required`", type_text(&field.ty)),
        );
    }
    if conditional && !optional_shape && call.fallback.is_none() && call.required.is_some() {
        errors.spanned(&field.ty, format!("`{name}` is conditional (`when`), so it has no value when the condition is false: type it `Option<{}>`", type_text(&field.ty)));
    }
    if let Some((_, span)) = call.concurrency
        && call.for_each.is_none()
    {
        errors.at(span, "`concurrency` bounds a fan-out; use it with `for_each = item in ..`");
    }
    if let Some(each) = &call.for_each {
        let inner = match shape(&field.ty) {
            Shape::Option(inner) => inner,
            Shape::Plain => &field.ty,
        };
        if generic_arg(inner, "Vec").is_none() {
            errors.spanned(
                &field.ty,
                format!(
                    "`{name}` fans out with `for_each`, so it collects one answer per item: type it `Vec<{}>`",
                    type_text(inner)
                ),
            );
        }
        if matches!(target, CallTarget::With { .. }) {
            errors.at(
                each.key.span(),
                "`for_each` sends one templated request per item; with `with`, loop inside the function instead",
            );
        }
    }
    match target {
        CallTarget::Http { method, key, .. } => {
            if let Some(body) = &call.body
                && *method == HttpMethod::Get
            {
                errors.at(
                    body.key.span(),
                    format!("`{name}` is a GET, which carries no body; send the value with `query = ..` or in the path, or make the call a `post`"),
                );
            }
            if let Some(flag) = &call.idempotent
                && method.is_idempotent()
            {
                errors.at(flag.span(), format!("`{key}` is idempotent by definition (RFC 9110); remove `idempotent`"));
            }
        }
        CallTarget::With { .. } => {
            for keyed in [&call.body, &call.query, &call.headers, &call.idempotency_key].into_iter().flatten() {
                errors.at(
                    keyed.key.span(),
                    format!("`with` builds its own requests; pass `{}` to the function instead", keyed.key),
                );
            }
        }
    }
    if let Some(cache) = &call.cache {
        match target {
            CallTarget::Http { method, .. } if *method != HttpMethod::Get && call.idempotent.is_none() => {
                errors.at(cache.key_token.span(), orchestrate_core::policy::cache::unsafe_to_cache(&name.to_string(), method.upper()));
            }
            CallTarget::With { .. } => errors.at(
                cache.key_token.span(),
                "`cache` stores the answer of one request; custom logic may send several: cache inside the function, or call with `get = ..`",
            ),
            _ => {}
        }
        if let (Some(key), Some(_)) = (&cache.key, &call.for_each) {
            errors.spanned(key, "a fan-out caches each item's request under its own default key; remove `key`");
        }
    }
    if let Some(compensate) = &call.compensate {
        check_compensate(field, call, target, compensate, errors);
    }
    if let Some(retry) = &call.retry
        && retry.policy.retries()
        && !call.retryable()
    {
        let method = match target {
            CallTarget::Http { method, .. } => Some(method.upper()),
            CallTarget::With { .. } => None,
        };
        errors.at(retry.key.span(), orchestrate_core::policy::retry::unsafe_call_retry(&name.to_string(), method));
    }
    if let Some(hedge) = &call.hedge {
        check_hedge(&name.to_string(), call, target, hedge, errors);
    }
}

/// A hedge repeats the request: only on a call that is safe to repeat, and due before the
/// attempt's timeout.
fn check_hedge(name: &str, call: &Call, target: &CallTarget, hedge: &CallHedge, errors: &mut Errors) {
    use orchestrate_core::policy::hedge;
    match target {
        CallTarget::With { .. } => errors.at(
            hedge.key.span(),
            "`hedge` repeats one templated request; custom logic may send several: call with `get = ..`, or hedge inside the function",
        ),
        CallTarget::Http { method, .. } if !call.retryable() => {
            errors.at(hedge.key.span(), hedge::unsafe_call_hedge(name, Some(method.upper())));
        }
        CallTarget::Http { .. } => {}
    }
    if let Some(timeout) = &call.timeout
        && hedge.policy.after >= timeout.value
    {
        let (after, timeout) = (hedge.policy.after.as_millis() as u64, timeout.value.as_millis() as u64);
        errors.at(hedge.key.span(), hedge::after_not_below_timeout(name, after, timeout));
    }
}

fn check_compensate(field: &Field, call: &Call, target: &CallTarget, compensate: &Compensate, errors: &mut Errors) {
    use orchestrate_core::policy::saga;
    let name = field.ident.to_string();
    match target {
        CallTarget::Http { method: HttpMethod::Get, .. } => {
            errors.at(compensate.key.span(), saga::compensate_on_get(&name));
        }
        CallTarget::With { .. } => {
            errors.at(compensate.key.span(), saga::compensate_needs_single_request(&name, false))
        }
        CallTarget::Http { .. } if call.for_each.is_some() => {
            errors.at(compensate.key.span(), saga::compensate_needs_single_request(&name, true));
        }
        CallTarget::Http { .. } => {}
    }
    if !compensate.retryable() {
        errors.at(compensate.method_token.span(), saga::compensation_not_idempotent(&name, compensate.method.upper()));
    }
    if let Some(flag) = &compensate.idempotent
        && compensate.method.is_idempotent()
    {
        let method = &compensate.method_token;
        errors.at(flag.span(), format!("`{method}` is idempotent by definition (RFC 9110); remove `idempotent`"));
    }
    if let Some(body) = &compensate.body
        && compensate.method == HttpMethod::Get
    {
        errors.at(body.key.span(), "a GET carries no body; make the compensation a `post`".to_owned());
    }
}

/// The critical path with what the macro knows (call timeouts and call-level retries; the
/// services' retries are checked by the generated code at compile time).
fn check_budget(endpoint: &Endpoint, nodes: &[usize], deps: &[Vec<usize>], errors: &mut Errors) {
    let Some(timeout) = &endpoint.timeout else { return };
    let names: Vec<String> = nodes.iter().map(|&f| endpoint.fields[f].ident.to_string()).collect();
    let costs: Vec<Cost<'_>> = nodes.iter().zip(&names).map(|(&f, name)| cost(&endpoint.fields[f], name)).collect();
    let dep_slices: Vec<&[usize]> = deps.iter().map(Vec::as_slice).collect();
    let name = endpoint.ident.to_string();
    if let Some(message) = over_budget(&name, &costs, &dep_slices, timeout.value.as_millis() as u64) {
        errors.at(timeout.lit.span(), message.as_str());
    }
}

/// The worst case of one node as the macro sees it, named `name`.
pub(crate) fn cost<'a>(field: &Field, name: &'a str) -> Cost<'a> {
    match &field.kind {
        FieldKind::Call(call) => {
            let timeout = call.timeout.as_ref().map_or(0, |t| t.value.as_millis() as u64);
            match call.retry.as_ref().filter(|_| call.retryable()) {
                Some(r) => {
                    let r = &r.policy;
                    Cost::call(
                        name,
                        timeout,
                        r.attempts,
                        r.backoff.as_millis() as u64,
                        r.max_backoff.as_millis() as u64,
                    )
                }
                None => Cost::call(name, timeout, 1, 0, 0),
            }
        }
        _ => Cost::free(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_two_and_three_node_cycles_and_ignores_dags() {
        // 0 uses 1, 1 uses 0.
        assert_eq!(find_cycles(&[vec![1], vec![0]]), vec![vec![0, 1, 0]]);
        // 0 → 1 → 2 → 0, plus 3 → 0 outside the cycle.
        assert_eq!(find_cycles(&[vec![1], vec![2], vec![0], vec![0]]), vec![vec![0, 1, 2, 0]]);
        // The checkout graph (each node lists what it uses) has no cycle.
        let checkout = vec![vec![], vec![0], vec![0], vec![0], vec![0, 2], vec![2, 4], vec![1]];
        assert!(find_cycles(&checkout).is_empty());
        // Two independent cycles are both reported.
        assert_eq!(find_cycles(&[vec![1], vec![0], vec![3], vec![2]]).len(), 2);
    }

    #[test]
    fn orders_dependencies_first_keeping_declaration_order() {
        let checkout = vec![vec![], vec![0], vec![0], vec![0], vec![0, 2], vec![2, 4], vec![1]];
        assert_eq!(topological_order(&checkout), Some(vec![0, 1, 2, 3, 4, 5, 6]));
        // Declared out of order: 0 uses 2, 2 uses 1.
        assert_eq!(topological_order(&[vec![2], vec![], vec![1]]), Some(vec![1, 2, 0]));
        assert_eq!(topological_order(&[vec![1], vec![0]]), None);
    }

    /// Every error `#[endpoint(args)] item` reports.
    fn errors_of(args: proc_macro2::TokenStream, mut item: syn::ItemStruct) -> Vec<String> {
        let mut errors = Errors::new();
        if let Some(endpoint) = super::super::parse::parse(args, &mut item, None, &mut errors) {
            check(&endpoint, &mut errors);
        }
        errors.finish().err().map_or_else(Vec::new, |e| e.into_iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn a_malformed_or_misspelled_key_is_not_also_reported_missing() {
        let errors = errors_of(
            quote::quote!(GET "/x", timeout = "1s"),
            syn::parse_quote! {
                struct X {
                    #[call(service = "a", timeout = "200 ms", required, get = "/a")]
                    a: A,
                    #[call(service = "a", timout = "200ms", required, get = "/b")]
                    b: A,
                    #[call(service = "a", timeout = "200ms", required = true, get = "/c")]
                    c: A,
                    #[call(service = "a", timeout = "200ms", required, gett = "/d")]
                    d: A,
                    #[call(service = "a" timeout = "200ms", get = "/e")]
                    e: A,
                }
            },
        );
        // One error per field, each at its own mistake.
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors.iter().all(|e| !e.contains("needs") && !e.contains("is optional")), "{errors:#?}");
        // A key that is really absent is still reported.
        let errors = errors_of(
            quote::quote!(GET "/x", timeout = "1s"),
            syn::parse_quote!(
                struct X {
                    #[call(service = "a", cache = "1s", required, get = "/a")]
                    a: A,
                }
            ),
        );
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[1].contains("needs a per-attempt `timeout`"), "{errors:#?}");
    }

    #[test]
    fn names_that_are_no_field_are_errors_with_the_closest_field() {
        let errors = errors_of(
            quote::quote!(POST "/x", timeout = "1s"),
            syn::parse_quote! {
                struct X {
                    #[input(body)]
                    req: Req,
                    #[call(service = "a", timeout = "100ms", required, get = "/carts/{req.id}")]
                    cart: Cart,
                    #[call(service = "a", timeout = "100ms", required, post = "/p", body = Items::of(&carts))]
                    pricing: Pricing,
                    #[compute(pricing.subtotal + taxes.amount + cart.items.iter().map(|item| item.qty).sum::<u64>())]
                    total: u64,
                }
            },
        );
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].starts_with("`carts` is not a field of `X`"), "{errors:#?}");
        assert!(errors[0].contains("did you mean `cart`"), "{errors:#?}");
        assert!(errors[1].starts_with("`taxes` is not a field of `X`"), "{errors:#?}");
        // `item` is bound by the closure: not reported.
        assert!(errors.iter().all(|e| !e.contains("`item`")), "{errors:#?}");
    }

    #[test]
    fn the_critical_path_is_checked_with_call_timeouts_and_call_level_retries() {
        let graph = |timeout: &str| {
            let timeout = syn::LitStr::new(timeout, proc_macro2::Span::call_site());
            errors_of(
                quote::quote!(GET "/x", timeout = #timeout),
                syn::parse_quote! {
                    struct X {
                        #[call(service = "a", timeout = "200ms", required, get = "/a", retry(attempts = 3, backoff = "100ms"))]
                        cart: Cart,
                        #[call(service = "a", timeout = "200ms", required, post = "/p", body = &cart)]
                        pricing: Pricing,
                        #[call(service = "a", timeout = "300ms", required, post = "/t", body = (&cart, &pricing))]
                        tax: Tax,
                        #[call(service = "a", timeout = "450ms", post = "/s", body = &cart)]
                        shipping: Option<Shipping>,
                    }
                },
            )
        };
        // cart 200 × 3 + 100 + 200 = 900, then pricing 200 and tax 300: 1400 ms.
        assert!(graph("1400ms").is_empty(), "{:#?}", graph("1400ms"));
        let errors = graph("1399ms");
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0]
                .contains("cart (200ms × 3 attempts + 300ms backoff = 900ms) → pricing (200ms) → tax (300ms) = 1400ms"),
            "{errors:#?}"
        );
    }
}
