//! The fuzz corpus and the inputs fuzzing found, run natively through the same property checks
//! the fuzz targets assert (`fuzz/props.rs`): no libFuzzer, no nightly. `make fuzz` runs the
//! targets themselves.
//!
//! `fuzz/corpus/<target>/*` must pass, tolerating the findings listed in `props::OPEN` (reported,
//! not fixed yet), as the fuzz targets do. `fuzz/regressions/<target>/*` are minimised inputs that
//! once crashed or violated a property; they must pass strictly, except files named `open-*`: the
//! inputs of the `props::OPEN` findings, which must still fail strictly and pass tolerantly (when
//! the fix lands, drop the entry from `props::OPEN` and the `open-` prefix from the file name).

#[path = "../fuzz/props.rs"]
mod props;

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

thread_local! {
    /// Set while an expected panic is caught: the panic hook stays quiet.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

fn passes(target: &str, file: &Path, tolerant: bool) -> Result<(), String> {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.get() {
                default(info);
            }
        }));
    });
    let data = std::fs::read(file).unwrap();
    props::tolerate_open(tolerant);
    CATCHING.set(true);
    let result = catch_unwind(AssertUnwindSafe(|| props::run(target, &data)));
    CATCHING.set(false);
    result.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn open(file: &Path) -> bool {
    file.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("open-"))
}

fn check(target: &str) {
    let corpus = inputs("corpus", target);
    assert!(!corpus.is_empty(), "fuzz/corpus/{target} is empty");
    let mut failures = Vec::new();
    for file in &corpus {
        if let Err(message) = passes(target, file, true) {
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    for file in inputs("regressions", target) {
        match (passes(target, &file, false), open(&file)) {
            (Err(message), false) => failures.push(format!("{}: {message}", file.display())),
            (Ok(()), true) => failures.push(format!("{}: passes now; drop the open- prefix", file.display())),
            (Err(_), true) => {
                if let Err(message) = passes(target, &file, true) {
                    failures.push(format!("{}: fails beyond its open finding: {message}", file.display()));
                }
            }
            (Ok(()), false) => {}
        }
    }
    assert!(failures.is_empty(), "{} input(s) fail:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_target_has_a_test() {
    assert_eq!(props::TARGETS, ["resource", "patch", "filter", "query", "token", "search", "config"]);
}

#[test]
fn resource() {
    check("resource");
}

#[test]
fn patch() {
    check("patch");
}

#[test]
fn filter() {
    check("filter");
}

#[test]
fn query() {
    check("query");
}

#[test]
fn token() {
    check("token");
}

#[test]
fn search() {
    check("search");
}

#[test]
fn config() {
    check("config");
}
