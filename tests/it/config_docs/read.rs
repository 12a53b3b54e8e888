//! The readers of the configuration test: the key tables of docs/configuration.md and the
//! section blocks of postwire.example.toml.

use std::collections::{BTreeMap, BTreeSet};

/// A row of a documentation table: the keys of its first cell and its default cell.
#[derive(Debug)]
pub struct Row {
    pub keys: Vec<String>,
    pub cells: Vec<String>,
}

/// The table rows of configuration.md under `heading`, up to the next heading (code blocks
/// skipped).
pub fn documented(doc: &str, heading: &str) -> Option<Vec<Row>> {
    let mut lines = doc.lines().skip_while(|l| l.trim_end() != heading);
    lines.next()?;
    let mut rows = Vec::new();
    let mut in_code = false;
    for line in lines {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        if line.starts_with('#') {
            break;
        }
        let Some(inner) = line.strip_prefix('|') else {
            continue;
        };
        let cells: Vec<String> = inner
            .trim_end()
            .trim_end_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_owned())
            .collect();
        if cells[0] == "key" || cells[0].starts_with("---") {
            continue;
        }
        let keys = cells[0]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        rows.push(Row { keys, cells });
    }
    Some(rows)
}

/// The section blocks of postwire.example.toml: header → every `name =` in it, comments too.
pub fn example_keys(example: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in example.lines() {
        let t = line.trim();
        if t.starts_with('[') && !t.starts_with("[[") {
            section = t.trim_matches(['[', ']']).to_owned();
            continue;
        }
        let mut rest = t;
        while let Some(eq) = rest.find('=') {
            let name: String = rest[..eq]
                .trim_end()
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if !name.is_empty() {
                out.entry(section.clone()).or_default().insert(name);
            }
            rest = &rest[eq + 1..];
        }
    }
    out
}
