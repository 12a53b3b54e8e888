//! What the admin API and the CLI parse from a request or a command line, on any input: time
//! arguments (`?since=`, `--since`), durations, a tenant document (`PUT /api/v1/tenants/…`)
//! validated against a configuration, `Retry-After`, URL redaction, the alert URL rule and a
//! captured request for `postwire verify` / the sink. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = postwire_core::since::parse(&text);
    let _ = postwire_core::delivery_config::parse_duration(&text);
    let _ = postwire_stages::deliver::retry::parse_retry_after(&text);
    let _ = postwire_core::redact::text(&text);
    let _ = postwire_core::redact::url(&text);
    let _ = postwire_core::tenant_config::check_alert_url(&text);
    if let Ok(t) = serde_json::from_slice::<postwire_core::tenant_config::TenantConfig>(data) {
        let mut cfg = base();
        cfg.tenants.insert("fuzz".into(), t);
        let _ = cfg.validate();
    }
    if let Ok(req) = postwire_stages::deliver::verify::Captured::parse(data) {
        let r = postwire_stages::deliver::verify::Receiver::new(300);
        let _ = r.verify(&[vec![7u8; 32]], &req, 1_800_000_000);
    }
});

fn base() -> postwire_core::Config {
    postwire_core::Config::from_toml("[tenants.acme]\ndomains = [\"acme.test\"]\n")
        .expect("fuzz config")
}
