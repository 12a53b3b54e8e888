//! The SMTPeter profile of draft-cavage: the headers SMTPeter signs, the lower-case digest
//! name, the account id in `x-copernica-id`, and keys whose DNS record their parser reads.

use postwire_sign::keyring::KeyRing;
use postwire_sign::keys::PrivateKey;
use postwire_sign::{Scheme, Signer, Verifier};

use crate::support::{NOW, config, key_file, rsa, signed};

const KEYID: &str = "r1._postwire.acme.example";

fn rsa2048() -> PrivateKey {
    static KEY: std::sync::OnceLock<PrivateKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate_rsa(2048).unwrap())
        .clone()
}

fn smtpeter(key: &PrivateKey, account: Option<&str>) -> String {
    let account = account.map_or(String::new(), |a| format!("account_id = \"{a}\"\n"));
    format!(
        "[[signing]]\nscheme = \"cavage\"\nprofile = \"smtpeter\"\nkeyid = \"{KEYID}\"\nkey_file = \"{}\"\n{account}",
        key_file(key).display()
    )
}

#[test]
fn signs_smtpeters_header_list_with_a_lower_case_digest() {
    let key = rsa2048();
    let req = signed(
        &Signer::from_config(&config(&smtpeter(&key, Some("4711")))).unwrap(),
        NOW,
    );
    let sig = req.header("signature").unwrap();
    assert!(
        sig.contains(
            "headers=\"(request-target) host date content-length content-type x-copernica-id digest x-nonce\""
        ),
        "{sig}"
    );
    assert!(sig.contains("algorithm=\"rsa-sha256\""), "{sig}");
    assert!(req.header("digest").unwrap().starts_with("sha-256="));
    assert_eq!(req.header("x-copernica-id").as_deref(), Some("4711"));
    // The HTTP client sets Content-Length; the signer does not add a second one.
    assert!(req.header("content-length").is_none());
    let mut req = req;
    req.headers
        .push(("Content-Length".into(), req.body.len().to_string()));
    let mut keys = KeyRing::new();
    keys.add_public(Some(KEYID.into()), key.public_key());
    let v = Verifier::new(keys).verify(&req, NOW).unwrap();
    assert_eq!(v.scheme, Scheme::Cavage);
}

#[test]
fn needs_an_account_id_and_a_key_their_dns_parser_reads() {
    let err = Signer::from_config(&config(&smtpeter(&rsa2048(), None))).unwrap_err();
    assert!(err.to_string().contains("needs account_id"), "{err}");
    // The 3072-bit default key: its record's base64 ends in '=', which their parser cuts off.
    let err = Signer::from_config(&config(&smtpeter(&rsa(), Some("1")))).unwrap_err();
    assert!(err.to_string().contains("--bits 2048"), "{err}");
}
