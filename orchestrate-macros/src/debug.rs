//! `ORCHESTRATE_MACROS_DEBUG=1` (or `=Summary` for one item) prints each expansion to stderr.

use proc_macro2::TokenStream;

pub(crate) fn print(item: &str, output: &TokenStream) {
    let Ok(filter) = std::env::var("ORCHESTRATE_MACROS_DEBUG") else { return };
    if filter == "1" || filter == "all" || filter == item {
        eprintln!("// ---- orchestrate expansion of `{item}` ----\n{output}\n// ---- end of `{item}` ----");
    }
}
