//! The bodies of the fuzz targets, one function each: the `fuzz_targets/` binaries call them
//! with libFuzzer's input, and `make test` compiles them into the tests crate and runs them on
//! the seeds (`tests/it/fuzz_seeds.rs`), so a change of the APIs they call breaks the build of
//! `make test`, not only a later `make fuzz`.

use std::sync::Arc;

/// What the admin API and the CLI parse from a request or a command line, on any input: time
/// arguments (`?since=`, `--since`), durations, a tenant document (`PUT /api/v1/tenants/…`)
/// validated against a configuration, `Retry-After`, URL redaction, the alert URL rule and a
/// captured request for `postwire verify` / the sink. Never a panic.
pub fn admin_input(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = postwire_core::since::parse(&text);
    let _ = postwire_core::delivery_config::parse_duration(&text);
    let _ = postwire_stages::deliver::retry::parse_retry_after(&text);
    let _ = postwire_core::redact::text(&text);
    let _ = postwire_core::redact::url(&text);
    let _ = postwire_core::tenant_config::check_alert_url(&text);
    if let Ok(t) = serde_json::from_slice::<postwire_core::tenant_config::TenantConfig>(data) {
        let mut cfg = config("[tenants.acme]\ndomains = [\"acme.test\"]\n");
        cfg.tenants.insert("fuzz".into(), t);
        let _ = cfg.validate();
    }
    if let Ok(req) = postwire_stages::deliver::verify::Captured::parse(data) {
        let r = postwire_stages::deliver::verify::Receiver::new(300);
        let _ = r.verify(&[vec![7u8; 32]], &req, 1_800_000_000);
    }
}

/// Parse + sanitise any bytes: never a panic, the payload serialises, and sanitised HTML has
/// no script.
pub fn parse_sanitize(data: &[u8]) {
    let (message, _limits) = postwire_stages::parse::parse(data);
    let json = serde_json::to_vec(&message).expect("a message serialises");
    assert!(!json.is_empty());
    if let Some(html) = &message.html {
        assert!(
            !html.to_ascii_lowercase().contains("<script"),
            "sanitised HTML has a script"
        );
    }
}

/// The SMTP command parser and the session state machine on any input: never a panic, and
/// replies never carry a bare CR or LF from the input.
pub fn smtp_command(data: &[u8]) {
    use postwire_ingest::smtp::{Session, SessionLimits, Step, command, transaction};
    let _ = command::parse(data);
    let cfg = config(SMTP_CONFIG);
    let mut session = Session::new(
        Arc::new(SessionLimits::new(&cfg)),
        Arc::new(cfg.router()),
        Arc::new(postwire_ingest::limits::ClientLimits::new(&cfg.smtp)),
        "192.0.2.1".parse().expect("an address"),
    );
    let mut buf = bytes::BytesMut::from(data);
    let mut steps = 0;
    while let Some(step) = session.advance(&mut buf) {
        steps += 1;
        assert!(steps < 100_000);
        let reply = match step {
            Step::Reply(r) | Step::Close(r) | Step::StartTls(r) => r,
            Step::Deliver(_) => transaction::finished(&Ok(vec!["id".into()])),
        };
        let wire = reply.to_wire();
        assert!(wire.ends_with("\r\n"));
        assert_eq!(wire.matches("\r\n").count(), reply.lines.len().max(1));
    }
}

const SMTP_CONFIG: &str = "[tenants.acme]\ndomains = [\"acme.test\"]\n[[tenants.acme.routes]]\nname = \"r\"\nrecipients = [\"*@acme.test\"]\nendpoints = [\"e\"]\n[tenants.acme.endpoints.e]\nurl = \"https://example.com/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n";

fn config(toml: &str) -> postwire_core::Config {
    postwire_core::Config::from_toml(toml).expect("fuzz config")
}
