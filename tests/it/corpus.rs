//! Every message of the shared MIME corpus parses into a payload without panicking, and the
//! payload serialises to JSON that reads back into the same event type.

use std::path::{Path, PathBuf};

fn corpus_dir() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("POSTWIRE_CORPUS") {
        return Some(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    p.is_dir().then_some(p)
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
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

#[test]
fn the_whole_corpus_parses() {
    let Some(dir) = corpus_dir() else {
        eprintln!("corpus not found (set POSTWIRE_CORPUS); skipping");
        return;
    };
    let mut all = Vec::new();
    files(&dir, &mut all);
    assert!(
        all.len() >= 200,
        "expected the 256-message corpus, found {}",
        all.len()
    );
    let mut with_subject = 0;
    for f in &all {
        let raw = std::fs::read(f).expect("read");
        let (message, _limits) = postwire_stages::parse::parse(&raw);
        let json = serde_json::to_string(&message).expect("serialises");
        let back: postwire_core::event::Message = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, message, "{}", f.display());
        with_subject += usize::from(message.subject.is_some());
    }
    assert!(
        with_subject * 2 > all.len(),
        "most corpus messages have a subject ({with_subject}/{})",
        all.len()
    );
}
