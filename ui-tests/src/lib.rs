//! Compile-pass and compile-fail cases of the macros live in `pass/` and `fail/`; `tests/ui.rs` runs them.
