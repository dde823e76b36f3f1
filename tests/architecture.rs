//! The module structure of the workspace: no import circle between sibling modules of
//! `orchestrate-core`, `orchestrate-runtime` and `orchestrate-macros`, an executor that names
//! no HTTP client, and a shared store that reaches no feature.
//!
//! A plain reader of the source files (std only). Each `.rs` file under a crate's `src/` is a
//! module (`client/mod.rs` → `client`, `client/custom.rs` → `client::custom`), and so is each
//! inline `mod name { .. }`. A reference is a `use` path (grouped ones flattened) or an inline
//! path rooted at `crate::`, `super::` or `self::`, resolved against the module it is written in.
//! A name a module brings in with `use` resolves to the module it comes from, so `crate::Runtime`
//! (the crate root's `pub use runtime::{Runtime, ..}`) is a reference to `runtime`. Comments,
//! string and character literals, and everything from a `#[cfg(test)]` line followed by
//! `mod tests` on, are left out.
//!
//! For every module with children, a reference from anywhere inside child A to anywhere inside
//! sibling B is an edge A → B; a reference between a module and its own children is none. Every
//! such graph must be acyclic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A module's path below its crate root (`[]` is the root).
type ModPath = Vec<String>;

// ---------------------------------------------------------------------------------------------
// Reading one file

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Punct(char),
    /// A string, character or number literal, or a lifetime: never part of a path.
    Other,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// The text before the unit tests: everything up to a line containing `#[cfg(test)]` whose next
/// line that is not blank or another attribute contains `mod tests` (or that line itself does).
fn without_tests(text: &str) -> &str {
    let lines: Vec<(usize, &str)> = text
        .split_inclusive('\n')
        .scan(0, |offset, line| {
            let start = *offset;
            *offset += line.len();
            Some((start, line))
        })
        .collect();
    for (i, &(start, line)) in lines.iter().enumerate() {
        let Some(at) = line.find("#[cfg(test)]") else { continue };
        let rest = &line[at + "#[cfg(test)]".len()..];
        let next = lines[i + 1..].iter().map(|(_, l)| l.trim()).find(|l| !l.is_empty() && !l.starts_with("#["));
        if rest.contains("mod tests") || next.is_some_and(|l| l.contains("mod tests")) {
            return &text[..start];
        }
    }
    text
}

/// The tokens of `code` that matter to paths, with their 1-based lines; comments (line, block and
/// doc comments) are dropped, literals and lifetimes are [`Tok::Other`].
fn tokenize(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Skips a quoted literal starting at the opening quote `chars[i]`; returns the index past it.
    let quoted = |mut i: usize, line: &mut usize, quote: char| {
        i += 1;
        while i < chars.len() && chars[i] != quote {
            if chars[i] == '\\' {
                i += 1;
            }
            if at(i) == '\n' {
                *line += 1;
            }
            i += 1;
        }
        i + 1
    };
    while i < chars.len() {
        let c = chars[i];
        let start_line = line;
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == '"' {
            i = quoted(i, &mut line, '"');
            tokens.push(Token { tok: Tok::Other, line: start_line });
        } else if c == '\'' {
            if at(i + 1) == '\\' || at(i + 2) == '\'' {
                i = quoted(i, &mut line, '\'');
            } else {
                // A lifetime or a label.
                i += 1;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
            }
            tokens.push(Token { tok: Tok::Other, line: start_line });
        } else if c.is_ascii_digit() {
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            tokens.push(Token { tok: Tok::Other, line: start_line });
        } else if c.is_alphabetic() || c == '_' {
            let begin = i;
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            let word: String = chars[begin..i].iter().collect();
            let hashes = chars[i..].iter().take_while(|&&h| h == '#').count();
            if matches!(word.as_str(), "r" | "br" | "cr") && at(i + hashes) == '"' {
                // Raw string: up to the quote followed by as many `#`.
                i += hashes + 1;
                while i < chars.len()
                    && !(chars[i] == '"' && chars[i + 1..].iter().take_while(|&&h| h == '#').count() >= hashes)
                {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 1 + hashes;
                tokens.push(Token { tok: Tok::Other, line: start_line });
            } else if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                i = quoted(i, &mut line, '"');
                tokens.push(Token { tok: Tok::Other, line: start_line });
            } else if word == "b" && at(i) == '\'' {
                i = quoted(i, &mut line, '\'');
                tokens.push(Token { tok: Tok::Other, line: start_line });
            } else if word == "r" && hashes == 1 && (at(i + 1).is_alphabetic() || at(i + 1) == '_') {
                // Raw identifier `r#name`.
                i += 1;
                let begin = i;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
                tokens.push(Token { tok: Tok::Ident(chars[begin..i].iter().collect()), line: start_line });
            } else {
                tokens.push(Token { tok: Tok::Ident(word), line: start_line });
            }
        } else if c == ':' && at(i + 1) == ':' {
            tokens.push(Token { tok: Tok::Sep, line });
            i += 2;
        } else {
            tokens.push(Token { tok: Tok::Punct(c), line });
            i += 1;
        }
    }
    tokens
}

/// One path a `use` declaration names, flattened out of its group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UseLeaf {
    /// As written, `self` of a group dropped: `["crate", "client", "CallClient"]`.
    path: Vec<String>,
    /// The name it binds (`as` taken into account); `None` for a glob or `as _`.
    name: Option<String>,
    line: usize,
}

/// Parses the use tree at `tokens[*i]` below `prefix`, pushing its leaves.
fn use_tree(tokens: &[Token], i: &mut usize, prefix: &[String], out: &mut Vec<UseLeaf>) {
    let mut path = prefix.to_vec();
    let mut line = tokens.get(*i).map_or(0, |t| t.line);
    if tokens.get(*i).is_some_and(|t| t.tok == Tok::Sep) {
        // `::name`: an extern crate, never a module of this one.
        path.push(String::new());
        *i += 1;
    }
    loop {
        match tokens.get(*i).map(|t| &t.tok) {
            Some(Tok::Ident(word)) => {
                path.push(word.clone());
                line = tokens[*i].line;
                *i += 1;
                if tokens.get(*i).is_some_and(|t| t.tok == Tok::Sep) {
                    *i += 1;
                } else {
                    break;
                }
            }
            Some(Tok::Punct('{')) => {
                *i += 1;
                while let Some(token) = tokens.get(*i) {
                    match token.tok {
                        Tok::Punct('}') => {
                            *i += 1;
                            break;
                        }
                        Tok::Punct(',') => *i += 1,
                        _ => {
                            let before = *i;
                            use_tree(tokens, i, &path, out);
                            if *i == before {
                                *i += 1;
                            }
                        }
                    }
                }
                return;
            }
            Some(Tok::Punct('*')) => {
                *i += 1;
                out.push(UseLeaf { path, name: None, line });
                return;
            }
            _ => return,
        }
    }
    if path.last().is_some_and(|s| s == "self") {
        path.pop();
    }
    let mut name = path.last().cloned();
    if tokens.get(*i).is_some_and(|t| t.tok == Tok::Ident("as".to_owned())) {
        name = match tokens.get(*i + 1).map(|t| &t.tok) {
            Some(Tok::Ident(alias)) if alias != "_" => Some(alias.clone()),
            _ => None,
        };
        *i += 2;
    }
    out.push(UseLeaf { path, name, line });
}

/// What one file says about paths.
#[derive(Debug, Default)]
struct FileRefs {
    /// Inline modules, as paths below the file's module.
    inline_modules: Vec<ModPath>,
    /// `use` leaves, each with the (inline) module it is declared in, below the file's module.
    uses: Vec<(ModPath, UseLeaf)>,
    /// Paths outside `use` of two or more segments: (inline module, segments, line). Those
    /// rooted at `crate`, `super` or `self` are references; the others are kept for the
    /// executor's check.
    paths: Vec<(ModPath, Vec<String>, usize)>,
}

fn file_refs(text: &str) -> FileRefs {
    let tokens = tokenize(without_tests(text));
    let mut refs = FileRefs::default();
    let ident = |k: usize| match tokens.get(k).map(|t| &t.tok) {
        Some(Tok::Ident(word)) => Some(word.as_str()),
        _ => None,
    };
    let is = |k: usize, tok: &Tok| tokens.get(k).is_some_and(|t| t.tok == *tok);
    // `>` of `<T as X>` (before `::item`), not of `->` or `=>`.
    let closes_generics =
        |k: usize| is(k, &Tok::Punct('>')) && !(k > 0 && (is(k - 1, &Tok::Punct('-')) || is(k - 1, &Tok::Punct('='))));
    // Inline modules open at a brace depth; `pending` is a `mod name` waiting for its `{`.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut pending: Option<String> = None;
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        let here: ModPath = inline.iter().map(|(name, _)| name.clone()).collect();
        match &tokens[i].tok {
            Tok::Punct('{') => {
                depth += 1;
                if let Some(name) = pending.take() {
                    inline.push((name, depth));
                    refs.inline_modules.push(inline.iter().map(|(name, _)| name.clone()).collect());
                }
                i += 1;
            }
            Tok::Punct('}') => {
                if inline.last().is_some_and(|&(_, d)| d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(word) if word == "mod" => {
                pending = ident(i + 1).filter(|_| is(i + 2, &Tok::Punct('{'))).map(str::to_owned);
                i += 1;
            }
            // `use<'a>` (precise capturing) is no declaration.
            Tok::Ident(word) if word == "use" && !is(i + 1, &Tok::Punct('<')) => {
                i += 1;
                let mut leaves = Vec::new();
                use_tree(&tokens, &mut i, &[], &mut leaves);
                refs.uses.extend(leaves.into_iter().map(|leaf| (here.clone(), leaf)));
            }
            // A path's first segment, or the `::` that starts an extern crate's path (not one
            // after a segment or after `<T as X>`).
            Tok::Ident(_) | Tok::Sep
                if (ident(i).is_some() && is(i + 1, &Tok::Sep) && !(i > 0 && is(i - 1, &Tok::Sep)))
                    || (is(i, &Tok::Sep)
                        && ident(i + 1).is_some()
                        && !(i > 0 && (ident(i - 1).is_some() || closes_generics(i - 1)))) =>
            {
                // `$crate` is the macro's crate; `pub(in crate::a)` is a visibility.
                let macro_crate = i > 0 && is(i - 1, &Tok::Punct('$'));
                let visibility = i > 1 && ident(i - 1) == Some("in") && is(i - 2, &Tok::Punct('('));
                let line = tokens[i].line;
                let mut segments = Vec::new();
                if let Some(word) = ident(i) {
                    segments.push(word.to_owned());
                    i += 1;
                } else {
                    segments.push(String::new());
                }
                while is(i, &Tok::Sep) {
                    match ident(i + 1) {
                        Some(next) => segments.push(next.to_owned()),
                        None => break,
                    }
                    i += 2;
                }
                if segments.len() > 1 && !macro_crate && !visibility {
                    refs.paths.push((here, segments, line));
                }
            }
            _ => i += 1,
        }
    }
    refs
}

// ---------------------------------------------------------------------------------------------
// One crate

/// The module a file under `src/` defines: `lib.rs` → root, `client/mod.rs` → `client`,
/// `client/custom.rs` → `client::custom`.
fn module_of(relative: &str) -> ModPath {
    let mut segments: ModPath = relative.trim_end_matches(".rs").split('/').map(str::to_owned).collect();
    if segments.last().is_some_and(|s| s == "mod") || segments == ["lib"] || segments == ["main"] {
        segments.pop();
    }
    segments
}

/// A reference from one module to another, where it is written.
#[derive(Debug, Clone)]
struct Reference {
    from: ModPath,
    to: ModPath,
    file: String,
    line: usize,
    written: String,
}

#[derive(Debug)]
struct Crate {
    /// Shown in messages, e.g. `orchestrate-runtime/src`.
    name: String,
    modules: BTreeSet<ModPath>,
    /// The names each module's `use` declarations bind, as absolute paths.
    bindings: HashMap<(ModPath, String), Vec<String>>,
    references: Vec<Reference>,
    /// Every path of every file, as written; for the executor's check.
    paths: Vec<Written>,
}

/// A path as written in a file, with the module it names when it is one of this crate's.
#[derive(Debug)]
struct Written {
    file: String,
    line: usize,
    path: Vec<String>,
    module: Option<ModPath>,
}

impl Crate {
    /// Reads `files` (path below `src/`, text) of the crate `name`.
    fn new(name: &str, files: &[(String, String)]) -> Self {
        let read: Vec<(String, ModPath, FileRefs)> =
            files.iter().map(|(path, text)| (path.clone(), module_of(path), file_refs(text))).collect();
        let mut modules: BTreeSet<ModPath> = BTreeSet::new();
        for (_, module, refs) in &read {
            modules.insert(module.clone());
            for inline in &refs.inline_modules {
                modules.insert([module.clone(), inline.clone()].concat());
            }
        }
        let mut krate =
            Self { name: name.to_owned(), modules, bindings: HashMap::new(), references: vec![], paths: vec![] };
        for (_, module, refs) in &read {
            for (inline, leaf) in &refs.uses {
                let here = [module.clone(), inline.clone()].concat();
                if let (Some(name), Some(absolute)) = (&leaf.name, krate.absolute(&here, &leaf.path)) {
                    krate.bindings.insert((here, name.clone()), absolute);
                }
            }
        }
        for (file, module, refs) in &read {
            let mut written: Vec<(&ModPath, &Vec<String>, usize, bool)> = refs
                .uses
                .iter()
                .map(|(inline, leaf)| (inline, &leaf.path, leaf.line, true))
                .chain(refs.paths.iter().map(|(inline, path, line)| (inline, path, *line, false)))
                .collect();
            written.sort_by_key(|&(_, _, line, _)| line);
            for (inline, path, line, in_use) in written {
                let here = [module.clone(), inline.clone()].concat();
                let rooted = path.first().is_some_and(|s| matches!(s.as_str(), "crate" | "super" | "self"));
                // A `use` path may also be relative (`pub use client::X` at the root).
                let to = if rooted || in_use {
                    krate.absolute(&here, path).map(|absolute| krate.resolve(&absolute, 0))
                } else {
                    None
                };
                let file = format!("{name}/{file}");
                if let Some(to) = &to {
                    krate.references.push(Reference {
                        from: here.clone(),
                        to: to.clone(),
                        file: file.clone(),
                        line,
                        written: path.join("::"),
                    });
                }
                krate.paths.push(Written { file, line, path: path.clone(), module: to });
            }
        }
        krate
    }

    /// `path` as written in module `here`, from the crate root; `None` for another crate's.
    fn absolute(&self, here: &ModPath, path: &[String]) -> Option<Vec<String>> {
        let (first, rest) = path.split_first()?;
        match first.as_str() {
            "crate" => Some(rest.to_vec()),
            "self" => Some([here.as_slice(), rest].concat()),
            "super" => {
                let mut base = here.clone();
                let ups = path.iter().take_while(|s| *s == "super").count();
                for _ in 0..ups {
                    base.pop()?;
                }
                Some([base.as_slice(), &path[ups..]].concat())
            }
            // A relative path in a `use`: a child module of `here`.
            _ if self.modules.contains(&[here.as_slice(), &path[..1]].concat()) => {
                Some([here.as_slice(), path].concat())
            }
            _ => None,
        }
    }

    /// The module an absolute path names: the deepest module along it, following the names
    /// modules bind with `use` (so `Runtime` at the root is the `runtime` module).
    fn resolve(&self, path: &[String], hops: usize) -> ModPath {
        let mut module = ModPath::new();
        for (k, segment) in path.iter().enumerate() {
            let child = [module.as_slice(), std::slice::from_ref(segment)].concat();
            if self.modules.contains(&child) {
                module = child;
            } else if let Some(target) = self.bindings.get(&(module.clone(), segment.clone())).filter(|_| hops < 16) {
                return self.resolve(&[target.as_slice(), &path[k + 1..]].concat(), hops + 1);
            } else {
                break;
            }
        }
        module
    }

    /// For every module with children, the edges among its children, each with its first reference.
    fn sibling_graphs(&self) -> BTreeMap<ModPath, BTreeMap<(String, String), &Reference>> {
        let mut graphs: BTreeMap<ModPath, BTreeMap<(String, String), &Reference>> = BTreeMap::new();
        for reference in &self.references {
            let common = reference.from.iter().zip(&reference.to).take_while(|(a, b)| a == b).count();
            if reference.from.len() > common && reference.to.len() > common {
                let edge = (reference.from[common].clone(), reference.to[common].clone());
                graphs.entry(reference.from[..common].to_vec()).or_default().entry(edge).or_insert(reference);
            }
        }
        graphs
    }

    /// Every import circle between sibling modules, one message each; empty when there is none.
    fn circles(&self) -> Vec<String> {
        let mut messages = Vec::new();
        for (parent, edges) in self.sibling_graphs() {
            let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (a, b) in edges.keys() {
                next.entry(a).or_default().push(b);
            }
            for cycle in elementary_cycles(&next) {
                let names: Vec<&str> = cycle.iter().copied().chain([cycle[0]]).collect();
                let mut message = format!("{}: in `{}`: {}", self.name, display(&parent), names.join(" -> "));
                for pair in names.windows(2) {
                    let r = edges[&(pair[0].to_owned(), pair[1].to_owned())];
                    let _ = write!(message, "\n    {} -> {}: {}:{}: {}", pair[0], pair[1], r.file, r.line, r.written);
                }
                messages.push(message);
            }
        }
        messages
    }
}

fn display(module: &ModPath) -> String {
    if module.is_empty() { "crate".to_owned() } else { format!("crate::{}", module.join("::")) }
}

/// The elementary cycles of a small directed graph, each starting at its least node, shortest
/// first; at most 100.
fn elementary_cycles<'a>(next: &BTreeMap<&'a str, Vec<&'a str>>) -> Vec<Vec<&'a str>> {
    fn walk<'a>(
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        start: &'a str,
        path: &mut Vec<&'a str>,
        out: &mut Vec<Vec<&'a str>>,
    ) {
        let last = path[path.len() - 1];
        for &node in next.get(last).into_iter().flatten() {
            if out.len() >= 100 {
                return;
            }
            if node == start {
                out.push(path.clone());
            } else if node > start && !path.contains(&node) {
                path.push(node);
                walk(next, start, path, out);
                path.pop();
            }
        }
    }
    let mut out = Vec::new();
    for &start in next.keys() {
        walk(next, start, &mut vec![start], &mut out);
    }
    out.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    out
}

// ---------------------------------------------------------------------------------------------
// The workspace

/// The `.rs` files below `dir`, as (path relative to `dir` with `/`, text), sorted.
fn sources(dir: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).unwrap().components();
                let relative: Vec<String> = relative.map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                out.push((relative.join("/"), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

fn workspace_crate(name: &str) -> Crate {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(name).join("src");
    Crate::new(&format!("{name}/src"), &sources(&src))
}

fn assert_no_circle(name: &str) {
    let krate = workspace_crate(name);
    assert!(krate.modules.len() > 1 && !krate.references.is_empty(), "{name}: nothing read; is the reader broken?");
    let circles = krate.circles();
    assert!(circles.is_empty(), "{} import circle(s) between sibling modules:\n{}", circles.len(), circles.join("\n"));
}

#[test]
fn orchestrate_core_has_no_import_circle() {
    assert_no_circle("orchestrate-core");
}

#[test]
fn orchestrate_runtime_has_no_import_circle() {
    assert_no_circle("orchestrate-runtime");
}

#[test]
fn orchestrate_macros_has_no_import_circle() {
    assert_no_circle("orchestrate-macros");
}

/// What in the executor's files names the HTTP side: a path through the `client` module (also by
/// a name the crate root re-exports from it, such as `crate::ServiceClient`), through `http::`, or
/// through `axum`.
fn executor_http_names(krate: &Crate) -> Vec<String> {
    let prefix = format!("{}/executor/", krate.name);
    krate
        .paths
        .iter()
        .filter(|w| w.file.starts_with(&prefix))
        .filter(|w| {
            let through_client = w.module.as_ref().is_some_and(|m| m.first().is_some_and(|s| s == "client"));
            let names_http = w.path.split_last().is_some_and(|(_, init)| init.iter().any(|s| s == "http"));
            through_client || names_http || w.path.iter().any(|s| s == "client" || s == "axum")
        })
        .map(|w| format!("{}:{}: {}", w.file, w.line, w.path.join("::")))
        .collect()
}

#[test]
fn the_executor_names_no_http_client() {
    let krate = workspace_crate("orchestrate-runtime");
    let found = executor_http_names(&krate);
    assert!(found.is_empty(), "the executor names the HTTP side:\n{}", found.join("\n"));
}

/// What the store's files reach in their crate besides the store itself and `telemetry` (its
/// metric): the store is the connection the stateful features (cache, rate limits, idempotency,
/// sagas) share, so they may use it and it must know none of them, nor the runtime it lives in.
fn store_reaches(krate: &Crate) -> Vec<String> {
    krate
        .references
        .iter()
        .filter(|r| r.from.first().is_some_and(|m| m == "store"))
        .filter(|r| !r.to.first().is_some_and(|m| m == "store" || m == "telemetry"))
        .map(|r| format!("{}:{}: {}", r.file, r.line, r.written))
        .collect()
}

#[test]
fn the_store_reaches_nothing_but_its_metric() {
    let krate = workspace_crate("orchestrate-runtime");
    let found = store_reaches(&krate);
    assert!(found.is_empty(), "the store reaches other modules:\n{}", found.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The reader itself

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(p, t)| ((*p).to_owned(), (*t).to_owned())).collect()
}

fn edges(krate: &Crate) -> Vec<String> {
    krate
        .sibling_graphs()
        .into_iter()
        .flat_map(|(parent, edges)| edges.into_keys().map(move |(a, b)| format!("{}: {a} -> {b}", display(&parent))))
        .collect()
}

fn s(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn files_map_to_module_paths() {
    assert_eq!(module_of("lib.rs"), ModPath::new());
    assert_eq!(module_of("client/mod.rs"), s(&["client"]));
    assert_eq!(module_of("client/custom.rs"), s(&["client", "custom"]));
    assert_eq!(module_of("telemetry/metrics.rs"), s(&["telemetry", "metrics"]));
    assert_eq!(module_of("runtime.rs"), s(&["runtime"]));
}

#[test]
fn grouped_uses_are_flattened_with_their_names() {
    let refs = file_refs("pub use crate::{a::X, b::{self, Y as Z, c::*}, d};\nuse std::fmt;\nuse ::x::y;\n");
    let leaves: Vec<(String, Option<String>)> =
        refs.uses.iter().map(|(_, l)| (l.path.join("::"), l.name.clone())).collect();
    let name = |n: &str| Some(n.to_owned());
    assert_eq!(
        leaves,
        [
            ("crate::a::X".to_owned(), name("X")),
            ("crate::b".to_owned(), name("b")),
            ("crate::b::Y".to_owned(), name("Z")),
            ("crate::b::c".to_owned(), None),
            ("crate::d".to_owned(), name("d")),
            ("std::fmt".to_owned(), name("fmt")),
            ("::x::y".to_owned(), name("y")),
        ]
    );
    // A group over several lines: each leaf has its own line.
    let refs = file_refs("use crate::runtime::{\n    ConfigError,\n    Runtime,\n};");
    assert_eq!(refs.uses.iter().map(|(_, l)| l.line).collect::<Vec<_>>(), [2, 3]);
}

#[test]
fn comments_strings_and_unit_tests_are_no_references() {
    let text = "\
//! Uses [`crate::a`].
/// See crate::b::X.
/* crate::c::Y /* nested crate::c */ */
const S: &str = \"crate::d::Z // not a comment\";
const R: &str = r#\"crate::e \"quoted\" \"#;
const C: char = '\"';
fn f<'a>(x: &'a str) -> impl Sized + use<'a> { crate::real::call(x) }
macro_rules! m { () => { $crate::macro_path::X } }
pub(in crate::vis) struct V;
#[cfg(test)]
mod tests {
    use crate::test_only::X;
}
";
    let refs = file_refs(text);
    let paths: Vec<String> = refs.paths.iter().map(|(_, p, _)| p.join("::")).collect();
    assert_eq!(paths, ["crate::real::call"]);
    assert_eq!(refs.paths[0].2, 7, "line of the reference");
    assert!(refs.uses.is_empty(), "{:?}", refs.uses);
    // `#[cfg(test)]` alone (not followed by `mod tests`) cuts nothing.
    let refs = file_refs("#[cfg(test)]\nfn helper() {}\nuse crate::kept::X;\n");
    assert_eq!(refs.uses.len(), 1);
}

#[test]
fn super_and_self_paths_resolve_from_the_files_module() {
    let krate = Crate::new(
        "k",
        &files(&[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a/mod.rs", "mod x;\nmod y;\nuse self::x::Thing;\n"),
            ("a/x.rs", "use super::y::Other;\nfn f() { super::super::b::call(); }\n"),
            ("a/y.rs", "fn g() { crate::a::x::h(); }\n"),
            ("b.rs", "fn call() {}\n"),
        ]),
    );
    // `a` (a/mod.rs) using its own child `x` is no edge.
    assert_eq!(edges(&krate), ["crate: a -> b", "crate::a: x -> y", "crate::a: y -> x"]);
    let circles = krate.circles();
    assert_eq!(circles.len(), 1, "{circles:?}");
    assert_eq!(
        circles[0],
        "k: in `crate::a`: x -> y -> x\n    x -> y: k/a/x.rs:1: super::y::Other\n    y -> x: k/a/y.rs:1: crate::a::x::h"
    );
}

#[test]
fn names_the_root_reexports_resolve_to_their_module() {
    let krate = Crate::new(
        "k",
        &files(&[
            (
                "lib.rs",
                "pub mod client;\nmod runtime;\npub use client::{CallClient, Other as Renamed};\npub use runtime::{\n    Runtime,\n};\n",
            ),
            ("client/mod.rs", "mod custom;\npub use custom::CallClient;\n"),
            ("client/custom.rs", "use crate::Runtime;\n"),
            ("runtime.rs", "fn f(c: crate::CallClient, r: crate::Renamed) {}\n"),
        ]),
    );
    assert_eq!(krate.resolve(&s(&["CallClient"]), 0), s(&["client", "custom"]));
    assert_eq!(krate.resolve(&s(&["Renamed"]), 0), s(&["client"]));
    assert_eq!(krate.resolve(&s(&["Runtime", "builder"]), 0), s(&["runtime"]));
    assert_eq!(edges(&krate), ["crate: client -> runtime", "crate: runtime -> client"]);
    assert_eq!(krate.circles().len(), 1);
}

#[test]
fn inline_modules_are_modules() {
    let krate = Crate::new(
        "k",
        &files(&[
            ("lib.rs", "mod a;\nmod b;\npub mod inner {\n    pub use super::a::X;\n}\n"),
            ("a.rs", "use crate::b::Y;\n"),
            ("b.rs", "use crate::inner::X;\n"),
        ]),
    );
    assert!(krate.modules.contains(&s(&["inner"])));
    // `inner::X` is `a`'s: b -> a, a -> b.
    assert_eq!(edges(&krate), ["crate: a -> b", "crate: b -> a", "crate: inner -> a"]);
}

#[test]
fn every_cycle_is_listed_once() {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in [("a", "b"), ("b", "a"), ("b", "c"), ("c", "a"), ("c", "d")] {
        next.entry(a).or_default().push(b);
    }
    assert_eq!(elementary_cycles(&next), [vec!["a", "b"], vec!["a", "b", "c"]]);
}

#[test]
fn the_executor_check_sees_client_http_and_axum_paths() {
    let krate = Crate::new(
        "k",
        &files(&[
            ("lib.rs", "pub mod client;\npub mod executor;\npub use client::ServiceClient;\n"),
            ("client.rs", "pub struct ServiceClient;\n"),
            (
                "executor/mod.rs",
                "// crate::client::Doc in a comment\nuse crate::ServiceClient;\nuse http::{Method, header};\n\
                 fn f(client: &str) { client.len(); axum::Json(1); let _ = \"http::x\"; }\n\
                 fn g() -> ::http::StatusCode { <u8 as Default>::default(); todo!() }\n",
            ),
        ]),
    );
    assert_eq!(
        executor_http_names(&krate),
        [
            "k/executor/mod.rs:2: crate::ServiceClient",
            "k/executor/mod.rs:3: http::Method",
            "k/executor/mod.rs:3: http::header",
            "k/executor/mod.rs:4: axum::Json",
            "k/executor/mod.rs:5: ::http::StatusCode",
        ]
    );
}

#[test]
fn the_store_check_sees_every_module_outside_it() {
    let krate = Crate::new(
        "k",
        &files(&[
            ("lib.rs", "pub mod cache;\npub mod store;\npub mod telemetry;\nmod runtime;\npub use runtime::Runtime;\n"),
            ("store/mod.rs", "mod health;\nuse crate::Runtime;\n"),
            ("store/health.rs", "use crate::telemetry::metrics;\nfn f() { super::super::cache::hit(); }\n"),
            ("cache.rs", "use crate::store::Store;\n"),
            ("telemetry.rs", ""),
            ("runtime.rs", ""),
        ]),
    );
    assert_eq!(
        store_reaches(&krate),
        ["k/store/mod.rs:2: crate::Runtime", "k/store/health.rs:2: super::super::cache::hit"]
    );
}
