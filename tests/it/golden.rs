//! Golden fixtures: every `tests/fixtures/parse/*.eml` parses into exactly the payload in
//! the `.json` beside it, and that payload matches the JSON Schema. `POSTWIRE_BLESS=1`
//! rewrites the `.json` files from the current output (review the diff before committing).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use postwire_e2e::payload::fixture_event;
use postwire_e2e::schema::assert_valid;

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/parse")
}

pub fn fixtures() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .expect("tests/fixtures/parse")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    all.sort();
    all
}

#[test]
fn golden_fixtures() {
    let bless = std::env::var_os("POSTWIRE_BLESS").is_some_and(|v| v == "1");
    let all = fixtures();
    assert!(
        all.len() >= 40,
        "expected at least 40 fixtures, found {}",
        all.len()
    );
    let mut failures = Vec::new();
    for eml in &all {
        let raw = std::fs::read(eml).expect("read fixture");
        let got = fixture_event(&raw);
        assert_valid(&got, &eml.display().to_string());
        let json_path = eml.with_extension("json");
        let pretty = serde_json::to_string_pretty(&got).expect("pretty") + "\n";
        if bless {
            std::fs::write(&json_path, pretty).expect("write expectation");
            continue;
        }
        let want: serde_json::Value = match std::fs::read_to_string(&json_path) {
            Ok(t) => serde_json::from_str(&t).expect("expectation is JSON"),
            Err(_) => {
                failures.push(format!(
                    "{}: no expectation (run with POSTWIRE_BLESS=1)",
                    eml.display()
                ));
                continue;
            }
        };
        if want != got {
            failures.push(format!(
                "{} differs from {}:\n{pretty}",
                eml.display(),
                json_path.display()
            ));
        }
    }
    let _ = writeln!(std::io::stderr(), "golden: {} fixtures checked", all.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
