//! What the suites share: the fake editor and the fake model server, `punie serve` under test,
//! the model client driven against the fake server, snapshots, and fixture loading.

pub mod editor;
pub mod fake_model;
pub mod model_client;
pub mod served;
pub mod snapshot;

/// The text of a file under `tests/fixtures/`, compiled in (the path is checked at build time).
macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $path
        ))
    };
}
pub(crate) use fixture;

/// The name libtest knows a test function by, to re-run this binary with `--exact NAME` as a
/// helper process: its module path without the crate's name. Pass `module_path!()` of the
/// module that defines `function`, so moving the test keeps its helper found.
pub fn libtest_name(module_path: &str, function: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, path)) => format!("{path}::{function}"),
        None => function.to_owned(),
    }
}
