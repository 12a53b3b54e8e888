//! The configuration the ingest unit tests share: tenant `acme` (domain acme.test), route
//! `support` for support@acme.test to one endpoint. (The end-to-end tests build theirs with
//! `tests/support/config.rs`; a dev-dependency on it would be a cycle.)

pub const ACME: &str = r#"
[tenants.acme]
domains = ["acme.test"]
[[tenants.acme.routes]]
name = "support"
recipients = ["support@acme.test"]
endpoints = ["e"]
[tenants.acme.endpoints.e]
url = "https://example.com/"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"#;

pub fn acme() -> postwire_core::Config {
    postwire_core::Config::from_toml(ACME).expect("the ingest test config parses")
}
