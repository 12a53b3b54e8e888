//! DNS key lookup policy that needs no server: keyids outside the allowed domains are refused
//! before any query. (Lookups through a real DNS server are tested in tests/py.)

use postwire_sign::dns::DnsKeys;
use postwire_sign::keyring::KeyRing;
use postwire_sign::{Verifier, VerifyError};

use crate::support::*;

fn dns() -> DnsKeys {
    // Port 9 (discard): any query would time out, so a quick answer proves none was sent.
    DnsKeys::with_server("127.0.0.1:9".parse().unwrap(), &["acme.example".to_owned()]).unwrap()
}

#[test]
fn allowed_domain_suffixes() {
    let d = dns();
    assert!(d.is_allowed("s1._postwire.acme.example"));
    assert!(d.is_allowed("s1._postwire.eu.acme.example."));
    assert!(!d.is_allowed("s1._postwire.evilacme.example"));
    assert!(!d.is_allowed("s1._postwire.acme.example.evil.test"));
    assert!(!d.is_allowed("acme.example"));
    assert!(!d.is_allowed("_postwire.acme.example"));
}

#[tokio::test]
async fn keyid_outside_the_allowed_domain_is_refused_without_lookup() {
    let ed = ed25519();
    let evil = "s1._postwire.evil.test";
    let mut req = signed(&postwire_sign::Signer::default(), NOW);
    forge(
        &mut req,
        &ALL,
        &format!("created={NOW};keyid=\"{evil}\""),
        Forge::Ed25519(ed25519_inner(&ed)),
    );
    let verifier = Verifier::new(KeyRing::new());
    let started = std::time::Instant::now();
    assert_eq!(
        dns().verify(&verifier, &req, NOW).await,
        Err(VerifyError::KeyIdNotAllowed(evil.into()))
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}
