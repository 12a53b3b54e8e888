//! Tests of the configuration file: defaults, unknown keys, validation paths.

use super::*;

const GOOD: &str = r#"
[tenants.acme]
domains = ["acme.test"]
[[tenants.acme.routes]]
name = "support"
recipients = ["support@acme.test"]
endpoints = ["main"]
[tenants.acme.endpoints.main]
url = "https://example.com/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"#;

#[test]
fn good_config_validates_with_defaults() {
    let cfg = Config::from_toml(GOOD).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.smtp.max_recipients, 100);
    assert_eq!(cfg.delivery.max_attempts(), 10);
}

#[test]
fn unknown_key_is_named() {
    let err = Config::from_toml("[smtp]\nmax_recipents = 3\n").unwrap_err();
    assert!(err.to_string().contains("max_recipents"), "{err}");
}

#[test]
fn unknown_endpoint_names_the_path() {
    let bad = GOOD.replace("endpoints = [\"main\"]", "endpoints = [\"nope\"]");
    let err = Config::from_toml(&bad).unwrap().validate().unwrap_err();
    assert_eq!(err.path, "tenants.acme.routes[0].endpoints[0]");
}

#[test]
fn bad_secret_is_refused() {
    let bad = GOOD.replace("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "hunter2");
    let err = Config::from_toml(&bad).unwrap().validate().unwrap_err();
    assert_eq!(err.path, "tenants.acme.endpoints.main.secret");
    assert!(
        !err.to_string().contains("hunter2"),
        "secrets never appear in errors"
    );
}

#[test]
fn plugin_chain_and_failure_mode_are_read_and_checked() {
    let dir = std::env::temp_dir().join(format!("postwire-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("p.wasm"), b"\0asm").unwrap();
    let text = GOOD.replace(
        "[tenants.acme]\ndomains = [\"acme.test\"]",
        "[tenants.acme]\ndomains = [\"acme.test\"]\nplugin_failure = \"fail-open\"\nplugins = [{ path = \"p.wasm\", config = { style = \"slack\" } }]",
    );
    let mut cfg = Config::from_toml(&text).unwrap();
    cfg.resolve_plugin_paths(&dir);
    cfg.validate().unwrap();
    let t = &cfg.tenants["acme"];
    assert_eq!(t.plugin_failure, PluginFailure::FailOpen);
    assert_eq!(t.plugins[0].path, dir.join("p.wasm"));
    assert_eq!(
        t.plugins[0].config,
        Some(serde_json::json!({"style": "slack"}))
    );
    assert_eq!(cfg.plugin_host.deadline_ms, 2_000);
    assert_eq!(cfg.plugin_host.fuel, 500_000_000);

    let mut missing = Config::from_toml(&text.replace("p.wasm", "nope.wasm")).unwrap();
    missing.resolve_plugin_paths(&dir);
    let err = missing.validate().unwrap_err();
    assert_eq!(err.path, "tenants.acme.plugins[0].path");
    let err = Config::from_toml(&text.replace("fail-open", "fail-sideways")).unwrap_err();
    assert!(err.to_string().contains("fail-sideways"), "{err}");
    assert_eq!(
        Config::from_toml(GOOD).unwrap().tenants["acme"].plugin_failure,
        PluginFailure::FailClosed
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn pattern_outside_domains_is_refused() {
    let bad = GOOD.replace("support@acme.test", "support@other.test");
    let err = Config::from_toml(&bad).unwrap().validate().unwrap_err();
    assert_eq!(err.path, "tenants.acme.routes[0].recipients[0]");
}

#[test]
fn antivirus_and_retention_keys() {
    let cfg = Config::from_toml(GOOD).unwrap();
    assert!(
        cfg.antivirus.address().is_none(),
        "scanning is off by default"
    );
    assert_eq!(cfg.storage.raw_retention_days, 30);
    let text = GOOD.replace(
        "domains = [\"acme.test\"]",
        "domains = [\"acme.test\"]\ninfected_attachments = \"quarantine\"",
    ) + "[antivirus]\nclamd = \"unix:///run/clamav/clamd.ctl\"\n";
    let cfg = Config::from_toml(&text).unwrap();
    cfg.validate().unwrap();
    assert!(cfg.antivirus.address().is_some());
    assert_eq!(
        cfg.tenants["acme"].infected_attachments,
        crate::antivirus_config::InfectedPolicy::Quarantine
    );
    let bad = GOOD.to_string() + "[antivirus]\nclamd = \"127.0.0.1:3310\"\n";
    let err = Config::from_toml(&bad).unwrap().validate().unwrap_err();
    assert_eq!(err.path, "antivirus.clamd");
    let bad = GOOD.replace("[tenants.acme]", "[tenants._incoming]");
    let bad = bad.replace("tenants.acme.", "tenants._incoming.");
    let err = Config::from_toml(&bad).unwrap().validate().unwrap_err();
    assert_eq!(err.path, "tenants._incoming");
    let bad = GOOD.to_string() + "[storage]\ninline_limit_bytes = 10\n";
    let err = Config::from_toml(&bad).unwrap().validate().unwrap_err();
    assert_eq!(err.path, "storage.inline_limit_bytes");
}

#[test]
fn alert_url_follows_the_endpoint_url_rule() {
    let with = |u: &str| {
        GOOD.replace(
            "domains = [\"acme.test\"]",
            &format!("domains = [\"acme.test\"]\nalert_url = \"{u}\""),
        )
    };
    for bad in [
        "http://169.254.169.254/latest/meta-data",
        "http://alerts.example/hook",
        "ftp://alerts.example/x",
        "https://user:pw@alerts.example/x",
        "not a url",
    ] {
        let err = Config::from_toml(&with(bad))
            .unwrap()
            .validate()
            .expect_err(bad);
        assert_eq!(err.path, "tenants.acme.alert_url", "{bad}");
    }
    for good in [
        "https://alerts.example/hook?k=v",
        "http://127.0.0.1:9000/alerts",
    ] {
        Config::from_toml(&with(good))
            .unwrap()
            .validate()
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
}
