//! The fuzz targets' bodies (`fuzz/src/lib.rs`) compiled here and run on their seeds: a
//! change of an API they call breaks `make test` (it once went unnoticed until the next
//! `make fuzz`), and every seed, including the inputs of past findings, stays panic-free.

#[path = "../../fuzz/src/lib.rs"]
mod bodies;

use std::path::{Path, PathBuf};

fn files(dir: &Path, ext: Option<&str>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| ext.is_none_or(|x| p.extension().is_some_and(|e| e == x)))
        .collect();
    out.sort();
    out
}

fn seeds(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let all = if target == "parse_sanitize" {
        // The parse's seeds are its golden fixtures (as `make fuzz` seeds it).
        files(&root.join("tests/fixtures/parse"), Some("eml"))
    } else {
        files(&root.join("fuzz/seeds").join(target), None)
    };
    assert!(!all.is_empty(), "no seeds for {target}");
    all
}

fn run(target: &str, body: fn(&[u8])) {
    for seed in seeds(target) {
        let data = std::fs::read(&seed).expect("a seed");
        // Each seed whole, and cut at every 97th byte (partial commands, headers, parts).
        body(&data);
        for end in (0..data.len()).step_by(97) {
            body(&data[..end]);
        }
    }
}

#[test]
fn admin_input_seeds_run_without_a_panic() {
    run("admin_input", bodies::admin_input);
}

#[test]
fn parse_sanitize_seeds_run_without_a_panic() {
    run("parse_sanitize", bodies::parse_sanitize);
}

#[test]
fn smtp_command_seeds_run_without_a_panic() {
    run("smtp_command", bodies::smtp_command);
}
