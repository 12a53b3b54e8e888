//! Corpus sweep: every message of the shared MIME corpus (`../shared/corpus` beside the
//! repository, or `POSTWIRE_CORPUS`) and every repository fixture goes through
//! parse + sanitise without a panic and yields a payload valid against the JSON Schema.
//! Prints counts; fails on any panic or schema violation. Without the corpus folder only the
//! fixtures are swept, and the test says so on stderr (past libtest's capture) with the path
//! it looked for.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use postwire_e2e::payload::fixture_event;
use postwire_e2e::schema::violations;

pub fn corpus_dir() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("POSTWIRE_CORPUS") {
        return Some(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    p.is_dir().then_some(p)
}

pub fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read corpus").flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if !matches!(
            p.file_name().and_then(|n| n.to_str()),
            Some("LICENSES.md" | "MANIFEST.tsv")
        ) {
            out.push(p);
        }
    }
}

#[derive(Default, Debug)]
struct Counts {
    messages: usize,
    with_subject: usize,
    with_text: usize,
    with_html: usize,
    attachments: usize,
    enclosed_messages: usize,
    truncated: usize,
    parser_failed: usize,
    panics: Vec<String>,
    invalid: Vec<String>,
}

fn sweep(paths: &[PathBuf], counts: &mut Counts) {
    for f in paths {
        let raw = std::fs::read(f).expect("read");
        counts.messages += 1;
        let event = match std::panic::catch_unwind(|| fixture_event(&raw)) {
            Ok(e) => e,
            Err(_) => {
                counts.panics.push(f.display().to_string());
                continue;
            }
        };
        let v = violations(&event);
        if !v.is_empty() {
            counts
                .invalid
                .push(format!("{}: {}", f.display(), v.join("; ")));
        }
        let m = &event["message"];
        counts.with_subject += usize::from(m["subject"].is_string());
        counts.with_text += usize::from(m["text"].is_string());
        counts.with_html += usize::from(m["html"].is_string());
        let atts = m["attachments"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        counts.attachments += atts.len();
        counts.enclosed_messages += atts.iter().filter(|a| a["message"].is_object()).count();
        counts.truncated += usize::from(event["limits"]["truncated"] == true);
        counts.parser_failed += usize::from(
            event["limits"]["notes"]
                .as_array()
                .is_some_and(|n| n.iter().any(|x| x == postwire_stages::parse::PARSER_FAILED)),
        );
    }
}

#[test]
fn corpus_and_fixtures_parse_into_schema_valid_payloads() {
    let mut paths = crate::golden::fixtures();
    let fixtures = paths.len();
    match corpus_dir() {
        Some(dir) => {
            let before = paths.len();
            files(&dir, &mut paths);
            assert!(
                paths.len() - before >= 200,
                "expected the 256-message corpus in {}, found {}",
                dir.display(),
                paths.len() - before
            );
        }
        // Written to the real stderr, past libtest's capture, so the fallback is never silent.
        None => {
            let _ = writeln!(
                std::io::stderr(),
                "corpus sweep: FALLBACK: no corpus at {} (set POSTWIRE_CORPUS to its folder); \
                 sweeping only the {fixtures} repository fixtures",
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../shared/corpus")
                    .display()
            );
        }
    }
    let mut c = Counts::default();
    sweep(&paths, &mut c);
    // Written to the real stderr, past libtest's capture, so `make test` always shows it.
    let _ = writeln!(
        std::io::stderr(),
        "corpus sweep: {} messages ({} fixtures), {} with subject, {} with text, {} with html, \
         {} attachments, {} enclosed messages, {} truncated by limits, {} the MIME parser failed on, \
         {} panics, {} schema violations",
        c.messages,
        fixtures,
        c.with_subject,
        c.with_text,
        c.with_html,
        c.attachments,
        c.enclosed_messages,
        c.truncated,
        c.parser_failed,
        c.panics.len(),
        c.invalid.len()
    );
    assert!(c.panics.is_empty(), "panics:\n{}", c.panics.join("\n"));
    assert!(
        c.invalid.is_empty(),
        "schema violations:\n{}",
        c.invalid.join("\n")
    );
    assert!(
        c.with_subject * 2 > c.messages,
        "most messages have a subject"
    );
}

/// The attachment bodies the parse hands to the scan and store stages (moved out of the parsed
/// MIME tree, or views of the raw buffer: issue 17) are exactly the contents the payload
/// describes (size and sha256), and keeping them does not change the payload, for every
/// corpus message and fixture.
#[test]
fn corpus_attachment_bodies_are_the_described_contents() {
    use postwire_core::ids::sha256_hex;
    use postwire_stages::parse::{parse, parse_with_bodies};

    let mut paths = crate::golden::fixtures();
    // Without the corpus (a clone outside this workspace) only the repository's fixtures are
    // checked; `corpus_and_fixtures_parse_into_schema_valid_payloads` says so on stderr.
    let corpus = corpus_dir();
    if let Some(dir) = &corpus {
        files(dir, &mut paths);
    }
    let mut checked = 0;
    for f in &paths {
        let raw = bytes::Bytes::from(std::fs::read(f).expect("read"));
        let p = parse_with_bodies(&raw);
        let atts = &p.message.attachments;
        assert_eq!(p.bodies.len(), atts.len(), "{}", f.display());
        for (att, body) in atts.iter().zip(&p.bodies) {
            assert_eq!(body.len(), att.size, "{}: {}", f.display(), att.id);
            assert_eq!(
                sha256_hex(&body.to_bytes()),
                att.sha256,
                "{}: {}",
                f.display(),
                att.id
            );
            checked += 1;
        }
        assert!(parse(&raw).0 == p.message, "{}: same payload", f.display());
    }
    let least = if corpus.is_some() { 100 } else { 1 };
    assert!(checked >= least, "only {checked} attachments checked");
}
