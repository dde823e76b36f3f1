//! The living documentation appended to an endpoint struct's rustdoc: the design template's "Call
//! sequence" table and a Mermaid graph of the dependencies.
//!
//! The text is rendered by `orchestrate_core::sequence`, the same code that renders the runtime's
//! `/_orchestrate` page from the endpoint's `SPEC`, so the two always agree. Retries show the
//! call's own `retry(..)`, else "service policy" (an endpoint cannot see `services!`), else
//! "none (not idempotent)".

use super::check::Plan;
use super::model::*;
use orchestrate_core::sequence::{self, Kind, Node, Retries, Target};
use quote::ToTokens;
use syn::{Attribute, ItemStruct, parse_quote};

/// `item` with the documentation appended to its attributes, after the user's own doc comments
/// (separated by an empty line).
pub(crate) fn documented(endpoint: &Endpoint, plan: &Plan, item: &ItemStruct) -> ItemStruct {
    let mut item = item.clone();
    let has_docs = item.attrs.iter().any(|attr| attr.path().is_ident("doc"));
    let text = doc_text(endpoint, plan);
    let lines = has_docs.then_some("").into_iter().chain(text.lines());
    item.attrs.extend(lines.map(|line| -> Attribute { parse_quote!(#[doc = #line]) }));
    item
}

/// Owned text of one node, borrowed by the [`Node`] handed to the renderer.
struct Texts {
    name: String,
    service: String,
    path: String,
    with: String,
    fallback: Option<String>,
    when: Option<String>,
    for_each: Option<String>,
    compute: String,
    compensation: Option<(&'static str, String)>,
    hedge: Option<orchestrate_core::policy::HedgePolicy>,
}

/// Hands the endpoint's nodes, as the renderer takes them, to `f`.
fn with_nodes<R>(endpoint: &Endpoint, plan: &Plan, f: impl FnOnce(&[Node<'_>]) -> R) -> R {
    let fields: Vec<&Field> = plan.order.iter().map(|&f| &endpoint.fields[f]).collect();
    let texts: Vec<Texts> = fields.iter().map(|field| texts(field)).collect();
    let nodes: Vec<Node<'_>> = fields
        .iter()
        .zip(&texts)
        .zip(&plan.deps)
        .map(|((field, text), deps)| Node { name: &text.name, deps, kind: kind(field, text) })
        .collect();
    f(&nodes)
}

/// The Markdown appended to the struct's docs.
pub(crate) fn doc_text(endpoint: &Endpoint, plan: &Plan) -> String {
    let timeout_ms = endpoint.timeout.as_ref().map_or(0, |t| t.value.as_millis() as u64);
    with_nodes(endpoint, plan, |nodes| {
        sequence::endpoint_doc_cached(timeout_ms, endpoint.cache.as_ref().map(|c| c.policy), nodes)
    })
}

/// Expressions are written as the spec writes them, so the rustdoc and the `/_orchestrate` page
/// show the same strings.
fn tokens(tokens: &impl ToTokens) -> String {
    code_text(tokens)
}

/// Tokens as a person would write them: `Items::of(&cart)`, `Vec::<u8>::new()`,
/// `loyalty.tier == Tier::Gold` (the compiler's own printing gives `Vec :: new()` and varies
/// between proc-macro servers). Used for every expression in the endpoint's spec and docs.
pub(crate) fn code_text(tokens: &impl ToTokens) -> String {
    let mut atoms = Vec::new();
    flatten(tokens.to_token_stream(), &mut atoms);
    let mut out = String::new();
    let mut prev = Atom::Start;
    let mut generics = 0usize;
    let mut closure_params = false;
    for atom in atoms {
        let ends_value = prev.ends_value();
        let (before, next) = match &atom {
            Atom::Word(_) => (prev.space_after(), atom.clone()),
            Atom::Open(delim) if *delim == '{' => (prev.space_after(), atom.clone()),
            Atom::Open(_) => (prev.space_after() && !ends_value, atom.clone()),
            Atom::Close('}') => (!matches!(prev, Atom::Open(_)), atom.clone()),
            Atom::Close(_) => (false, atom.clone()),
            Atom::Op(op, _) => {
                let class = match op.as_str() {
                    "." | "::" | ".." | "..=" => Class::Tight,
                    "," | ";" | ":" | "?" => Class::Trailing,
                    "!" if ends_value => Class::Tight,
                    "<" if generics > 0 || matches!(&prev, Atom::Op(p, _) if p == "::") => {
                        generics += 1;
                        Class::Tight
                    }
                    ">" | ">>" if generics > 0 => {
                        generics = generics.saturating_sub(op.len());
                        Class::CloseGeneric
                    }
                    "|" if closure_params => {
                        closure_params = false;
                        Class::Trailing
                    }
                    "|" if !ends_value => {
                        closure_params = true;
                        Class::Prefix
                    }
                    "!" | "&" | "&&" | "*" | "-" | "#" if !ends_value => Class::Prefix,
                    _ => Class::Binary,
                };
                let before = match class {
                    Class::Tight | Class::Trailing | Class::CloseGeneric => false,
                    Class::Prefix | Class::Binary => prev.space_after(),
                };
                (before, Atom::Op(op.clone(), class))
            }
            Atom::Start => (false, Atom::Start),
        };
        if before {
            out.push(' ');
        }
        atom.write(&mut out);
        prev = next;
    }
    out
}

/// How an operator is spaced.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    /// `a.b`, `a::b`, `vec!`, `0..n`, `::<`
    Tight,
    /// `a, b`, `x?`, closing `|` of closure parameters
    Trailing,
    /// `&x`, `-1`, `!ok`, opening `|`
    Prefix,
    /// `a + b`
    Binary,
    /// `>` of `::<T>`
    CloseGeneric,
}

#[derive(Clone, Debug)]
enum Atom {
    Start,
    /// An identifier, literal or lifetime.
    Word(String),
    /// An operator (joint punctuation merged) and, once placed, its spacing.
    Op(String, Class),
    Open(char),
    Close(char),
}

/// Words after which an expression starts rather than continues.
const KEYWORDS: &[&str] = &["move", "return", "in", "if", "else", "match", "let", "mut", "ref", "as", "break"];

impl Atom {
    fn ends_value(&self) -> bool {
        match self {
            Self::Word(word) => !KEYWORDS.contains(&word.as_str()),
            Self::Close(_) => true,
            Self::Op(op, class) => op == "?" || *class == Class::CloseGeneric,
            Self::Start | Self::Open(_) => false,
        }
    }

    fn space_after(&self) -> bool {
        match self {
            Self::Start | Self::Open('(' | '[') => false,
            Self::Op(_, class) => matches!(class, Class::Trailing | Class::Binary | Class::CloseGeneric),
            _ => true,
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Self::Word(word) | Self::Op(word, _) => out.push_str(word),
            Self::Open(c) | Self::Close(c) => out.push(*c),
            Self::Start => {}
        }
    }
}

fn flatten(stream: proc_macro2::TokenStream, atoms: &mut Vec<Atom>) {
    use proc_macro2::{Delimiter, Spacing, TokenTree};
    let mut pending = String::new();
    for tree in stream {
        if !pending.is_empty() && !matches!(tree, TokenTree::Punct(_)) {
            let op = std::mem::take(&mut pending);
            match (op.as_str(), &tree) {
                // A lifetime: `'a`.
                ("'", TokenTree::Ident(ident)) => {
                    atoms.push(Atom::Word(format!("'{ident}")));
                    continue;
                }
                _ => atoms.push(Atom::Op(op, Class::Binary)),
            }
        }
        match tree {
            TokenTree::Ident(ident) => atoms.push(Atom::Word(ident.to_string())),
            TokenTree::Literal(literal) => atoms.push(Atom::Word(literal.to_string())),
            TokenTree::Punct(punct) => {
                pending.push(punct.as_char());
                if punct.spacing() == Spacing::Alone {
                    atoms.push(Atom::Op(std::mem::take(&mut pending), Class::Binary));
                }
            }
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ('(', ')'),
                    Delimiter::Bracket => ('[', ']'),
                    Delimiter::Brace => ('{', '}'),
                    Delimiter::None => {
                        flatten(group.stream(), atoms);
                        continue;
                    }
                };
                atoms.push(Atom::Open(open));
                flatten(group.stream(), atoms);
                atoms.push(Atom::Close(close));
            }
        }
    }
    if !pending.is_empty() {
        atoms.push(Atom::Op(pending, Class::Binary));
    }
}

fn texts(field: &Field) -> Texts {
    let mut texts = Texts {
        name: field.ident.to_string(),
        service: String::new(),
        path: String::new(),
        with: String::new(),
        fallback: None,
        when: None,
        for_each: None,
        compute: String::new(),
        compensation: None,
        hedge: None,
    };
    match &field.kind {
        FieldKind::Call(call) => {
            texts.service = call.service.as_ref().map(syn::LitStr::value).unwrap_or_default();
            match &call.target {
                Some(CallTarget::Http { template, .. }) => texts.path = template.value(),
                Some(CallTarget::With { call }) => texts.with = tokens(call),
                None => {}
            }
            texts.fallback = call.fallback.as_ref().map(|k| tokens(&k.expr));
            texts.when = call.when.as_ref().map(|k| tokens(&k.expr));
            texts.for_each = call.for_each.as_ref().map(|each| tokens(&each.collection));
            texts.hedge = call.hedge.as_ref().map(|h| h.policy);
            texts.compensation = call.compensate.as_ref().map(|c| (c.method.upper(), c.template.value()));
        }
        FieldKind::Compute(compute) => texts.compute = tokens(&compute.expr),
        FieldKind::Input(_) | FieldKind::Unknown => {}
    }
    texts
}

fn kind<'a>(field: &Field, text: &'a Texts) -> Kind<'a> {
    let FieldKind::Call(call) = &field.kind else { return Kind::Compute(&text.compute) };
    let target = match &call.target {
        Some(CallTarget::Http { method, .. }) => Target::Http { method: method.upper(), path: &text.path },
        _ => Target::With(&text.with),
    };
    let retries = match &call.retry {
        Some(retry) => {
            Retries::Call { attempts: retry.policy.attempts, backoff_ms: retry.policy.backoff.as_millis() as u64 }
        }
        None if call.retryable() => Retries::Service,
        None => Retries::NotIdempotent,
    };
    let concurrency = call.concurrency.map_or(DEFAULT_CONCURRENCY, |(n, _)| n);
    Kind::Call(sequence::Call {
        service: &text.service,
        target,
        required: call.required.is_some(),
        timeout_ms: call.timeout.as_ref().map_or(0, |t| t.value.as_millis() as u64),
        retries,
        fallback: text.fallback.as_deref(),
        when: text.when.as_deref(),
        for_each: text.for_each.as_deref().map(|collection| (collection, concurrency)),
        cache: call.cache.as_ref().map(|c| c.policy),
        side_effect: call.side_effect(),
        compensation: text.compensation.as_ref().map(|(method, path)| (*method, path.as_str())),
        hedge: text.hedge.as_ref(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctxt::Errors;

    #[test]
    fn expressions_read_as_written() {
        let cases: [(syn::Expr, &str); 12] = [
            (parse_quote!(pricing.subtotal + tax.amount), "pricing.subtotal + tax.amount"),
            (parse_quote!(Items::of(&cart)), "Items::of(&cart)"),
            (parse_quote!(TaxInput::new(&cart, &pricing)), "TaxInput::new(&cart, &pricing)"),
            (parse_quote!(Vec::<u8>::new()), "Vec::<u8>::new()"),
            (
                parse_quote!(loyalty.tier == Tier::Gold && !cart.items.is_empty()),
                "loyalty.tier == Tier::Gold && !cart.items.is_empty()",
            ),
            (parse_quote!(vec![1, -2, a - 3]), "vec![1, -2, a - 3]"),
            (
                parse_quote!(items.iter().map(|i| i.sku.clone()).collect::<Vec<_>>()),
                "items.iter().map(|i| i.sku.clone()).collect::<Vec<_>>()",
            ),
            (parse_quote!(Shipping { options: Vec::new() }), "Shipping { options: Vec::new() }"),
            (parse_quote!(f(&mut x, *y, 0..n)?), "f(&mut x, *y, 0..n)?"),
            (parse_quote!(move || a), "move || a"),
            (parse_quote!(a[0] as u64 * 2), "a[0] as u64 * 2"),
            (parse_quote!(Cow::<'static, str>::Borrowed("x")), "Cow::<'static, str>::Borrowed(\"x\")"),
        ];
        for (expr, text) in cases {
            assert_eq!(code_text(&expr), text);
        }
    }

    /// The `Summary` endpoint exactly as the checkout example declares it.
    fn checkout_summary() -> (proc_macro2::TokenStream, ItemStruct) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/checkout/app.rs");
        let source = std::fs::read_to_string(path).expect("the checkout example");
        let file = syn::parse_file(&source).expect("the checkout example parses");
        let module = file
            .items
            .into_iter()
            .find_map(|item| match item {
                syn::Item::Mod(module) if module.ident == "checkout" => Some(module),
                _ => None,
            })
            .expect("mod checkout");
        let mut summary = module
            .content
            .expect("inline module")
            .1
            .into_iter()
            .find_map(|item| match item {
                syn::Item::Struct(item) if item.ident == "Summary" => Some(item),
                _ => None,
            })
            .expect("struct Summary");
        let at = summary.attrs.iter().position(|a| a.path().is_ident("endpoint")).expect("#[endpoint]");
        let attr = summary.attrs.remove(at);
        let syn::Meta::List(list) = attr.meta else { panic!("#[endpoint(..)]") };
        (list.tokens, summary)
    }

    fn doc_of(args: proc_macro2::TokenStream, mut item: ItemStruct) -> (String, ItemStruct) {
        let mut errors = Errors::new();
        let endpoint = super::super::parse::parse(args, &mut item, None, &mut errors).expect("parses");
        let plan = super::super::check::check(&endpoint, &mut errors).expect("checks");
        errors.finish().expect("no errors");
        (doc_text(&endpoint, &plan), documented(&endpoint, &plan, &item))
    }

    /// The design template's call sequence of `POST /checkout/summary` (its "Call sequence"
    /// table, with the Retries column and the real path templates).
    pub(crate) const CHECKOUT_TABLE: &str = "\
| Order | Service call | Required? | Timeout | Retries | Fallback |
|---|---|---|---|---|---|
| 1 | Cart: `GET /carts/{req.cart_id}` | Yes | 200ms | service policy | Fail request |
| 2 (parallel) | Inventory: `POST /check-availability` | Yes | 400ms | none (not idempotent) | Fail request |
| 2 (parallel) | Pricing: `POST /calculate` | Yes | 200ms | none (not idempotent) | Fail request |
| 2 (parallel) | Shipping: `POST /estimate` | No | 500ms | none (not idempotent) | `null` |
| 3 | Tax: `POST /calculate` | Yes | 300ms | none (not idempotent) | Fail request |
";

    #[test]
    fn the_checkout_doc_has_the_template_call_sequence_and_graph() {
        let (args, item) = checkout_summary();
        let (doc, documented) = doc_of(args, item);
        assert!(doc.contains("total timeout: 2000ms"), "{doc}");
        assert!(doc.contains(&format!("\n\n{CHECKOUT_TABLE}\n# Dependency graph\n")), "{doc}");
        for edge in
            ["n0 --> n1", "n0 --> n2", "n0 --> n3", "n0 --> n4", "n2 --> n4", "n2 --> n5", "n4 --> n5", "n1 --> n6"]
        {
            assert!(doc.contains(&format!("\n{edge}\n")), "missing {edge}: {doc}");
        }
        assert!(doc.contains("n0[\"cart<br/>cart: GET /carts/{req.cart_id}\"]"), "{doc}");
        assert!(doc.contains("class n3 optional"), "shipping is dashed: {doc}");
        // Appended after the user's doc comment, one `#[doc]` per line, an empty line between.
        let docs: Vec<String> = documented
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .map(|a| match &a.meta {
                syn::Meta::NameValue(syn::MetaNameValue {
                    value: syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }),
                    ..
                }) => s.value(),
                _ => panic!("doc attribute"),
            })
            .collect();
        assert_eq!(docs[..3], [" The checkout summary screen.", "", "# Call sequence"]);
        assert_eq!(docs[3..].join("\n") + "\n", doc.trim_start_matches("# Call sequence\n"));
    }

    #[test]
    fn call_level_retry_fallback_when_and_fan_out_are_shown() {
        let (doc, _) = doc_of(
            quote::quote!(GET "/x/{id}", timeout = "2s"),
            parse_quote! {
                struct X {
                    #[input(path)] id: String,
                    #[call(service = "user", timeout = "100ms", required, get = "/users/{id}", retry(attempts = 2, backoff = "50ms"))]
                    user: User,
                    #[call(service = "recs", timeout = "100ms", get = "/recs", when = user.gold, fallback = Vec::new())]
                    recs: Vec<Rec>,
                    #[call(service = "catalog", timeout = "100ms", get = "/items/{item}", for_each = item in user.items, concurrency = 4)]
                    items: Option<Vec<Item>>,
                }
            },
        );
        assert!(
            doc.contains("| 1 | User: `GET /users/{id}` | Yes | 100ms | 2 attempts, 50ms backoff | Fail request |"),
            "{doc}"
        );
        assert!(doc.contains("| 2 (parallel) | Recs: `GET /recs`, only when `user.gold` | No | 100ms | service policy | `Vec::new()` |"), "{doc}");
        assert!(doc.contains("| 2 (parallel) | Catalog: `GET /items/{item}`, for each item of `user.items` (4 at a time) | No | 100ms | service policy | `null` |"), "{doc}");
    }
}
