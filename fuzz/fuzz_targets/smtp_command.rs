//! The SMTP command parser and the session state machine on any input: never a panic, and
//! replies never carry a bare CR or LF from the input.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use postwire_ingest::smtp::command;

fuzz_target!(|data: &[u8]| {
    let _ = command::parse(data);
    let cfg = postwire_core_config();
    let limits = Arc::new(postwire_ingest::smtp::SessionLimits::new(&cfg));
    let mut session = postwire_ingest::smtp::Session::new(
        limits,
        Arc::new(cfg.router()),
        Arc::new(postwire_ingest::limits::ClientLimits::new(&cfg.smtp)),
        "192.0.2.1".parse().unwrap(),
    );
    let mut buf = bytes::BytesMut::from(data);
    let mut steps = 0;
    while let Some(step) = session.advance(&mut buf) {
        steps += 1;
        assert!(steps < 100_000);
        let reply = match step {
            postwire_ingest::smtp::Step::Reply(r)
            | postwire_ingest::smtp::Step::Close(r)
            | postwire_ingest::smtp::Step::StartTls(r) => r,
            postwire_ingest::smtp::Step::Deliver(_) => {
                postwire_ingest::smtp::transaction::finished(&Ok(vec!["id".into()]))
            }
        };
        let wire = reply.to_wire();
        assert!(wire.ends_with("\r\n"));
        assert_eq!(wire.matches("\r\n").count(), reply.lines.len().max(1));
    }
});

fn postwire_core_config() -> postwire_core::Config {
    postwire_core::Config::from_toml(
        "[tenants.acme]\ndomains = [\"acme.test\"]\n[[tenants.acme.routes]]\nname = \"r\"\nrecipients = [\"*@acme.test\"]\nendpoints = [\"e\"]\n[tenants.acme.endpoints.e]\nurl = \"https://example.com/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n",
    )
    .expect("fuzz config")
}
