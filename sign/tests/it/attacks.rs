//! One test per attack the verifier must refuse.

use postwire_sign::keyring::KeyRing;
use postwire_sign::keys::{PublicKey, Secret};
use postwire_sign::{Signer, Verifier, VerifyError};

use crate::support::*;

/// An Ed25519 key published at KEYID, and a verifier trusting it.
fn ed_setup() -> (postwire_sign::keys::PrivateKey, Verifier) {
    let ed = ed25519();
    let mut keys = KeyRing::new();
    keys.add_public(Some(KEYID.into()), ed.public_key());
    (ed, Verifier::new(keys))
}

fn plain_request() -> postwire_sign::capture::Captured {
    let mut req = signed(&Signer::default(), NOW);
    set_header(&mut req, "webhook-id", "msg_1");
    req
}

fn params(created: i64) -> String {
    format!("created={created};nonce=\"n-{created}\";keyid=\"{KEYID}\"")
}

#[test]
fn algorithm_confusion_hmac_with_the_public_key_as_secret() {
    let (ed, verifier) = ed_setup();
    let public_bytes = ed.public_key().to_raw().unwrap();
    // The attacker claims hmac-sha256 and keys the MAC with the (public) Ed25519 key.
    let mut req = plain_request();
    let p = format!("{};alg=\"hmac-sha256\"", params(NOW));
    forge(&mut req, &ALL, &p, Forge::Hmac(&public_bytes));
    assert_eq!(
        verifier.verify(&req, NOW),
        Err(VerifyError::AlgorithmMismatch {
            claimed: "hmac-sha256".into(),
            key: "ed25519".into()
        })
    );
    // Without an alg parameter the key's own algorithm (Ed25519) is used: the MAC fails.
    let mut req = plain_request();
    forge(&mut req, &ALL, &params(NOW), Forge::Hmac(&public_bytes));
    assert_eq!(verifier.verify(&req, NOW), Err(VerifyError::BadSignature));
    // The honest control: the same request signed with the private key passes.
    let mut req = plain_request();
    forge(
        &mut req,
        &ALL,
        &params(NOW),
        Forge::Ed25519(ed25519_inner(&ed)),
    );
    assert!(verifier.verify(&req, NOW).is_ok());
}

#[test]
fn missing_required_component() {
    let (ed, verifier) = ed_setup();
    let mut req = plain_request();
    let without_digest = ["@method", "@target-uri", "content-type", "webhook-id"];
    forge(
        &mut req,
        &without_digest,
        &params(NOW),
        Forge::Ed25519(ed25519_inner(&ed)),
    );
    assert_eq!(
        verifier.verify(&req, NOW),
        Err(VerifyError::MissingComponent("content-digest".into()))
    );
    // A cavage signature that leaves out the Digest header.
    let rsa = rsa();
    let mut keys = KeyRing::new();
    keys.add_public(Some(KEYID.into()), rsa.public_key());
    let cfg = format!(
        "[[signing]]\nscheme = \"cavage\"\nkeyid = \"{KEYID}\"\nkey_file = \"{}\"\n",
        key_file(&rsa).display()
    );
    let mut req = signed(&Signer::from_config(&config(&cfg)).unwrap(), NOW);
    let sig = req.header("signature").unwrap().replace(" digest", "");
    set_header(&mut req, "signature", &sig);
    assert_eq!(
        Verifier::new(keys).verify(&req, NOW),
        Err(VerifyError::MissingComponent("digest".into()))
    );
}

#[test]
fn stale_and_future_timestamps() {
    let (ed, verifier) = ed_setup();
    for (created, expected) in [
        (NOW - 301, VerifyError::Stale),
        (NOW + 301, VerifyError::FromFuture),
    ] {
        let mut req = plain_request();
        forge(
            &mut req,
            &ALL,
            &params(created),
            Forge::Ed25519(ed25519_inner(&ed)),
        );
        assert_eq!(verifier.verify(&req, NOW), Err(expected));
    }
    // Within the tolerance both ways is fine.
    for created in [NOW - 299, NOW + 299] {
        let mut req = plain_request();
        forge(
            &mut req,
            &ALL,
            &params(created),
            Forge::Ed25519(ed25519_inner(&ed)),
        );
        assert!(verifier.verify(&req, NOW).is_ok());
    }
    // An expired signature is refused even within the tolerance.
    let mut req = plain_request();
    forge(
        &mut req,
        &ALL,
        &format!("{};expires={}", params(NOW - 10), NOW - 1),
        Forge::Ed25519(ed25519_inner(&ed)),
    );
    assert_eq!(verifier.verify(&req, NOW), Err(VerifyError::Expired));
    // Standard Webhooks: the timestamp header is checked the same way.
    let sw = Signer::from_config(&config(
        "[[signing]]\nscheme = \"standard-webhooks\"\nsecret = \"whsec_AAAA\"\n",
    ))
    .unwrap();
    let mut keys = KeyRing::new();
    keys.add_secret(None, Secret::parse("whsec_AAAA").unwrap());
    let v = Verifier::new(keys);
    assert_eq!(
        v.verify(&signed(&sw, NOW - 1000), NOW),
        Err(VerifyError::Stale)
    );
    assert_eq!(
        v.verify(&signed(&sw, NOW + 1000), NOW),
        Err(VerifyError::FromFuture)
    );
}

#[test]
fn replayed_nonce_and_webhook_id() {
    let (ed, verifier) = ed_setup();
    let cfg = format!(
        "[[signing]]\nscheme = \"rfc9421\"\nalg = \"ed25519\"\nkeyid = \"{KEYID}\"\nkey_file = \"{}\"\n",
        key_file(&ed).display()
    );
    let req = signed(&Signer::from_config(&config(&cfg)).unwrap(), NOW);
    assert!(verifier.verify(&req, NOW).is_ok());
    assert!(
        matches!(verifier.verify(&req, NOW + 5), Err(VerifyError::Replayed(k)) if k.starts_with("nonce:"))
    );
    // Standard Webhooks carries no nonce: the same id and timestamp twice is a replay, while a
    // retry (same id, fresh timestamp and signature) is not.
    let sw = Signer::from_config(&config(
        "[[signing]]\nscheme = \"standard-webhooks\"\nsecret = \"whsec_AAAA\"\n",
    ))
    .unwrap();
    let mut keys = KeyRing::new();
    keys.add_secret(None, Secret::parse("whsec_AAAA").unwrap());
    let v = Verifier::new(keys);
    let first = signed(&sw, NOW);
    assert!(v.verify(&first, NOW).is_ok());
    assert!(
        matches!(v.verify(&first, NOW + 1), Err(VerifyError::Replayed(k)) if k.starts_with("webhook-id:msg_1:"))
    );
    assert!(
        v.verify(&signed(&sw, NOW + 30), NOW + 31).is_ok(),
        "a retry is not a replay"
    );
}

#[test]
fn digest_mismatch() {
    let (ed, verifier) = ed_setup();
    let cfg = format!(
        "[[signing]]\nscheme = \"rfc9421\"\nalg = \"ed25519\"\nkeyid = \"{KEYID}\"\nkey_file = \"{}\"\n",
        key_file(&ed).display()
    );
    let mut req = signed(&Signer::from_config(&config(&cfg)).unwrap(), NOW);
    req.body = br#"{"schema":"postwire.email.v1","id":"msg_2"}"#.to_vec();
    assert_eq!(verifier.verify(&req, NOW), Err(VerifyError::DigestMismatch));
    // Cavage: the RFC 3230 Digest is checked too.
    let rsa = rsa();
    let mut keys = KeyRing::new();
    keys.add_public(Some(KEYID.into()), rsa.public_key());
    let cfg = format!(
        "[[signing]]\nscheme = \"cavage\"\nkeyid = \"{KEYID}\"\nkey_file = \"{}\"\n",
        key_file(&rsa).display()
    );
    let mut req = signed(&Signer::from_config(&config(&cfg)).unwrap(), NOW);
    req.body.push(b' ');
    assert_eq!(
        Verifier::new(keys).verify(&req, NOW),
        Err(VerifyError::DigestMismatch)
    );
}

#[test]
fn tampered_covered_header_breaks_the_signature() {
    let (ed, verifier) = ed_setup();
    let cfg = format!(
        "[[signing]]\nscheme = \"rfc9421\"\nalg = \"ed25519\"\nkeyid = \"{KEYID}\"\nkey_file = \"{}\"\n",
        key_file(&ed).display()
    );
    let mut req = signed(&Signer::from_config(&config(&cfg)).unwrap(), NOW);
    set_header(&mut req, "webhook-id", "msg_other");
    assert_eq!(verifier.verify(&req, NOW), Err(VerifyError::BadSignature));
}

#[test]
fn key_of_the_wrong_type() {
    // Cavage is RSA only: an Ed25519 key under the keyid is refused, whatever the request says.
    let ed = ed25519();
    let rsa = rsa();
    let cfg = format!(
        "[[signing]]\nscheme = \"cavage\"\nkeyid = \"{KEYID}\"\nkey_file = \"{}\"\n",
        key_file(&rsa).display()
    );
    let req = signed(&Signer::from_config(&config(&cfg)).unwrap(), NOW);
    let mut keys = KeyRing::new();
    keys.add_public(Some(KEYID.into()), ed.public_key());
    assert_eq!(
        Verifier::new(keys).verify(&req, NOW),
        Err(VerifyError::WrongKeyType {
            keyid: KEYID.into(),
            key_type: "ed25519".into()
        })
    );
    // RFC 9421: a request claiming ed25519 for a keyid whose key is RSA.
    let mut keys = KeyRing::new();
    keys.add_public(Some(KEYID.into()), rsa.public_key());
    let mut req = plain_request();
    forge(
        &mut req,
        &ALL,
        &format!("{};alg=\"ed25519\"", params(NOW)),
        Forge::Ed25519(ed25519_inner(&ed)),
    );
    assert_eq!(
        Verifier::new(keys).verify(&req, NOW),
        Err(VerifyError::AlgorithmMismatch {
            claimed: "ed25519".into(),
            key: "rsa-pss-sha512".into()
        })
    );
    // A DNS record whose k= says rsa but whose p= holds an Ed25519 key is no key at all.
    let raw = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        ed.public_key().to_raw().unwrap(),
    );
    assert!(PublicKey::from_dkim_txt(&format!("v=DKIM1; k=rsa; p={raw}")).is_err());
}

#[test]
fn conflicting_repeated_standard_webhooks_headers() {
    let sw = Signer::from_config(&config(
        "[[signing]]\nscheme = \"standard-webhooks\"\nsecret = \"whsec_AAAA\"\n",
    ))
    .unwrap();
    let mut keys = KeyRing::new();
    keys.add_secret(None, Secret::parse("whsec_AAAA").unwrap());
    let mut v = Verifier::new(keys);
    v.replay = None;
    let good = signed(&sw, NOW);
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        // The same header again with another value: refused, whichever of the two is genuine.
        for genuine_first in [true, false] {
            let mut req = good.clone();
            let other = (name.to_string(), "v1,AAAA".to_string());
            if genuine_first {
                req.headers.push(other);
            } else {
                req.headers.insert(0, other);
            }
            match v.verify(&req, NOW) {
                Err(VerifyError::Malformed(m)) => {
                    assert!(m.contains("more than once"), "{name}: {m}")
                }
                other => panic!("{name} repeated: {other:?}"),
            }
        }
        // Repeated with the same value: one value, accepted.
        let mut req = good.clone();
        let same = req
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .cloned()
            .unwrap();
        req.headers.push(same);
        assert!(v.verify(&req, NOW).is_ok(), "{name} repeated identically");
    }
}
