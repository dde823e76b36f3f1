//! Finds the fields an expression uses: the free, lower-case, single-segment names it reads.
//!
//! Scope-aware: names bound inside the expression (closure parameters, `let`, `match` arms,
//! `if let`, `for` patterns) are not dependencies. Function names in call position (`of(&cart)`),
//! paths with more than one segment (`Items::of`), upper-case names (constants, variants) and
//! method names are not either. Macro arguments are searched when they parse as expressions, and
//! inline format arguments (`format!("{cart_id}")`) count as uses.

use proc_macro2::Ident;
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Expr, Pat, Stmt, Token};

/// The free names `expr` reads, in order of appearance, with `bound` already in scope.
pub(crate) fn free_names(expr: &Expr, bound: &[Ident]) -> Vec<Ident> {
    let mut finder = Finder { scopes: vec![bound.iter().map(Ident::to_string).collect()], found: Vec::new() };
    finder.visit_expr(expr);
    finder.found
}

/// The names a pattern binds.
pub(crate) fn pattern_bindings(pat: &Pat) -> Vec<Ident> {
    let mut out = Vec::new();
    collect_bindings(pat, &mut out);
    out
}

fn collect_bindings(pat: &Pat, out: &mut Vec<Ident>) {
    match pat {
        Pat::Ident(p) => {
            out.push(p.ident.clone());
            if let Some((_, sub)) = &p.subpat {
                collect_bindings(sub, out);
            }
        }
        Pat::Or(p) => p.cases.iter().for_each(|c| collect_bindings(c, out)),
        Pat::Paren(p) => collect_bindings(&p.pat, out),
        Pat::Reference(p) => collect_bindings(&p.pat, out),
        Pat::Slice(p) => p.elems.iter().for_each(|e| collect_bindings(e, out)),
        Pat::Struct(p) => p.fields.iter().for_each(|f| collect_bindings(&f.pat, out)),
        Pat::Tuple(p) => p.elems.iter().for_each(|e| collect_bindings(e, out)),
        Pat::TupleStruct(p) => p.elems.iter().for_each(|e| collect_bindings(e, out)),
        Pat::Type(p) => collect_bindings(&p.pat, out),
        _ => {}
    }
}

struct Finder {
    scopes: Vec<Vec<String>>,
    found: Vec<Ident>,
}

impl Finder {
    fn is_bound(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| s.iter().any(|b| b == name))
    }

    fn bind(&mut self, names: Vec<Ident>) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.extend(names.iter().map(Ident::to_string));
        }
    }

    fn scoped(&mut self, names: Vec<Ident>, f: impl FnOnce(&mut Self)) {
        self.scopes.push(names.iter().map(Ident::to_string).collect());
        f(self);
        self.scopes.pop();
    }

    fn use_name(&mut self, ident: &Ident) {
        let name = ident.to_string();
        let lower = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') && name != "self" && name != "_";
        if lower && !self.is_bound(&name) {
            self.found.push(ident.clone());
        }
    }

    /// Bindings of an `if`/`while` condition (`let` chains included), visiting its expressions.
    fn condition(&mut self, cond: &Expr) -> Vec<Ident> {
        match cond {
            Expr::Let(l) => {
                self.visit_expr(&l.expr);
                pattern_bindings(&l.pat)
            }
            Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_)) => {
                let mut names = self.condition(&b.left);
                // Later conditions of a chain see earlier bindings.
                self.scopes.push(names.iter().map(Ident::to_string).collect());
                let right = self.condition(&b.right);
                self.scopes.pop();
                names.extend(right);
                names
            }
            other => {
                self.visit_expr(other);
                Vec::new()
            }
        }
    }

    fn format_string(&mut self, lit: &syn::LitStr) {
        let text = lit.value();
        let mut rest = text.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            if let Some(escaped) = after.strip_prefix('{') {
                rest = escaped;
                continue;
            }
            let end = after.find(['}', ':']).unwrap_or(after.len());
            let name = &after[..end];
            if orchestrate_core::template::is_identifier(name) {
                self.use_name(&Ident::new(name, lit.span()));
            }
            rest = after;
        }
    }
}

impl<'ast> Visit<'ast> for Finder {
    fn visit_expr_path(&mut self, e: &'ast syn::ExprPath) {
        if e.qself.is_none() && e.path.leading_colon.is_none() && e.path.segments.len() == 1 {
            let segment = &e.path.segments[0];
            if segment.arguments.is_none() {
                self.use_name(&segment.ident);
            }
        }
    }

    fn visit_expr_call(&mut self, e: &'ast syn::ExprCall) {
        // A bare name in call position is a function, not a field.
        if !matches!(&*e.func, Expr::Path(p) if p.path.segments.len() == 1) {
            self.visit_expr(&e.func);
        }
        for arg in &e.args {
            self.visit_expr(arg);
        }
    }

    fn visit_expr_closure(&mut self, e: &'ast syn::ExprClosure) {
        let names = e.inputs.iter().flat_map(pattern_bindings).collect();
        self.scoped(names, |f| f.visit_expr(&e.body));
    }

    fn visit_block(&mut self, block: &'ast syn::Block) {
        self.scoped(Vec::new(), |f| {
            for stmt in &block.stmts {
                match stmt {
                    Stmt::Local(local) => {
                        if let Some(init) = &local.init {
                            f.visit_expr(&init.expr);
                            if let Some((_, diverge)) = &init.diverge {
                                f.visit_expr(diverge);
                            }
                        }
                        f.bind(pattern_bindings(&local.pat));
                    }
                    Stmt::Item(_) => {}
                    Stmt::Expr(expr, _) => f.visit_expr(expr),
                    Stmt::Macro(m) => f.visit_macro(&m.mac),
                }
            }
        });
    }

    fn visit_arm(&mut self, arm: &'ast syn::Arm) {
        self.scoped(pattern_bindings(&arm.pat), |f| {
            if let Some((_, guard)) = &arm.guard {
                f.visit_expr(guard);
            }
            f.visit_expr(&arm.body);
        });
    }

    fn visit_expr_if(&mut self, e: &'ast syn::ExprIf) {
        self.scopes.push(Vec::new());
        let names = self.condition(&e.cond);
        self.bind(names);
        self.visit_block(&e.then_branch);
        self.scopes.pop();
        if let Some((_, else_branch)) = &e.else_branch {
            self.visit_expr(else_branch);
        }
    }

    fn visit_expr_while(&mut self, e: &'ast syn::ExprWhile) {
        self.scopes.push(Vec::new());
        let names = self.condition(&e.cond);
        self.bind(names);
        self.visit_block(&e.body);
        self.scopes.pop();
    }

    fn visit_expr_let(&mut self, e: &'ast syn::ExprLet) {
        // A `let` outside an `if`/`while` condition: only its expression is a use.
        self.visit_expr(&e.expr);
    }

    fn visit_expr_for_loop(&mut self, e: &'ast syn::ExprForLoop) {
        self.visit_expr(&e.expr);
        self.scoped(pattern_bindings(&e.pat), |f| f.visit_block(&e.body));
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        if let Ok(args) = mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
            if let Some(Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. })) = args.first() {
                self.format_string(s);
            }
            for arg in &args {
                self.visit_expr(arg);
            }
        }
    }

    fn visit_item(&mut self, _: &'ast syn::Item) {}

    fn visit_expr_struct(&mut self, e: &'ast syn::ExprStruct) {
        // The struct's path is a type, never a field; the field values are uses.
        for field in &e.fields {
            self.visit_expr(&field.expr);
        }
        if let Some(rest) = &e.rest {
            self.visit_expr(rest);
        }
    }

    fn visit_expr_method_call(&mut self, e: &'ast syn::ExprMethodCall) {
        self.visit_expr(&e.receiver);
        for arg in &e.args {
            self.visit_expr(arg);
        }
    }

    fn visit_expr_field(&mut self, e: &'ast syn::ExprField) {
        self.visit_expr(&e.base);
    }

    fn visit_type(&mut self, _: &'ast syn::Type) {}

    fn visit_path(&mut self, p: &'ast syn::Path) {
        visit::visit_path(self, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn names(expr: Expr) -> Vec<String> {
        free_names(&expr, &[]).iter().map(Ident::to_string).collect()
    }

    #[test]
    fn finds_field_reads() {
        assert_eq!(names(parse_quote!(pricing.subtotal + tax.amount)), ["pricing", "tax"]);
        assert_eq!(names(parse_quote!(TaxInput::new(&cart, &pricing))), ["cart", "pricing"]);
        assert_eq!(names(parse_quote!(Items::of(&cart))), ["cart"]);
        assert_eq!(names(parse_quote!(Foo { cart, total: pricing.subtotal })), ["cart", "pricing"]);
        assert_eq!(names(parse_quote!(loyalty.tier == Tier::Gold)), ["loyalty"]);
    }

    #[test]
    fn ignores_functions_paths_constants_and_methods() {
        assert_eq!(names(parse_quote!(compute(&cart).len())), ["cart"]);
        assert!(names(parse_quote!(MAX_ITEMS + crate::LIMIT)).is_empty());
        assert!(names(parse_quote!(None)).is_empty());
        assert_eq!(names(parse_quote!(cart.items.iter().count())), ["cart"]);
    }

    #[test]
    fn respects_bindings_inside_the_expression() {
        assert_eq!(names(parse_quote!(cart.items.iter().map(|item| item.qty).sum::<u32>())), ["cart"]);
        assert_eq!(
            names(parse_quote!({
                let n = cart.items.len();
                n * rate.value
            })),
            ["cart", "rate"]
        );
        assert_eq!(
            names(parse_quote!(match tier {
                Some(t) => t.rank,
                None => fallback,
            })),
            ["tier", "fallback"]
        );
        assert_eq!(names(parse_quote!(if let Some(s) = &shipping { s.cost } else { base })), ["shipping", "base"]);
        assert_eq!(
            names(parse_quote!(if let Some(a) = x
                && let Some(b) = a.next
            {
                b
            } else {
                0
            })),
            ["x"]
        );
        assert_eq!(
            names(parse_quote!({
                let mut t = 0;
                for i in &cart.items {
                    t += i.qty
                }
                t
            })),
            ["cart"]
        );
        // A name used before it is bound by `let` is still a use.
        assert_eq!(
            names(parse_quote!({
                let x = x + 1;
                x
            })),
            ["x"]
        );
    }

    #[test]
    fn searches_macro_arguments_and_inline_format_args() {
        assert_eq!(names(parse_quote!(format!("{}-{user_id}", cart.id))), ["user_id", "cart"]);
        assert_eq!(names(parse_quote!(format!("{{literal}} {x:>4}"))), ["x"]);
        assert_eq!(names(parse_quote!(vec![a, b])), ["a", "b"]);
    }

    #[test]
    fn outer_bindings_are_not_dependencies() {
        let item: Ident = parse_quote!(item);
        let found = free_names(&parse_quote!(item.sku), &[item]);
        assert!(found.is_empty());
    }
}
