//! Reply stripping on real-world replies: the test sets of two public reply parsers (see
//! `tests/fixtures/replies/LICENSES.md`), each case a reply body and the reply its authors
//! expect. Prints the pass rate. Fails when any case loses a line the sender wrote (the worst
//! failure: the reply itself cut), or when fewer cases pass than `MIN_PASSING`.

use std::io::Write as _;
use std::path::Path;

use postwire_stages::parse::stripped::strip;

/// Cases that must match exactly; raise it when stripping improves.
const MIN_PASSING: usize = 82;

#[derive(serde::Deserialize)]
struct Case {
    file: String,
    reply: String,
}

fn squeeze(s: &str) -> String {
    s.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

#[test]
fn real_world_replies() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/replies");
    let cases: Vec<Case> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).expect("cases.json"))
            .expect("cases.json is a list of {source, file, reply}");
    assert!(cases.len() >= 80, "only {} cases", cases.len());
    let mut passed = 0;
    let mut failures = Vec::new();
    let mut cut = Vec::new();
    for c in &cases {
        let raw = std::fs::read(dir.join(&c.file)).expect("case file");
        let text = String::from_utf8_lossy(&raw);
        let got = squeeze(&strip(&text));
        let want = squeeze(&c.reply);
        if got == want {
            passed += 1;
            continue;
        }
        let got_lines: Vec<&str> = got.lines().map(str::trim).collect();
        let lost: Vec<&str> = want
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !got_lines.contains(l))
            .collect();
        if !lost.is_empty() {
            cut.push(format!("{}: lost {lost:?}", c.file));
        }
        failures.push(format!("--- {}\nwant:\n{want}\ngot:\n{got}", c.file));
    }
    // Written to the real stderr, past libtest's capture, so `make test` always shows it.
    let _ = writeln!(
        std::io::stderr(),
        "reply stripping: {passed}/{} real-world cases exact ({:.1}%), {} cut a line of the reply",
        cases.len(),
        100.0 * passed as f64 / cases.len() as f64,
        cut.len()
    );
    for f in &failures {
        println!("{f}");
    }
    assert!(
        cut.is_empty(),
        "the reply itself was cut:\n{}",
        cut.join("\n")
    );
    assert!(
        passed >= MIN_PASSING,
        "{passed} cases pass, {MIN_PASSING} did before"
    );
}
