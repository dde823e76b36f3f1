//! Compile-pass and compile-fail cases of the macros (axum-macros layout): every file in `pass/`
//! must compile; every file in `fail/` must fail with exactly the `.stderr` beside it.
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p orchestrate-ui-tests`,
//! then read every changed `.stderr` before committing it.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("pass/*.rs");
    cases.compile_fail("fail/*.rs");
}
