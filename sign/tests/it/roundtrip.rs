//! Every scheme signed by `Signer` verifies with `Verifier`; rotation signs with old and new
//! keys during the overlap and with the new key only afterwards.

use postwire_sign::keydir::KeyDir;
use postwire_sign::keyring::KeyRing;
use postwire_sign::keys::{KeyType, Secret, keyid};
use postwire_sign::{Scheme, Signer, Verifier, VerifyError};

use crate::support::*;

fn verifier(keys: KeyRing) -> Verifier {
    Verifier::new(keys)
}

#[test]
fn standard_webhooks_v1_and_v1a_in_one_header() {
    let ed = ed25519();
    let signer = Signer::from_config(&config(&format!(
        "[[signing]]\nscheme = \"standard-webhooks\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\
         [[signing]]\nscheme = \"standard-webhooks\"\nkey_file = \"{}\"\n",
        key_file(&ed).display()
    )))
    .unwrap();
    let req = signed(&signer, NOW);
    let sig = req.header("webhook-signature").unwrap();
    assert!(sig.starts_with("v1,") && sig.contains(" v1a,"), "{sig}");
    let mut by_secret = KeyRing::new();
    by_secret.add_secret(
        None,
        Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
    );
    assert_eq!(
        verifier(by_secret).verify(&req, NOW).unwrap().scheme,
        Scheme::StandardWebhooks
    );
    let mut by_key = KeyRing::new();
    by_key.add_public(None, ed.public_key());
    verifier(by_key).verify(&req, NOW + 10).unwrap();
    assert_eq!(
        verifier(KeyRing::new()).verify(&req, NOW),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn rfc9421_with_each_algorithm() {
    let ed = ed25519();
    let rsa = rsa();
    let cases = [
        (
            format!(
                "alg = \"ed25519\"\nkey_file = \"{}\"",
                key_file(&ed).display()
            ),
            Some(ed.public_key()),
        ),
        (
            format!(
                "alg = \"rsa-pss-sha512\"\nkey_file = \"{}\"",
                key_file(&rsa).display()
            ),
            Some(rsa.public_key()),
        ),
        (
            "alg = \"hmac-sha256\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"".to_owned(),
            None,
        ),
    ];
    for (alg, public) in cases {
        let cfg = format!("[[signing]]\nscheme = \"rfc9421\"\nkeyid = \"{KEYID}\"\n{alg}\n");
        let req = signed(&Signer::from_config(&config(&cfg)).unwrap(), NOW);
        let input = req.header("signature-input").unwrap();
        for part in [
            "created=",
            "expires=",
            "nonce=",
            "keyid=",
            "tag=\"postwire\"",
            "\"content-digest\"",
        ] {
            assert!(input.contains(part), "{part} missing in {input}");
        }
        let mut keys = KeyRing::new();
        match public {
            Some(p) => keys.add_public(Some(KEYID.into()), p),
            None => keys.add_secret(
                Some(KEYID.into()),
                Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
            ),
        };
        let v = verifier(keys).verify(&req, NOW + 1).unwrap();
        assert_eq!(
            (v.scheme, v.keyid.as_deref()),
            (Scheme::Rfc9421, Some(KEYID)),
            "{alg}"
        );
    }
}

#[test]
fn cavage_with_account_header() {
    let rsa = rsa();
    let cfg = format!(
        "[[signing]]\nscheme = \"cavage\"\nkeyid = \"{KEYID}\"\nkey_file = \"{}\"\naccount_id = \"4711\"\n",
        key_file(&rsa).display()
    );
    let req = signed(&Signer::from_config(&config(&cfg)).unwrap(), NOW);
    assert_eq!(req.header("x-account-id").as_deref(), Some("4711"));
    assert!(req.header("digest").unwrap().starts_with("SHA-256="));
    assert!(req.header("x-nonce").is_some() && req.header("date").is_some());
    let mut keys = KeyRing::new();
    keys.add_public(Some(KEYID.into()), rsa.public_key());
    assert_eq!(
        verifier(keys).verify(&req, NOW).unwrap().scheme,
        Scheme::Cavage
    );
}

#[test]
fn bearer_and_basic() {
    let req = signed(
        &Signer::from_config(&config(
            "[[signing]]\nscheme = \"bearer\"\ntoken = \"t0k\"\n",
        ))
        .unwrap(),
        NOW,
    );
    let mut v = verifier(KeyRing::new());
    v.bearer_tokens = vec!["other".into()];
    assert_eq!(v.verify(&req, NOW), Err(VerifyError::BadCredentials));
    v.bearer_tokens.push("t0k".into());
    assert_eq!(v.verify(&req, NOW).unwrap().scheme, Scheme::Bearer);
    let req = signed(
        &Signer::from_config(&config(
            "[[signing]]\nscheme = \"basic\"\nusername = \"u\"\npassword = \"p:w\"\n",
        ))
        .unwrap(),
        NOW,
    );
    v.basic_credentials = vec![("u".into(), "p:w".into())];
    assert_eq!(v.verify(&req, NOW).unwrap().scheme, Scheme::Basic);
}

#[test]
fn config_errors_name_the_entry() {
    let err = Signer::from_config(&config(
        "[[signing]]\nscheme = \"rfc9421\"\nalg = \"ed25519\"\nkeyid = \"k\"\n",
    ))
    .unwrap_err();
    assert!(err.to_string().starts_with("signing[0] (rfc9421)"), "{err}");
    let rsa_file = key_file(&rsa());
    let err = Signer::from_config(&config(&format!(
        "[[signing]]\nscheme = \"rfc9421\"\nalg = \"ed25519\"\nkeyid = \"k\"\nkey_file = \"{}\"\n",
        rsa_file.display()
    )))
    .unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
}

#[test]
fn rotation_overlaps_then_retires_the_old_selector() {
    let dir = std::env::temp_dir().join(format!("postwire-sign-it-rot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut kd = KeyDir::create(&dir, "acme.example");
    kd.rotate("s1", KeyType::Ed25519, NOW - 1000, 3600).unwrap();
    kd.save().unwrap();
    let cfg = format!(
        "[[signing]]\nscheme = \"rfc9421\"\nalg = \"ed25519\"\nkeyring = \"{}\"\n",
        dir.display()
    );
    let old_key = kd.load_key(&kd.keys[0]).unwrap().public_key();
    kd.rotate("s2", KeyType::Ed25519, NOW, 3600).unwrap();
    kd.save().unwrap();
    let new_key = kd.load_key(&kd.keys[1]).unwrap().public_key();
    let signer = Signer::from_config(&config(&cfg)).unwrap();
    let (old_id, new_id) = (keyid("s1", "acme.example"), keyid("s2", "acme.example"));

    // During the overlap both sign; a receiver knowing either key accepts.
    let during = signed(&signer, NOW + 60);
    let input = during.header("signature-input").unwrap();
    assert!(
        input.contains(&old_id) && input.contains(&new_id),
        "{input}"
    );
    for (id, key) in [(&old_id, &old_key), (&new_id, &new_key)] {
        let mut keys = KeyRing::new();
        keys.add_public(Some(id.clone()), key.clone());
        let v = verifier(keys).verify(&during, NOW + 60).unwrap();
        assert_eq!(v.keyid.as_deref(), Some(id.as_str()));
    }
    // The JWKS document lists both keys during the overlap, the new one only afterwards.
    assert_eq!(
        kd.jwks(NOW + 60).unwrap()["keys"].as_array().unwrap().len(),
        2
    );
    let jwks = kd.jwks(NOW + 3601).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], new_id.as_str());
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    // After the overlap only the new key signs.
    let after = signed(&signer, NOW + 3601);
    let input = after.header("signature-input").unwrap();
    assert!(
        !input.contains(&old_id) && input.contains(&new_id),
        "{input}"
    );
    let mut only_old = KeyRing::new();
    only_old.add_public(Some(old_id.clone()), old_key);
    assert_eq!(
        verifier(only_old).verify(&after, NOW + 3601),
        Err(VerifyError::UnknownKey(new_id))
    );
}

#[test]
fn duplicate_rfc9421_labels_are_refused() {
    let secret = "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"";
    let entry = format!(
        "[[signing]]\nscheme = \"rfc9421\"\nalg = \"hmac-sha256\"\nkeyid = \"k\"\n{secret}\nlabel = \"a\"\n"
    );
    let err = Signer::from_config(&config(&format!("{entry}{entry}"))).unwrap_err();
    assert!(err.to_string().contains("share a label"), "{err}");
    // Without labels, two entries get sig1 and sig2 and both verify.
    let entry = entry.replace("label = \"a\"\n", "");
    let req = signed(
        &Signer::from_config(&config(&format!("{entry}{entry}"))).unwrap(),
        NOW,
    );
    assert!(req.header("signature").unwrap().contains("sig2=:"));
}

#[test]
fn a_request_with_several_schemes_verifies_with_whichever_key_the_receiver_holds() {
    let ed = ed25519();
    let cfg = format!(
        "[[signing]]\nscheme = \"standard-webhooks\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\
         [[signing]]\nscheme = \"rfc9421\"\nalg = \"ed25519\"\nkeyid = \"{KEYID}\"\nkey_file = \"{}\"\n",
        key_file(&ed).display()
    );
    let req = signed(&Signer::from_config(&config(&cfg)).unwrap(), NOW);
    let mut only_secret = KeyRing::new();
    only_secret.add_secret(
        None,
        Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
    );
    assert_eq!(
        verifier(only_secret).verify(&req, NOW).unwrap().scheme,
        Scheme::StandardWebhooks
    );
    let mut only_key = KeyRing::new();
    only_key.add_public(Some(KEYID.into()), ed.public_key());
    assert_eq!(
        verifier(only_key).verify(&req, NOW).unwrap().scheme,
        Scheme::Rfc9421
    );
    // With neither, the informative error wins over "no key for keyid".
    assert_eq!(
        verifier(KeyRing::new()).verify(&req, NOW),
        Err(VerifyError::BadSignature)
    );
}
