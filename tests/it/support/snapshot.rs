//! Snapshot files of user-visible text in `tests/snapshots/`, rewritten on request.

use std::path::Path;

/// Compares `actual` with `tests/snapshots/NAME.txt`; with `UPDATE_SNAPSHOTS` set in the
/// environment, writes it there instead (after a deliberate change).
#[track_caller]
pub fn assert_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}: run with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from {} (run with UPDATE_SNAPSHOTS=1 if the change is deliberate)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}
