//! Keys from DNS: the allowed-domain policy (refused keyids are never looked up), and lookups
//! through a real DNS server on loopback (rotation overlap, removed selector, wrong key type).
//! tests/py/test_signatures_dns.py does the same through the `postwire` binary.

use postwire_sign::dns::DnsKeys;
use postwire_sign::keyring::KeyRing;
use postwire_sign::{Verifier, VerifyError};

use postwire_sign::keydir::KeyDir;
use postwire_sign::keys::{KeyType, keyid};

use crate::dns_server::DnsServer;
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

#[tokio::test]
async fn rotation_through_dns_then_the_removed_selector_fails() {
    let server = DnsServer::start();
    let dns = DnsKeys::with_server(server.addr, &["acme.example".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("postwire-sign-it-dns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut kd = KeyDir::create(&dir, "acme.example");
    kd.rotate("s1", KeyType::Ed25519, NOW - 100, 600).unwrap();
    kd.save().unwrap();
    let cfg = format!(
        "[[signing]]\nscheme = \"rfc9421\"\nalg = \"ed25519\"\nkeyring = \"{}\"\n",
        dir.display()
    );
    let old_only = signed(
        &postwire_sign::Signer::from_config(&config(&cfg)).unwrap(),
        NOW - 50,
    );
    kd.rotate("s2", KeyType::Ed25519, NOW, 600).unwrap();
    kd.save().unwrap();
    for e in &kd.keys {
        server.set(
            &kd.keyid(e),
            &kd.load_key(e).unwrap().public_key().dkim_txt().unwrap(),
        );
    }
    let both = signed(
        &postwire_sign::Signer::from_config(&config(&cfg)).unwrap(),
        NOW + 10,
    );
    let (old_id, new_id) = (keyid("s1", "acme.example"), keyid("s2", "acme.example"));

    let v = dns
        .verify(&Verifier::new(KeyRing::new()), &both, NOW + 10)
        .await
        .unwrap();
    assert!(v.keyid == Some(old_id.clone()) || v.keyid == Some(new_id.clone()));
    server.remove(&old_id);
    let v = dns
        .verify(&Verifier::new(KeyRing::new()), &both, NOW + 10)
        .await
        .unwrap();
    assert_eq!(
        v.keyid,
        Some(new_id),
        "the overlap lets the new selector carry the request"
    );
    assert_eq!(
        dns.verify(&Verifier::new(KeyRing::new()), &old_only, NOW - 50)
            .await,
        Err(VerifyError::UnknownKey(old_id)),
        "a removed selector no longer verifies"
    );
}

#[tokio::test]
async fn a_dns_key_of_the_wrong_type_is_refused() {
    let server = DnsServer::start();
    let dns = DnsKeys::with_server(server.addr, &["acme.example".to_owned()]).unwrap();
    server.set(KEYID, &ed25519().public_key().dkim_txt().unwrap());
    let rsa = rsa();
    let cfg = format!(
        "[[signing]]\nscheme = \"cavage\"\nkeyid = \"{KEYID}\"\nkey_file = \"{}\"\n",
        key_file(&rsa).display()
    );
    let req = signed(
        &postwire_sign::Signer::from_config(&config(&cfg)).unwrap(),
        NOW,
    );
    assert_eq!(
        dns.verify(&Verifier::new(KeyRing::new()), &req, NOW).await,
        Err(VerifyError::WrongKeyType {
            keyid: KEYID.into(),
            key_type: "ed25519".into()
        })
    );
    // The RSA key under the same name (a long, split TXT record) verifies.
    server.set(KEYID, &rsa.public_key().dkim_txt().unwrap());
    assert!(
        dns.verify(&Verifier::new(KeyRing::new()), &req, NOW)
            .await
            .is_ok()
    );
}
