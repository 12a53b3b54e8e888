//! The payload JSON Schema (`docs/schema/postwire.email.v1.json`), compiled once, with
//! format checks on. Every payload the Rust tests produce or receive goes through it.

use std::sync::OnceLock;

pub const SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/schema/postwire.email.v1.json"
);

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let text = std::fs::read_to_string(SCHEMA_PATH).expect("the schema file");
        let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the schema compiles")
    })
}

/// The schema violations of `payload`, one line each (empty when valid).
pub fn violations(payload: &serde_json::Value) -> Vec<String> {
    validator()
        .iter_errors(payload)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Panics with every violation when `payload` does not match the schema.
pub fn assert_valid(payload: &serde_json::Value, what: &str) {
    let v = violations(payload);
    assert!(
        v.is_empty(),
        "{what} violates the schema:\n{}",
        v.join("\n")
    );
}
