//! `ORCHESTRATE_MACROS_DEBUG=1` prints each expansion to stderr; `=Summary` prints one endpoint's,
//! `=checkout` a whole `#[api]` module's (its endpoints and router), `=services` the `services!`
//! declaration's.

use proc_macro2::TokenStream;

pub(crate) fn print(item: &str, output: &TokenStream) {
    let Ok(filter) = std::env::var("ORCHESTRATE_MACROS_DEBUG") else { return };
    if filter == "1" || filter == "all" || filter == item {
        eprintln!("// ---- orchestrate expansion of `{item}` ----\n{output}\n// ---- end of `{item}` ----");
    }
}
