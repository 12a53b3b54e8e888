//! The SMTPeter-compatible profile of the draft-cavage scheme: what receivers built on
//! Copernica's PHP webhook-security library (`Verifier`, `Digest`, `DkimKey`,
//! `CopernicaRequest`) need to accept a postwire delivery unchanged.
//!
//! Their rules, and what this profile does for each:
//! - `Digest` looks the algorithm up in a table of lower-case names: the header is
//!   `Digest: sha-256=<base64>` (RFC 3230 names are case-insensitive, so every verifier reads it).
//! - `CopernicaRequest` requires the signature to cover `host`, `date`, `content-length`,
//!   `content-type`, `digest`, `x-nonce` and `x-copernica-id` (with the account id): the
//!   signed list is SMTPeter's documented one, `(request-target) host date content-length
//!   content-type x-copernica-id digest x-nonce`, and an account id is required.
//! - `DkimKey` splits the TXT record on `;` and each tag on `=` without trimming and keeps
//!   only what comes before a second `=`: the record is `v=DKIM1;k=rsa;p=<base64>` (no
//!   spaces, `v=` first), and the key's base64 must not end in `=` padding. The DER
//!   SubjectPublicKeyInfo of a 2048-bit RSA key is 294 bytes, a multiple of 3, so its base64
//!   has no padding; 3072- and 4096-bit keys (422 and 550 bytes) do, and cannot be read.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::error::KeyError;
use crate::keys::{PublicKey, keyid};

/// The account-id header SMTPeter receivers check.
pub const ACCOUNT_HEADER: &str = "x-copernica-id";
/// The headers SMTPeter signs, in its order (`x-copernica-id` carries the account id).
pub const SIGNED_HEADERS: [&str; 8] = [
    "(request-target)",
    "host",
    "date",
    "content-length",
    "content-type",
    ACCOUNT_HEADER,
    "digest",
    "x-nonce",
];
/// The RSA key size whose DNS record SMTPeter's parser reads (see the module docs).
pub const KEY_BITS: usize = 2048;

/// The TXT record text in the form SMTPeter's `DkimKey` reads: `v=DKIM1;k=rsa;p=<base64>`.
/// Refuses keys it could not read: not RSA, or a base64 value with `=` padding.
pub fn dkim_txt(key: &PublicKey) -> Result<String, KeyError> {
    let PublicKey::Rsa(_) = key else {
        return Err(KeyError::Record(
            "the SMTPeter profile signs with RSA keys only".into(),
        ));
    };
    let p = B64.encode(key.to_raw()?);
    if p.ends_with('=') {
        return Err(KeyError::Record(format!(
            "this RSA key's base64 ends in '=' padding, which SMTPeter-style receivers cut off; \
             use a {KEY_BITS}-bit key (postwire keys generate --alg rsa --bits {KEY_BITS})"
        )));
    }
    Ok(format!("v=DKIM1;k=rsa;p={p}"))
}

/// With the SMTPeter profile, refuses a signing key whose DNS record SMTPeter's parser could
/// not read (at configuration time, not when a receiver first fails).
pub fn check_key(profile: crate::cavage::Profile, key: &rsa::PrivateKey) -> Result<(), KeyError> {
    if profile == crate::cavage::Profile::Smtpeter {
        dkim_txt(&PublicKey::Rsa(Box::new(key.to_public_key())))?;
    }
    Ok(())
}

/// The zone-file line for `postwire keys dns-record --form smtpeter`: TXT strings split at
/// 255 bytes (a resolver joins them again).
pub fn dns_record(selector: &str, domain: &str, key: &PublicKey) -> Result<String, KeyError> {
    Ok(crate::keys::zone_line(
        &keyid(selector, domain),
        &dkim_txt(key)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyType, PrivateKey};

    #[test]
    fn a_2048_bit_key_gives_a_record_without_spaces_or_padding() {
        let key = PrivateKey::generate_rsa(KEY_BITS).unwrap().public_key();
        let txt = dkim_txt(&key).unwrap();
        assert!(txt.starts_with("v=DKIM1;k=rsa;p=MII"), "{txt}");
        assert!(!txt.contains(' ') && !txt.ends_with('='), "{txt}");
        // Their parser's rule: split on ';' then on '=', keep the first two parts.
        let tags: Vec<(&str, &str)> = txt
            .split(';')
            .map(|t| {
                let mut parts = t.split('=');
                (parts.next().unwrap(), parts.next().unwrap_or(""))
            })
            .collect();
        assert_eq!(tags[0], ("v", "DKIM1"));
        let p = tags.iter().find(|(k, _)| *k == "p").unwrap().1;
        assert_eq!(
            PublicKey::from_raw(KeyType::Rsa, &B64.decode(p).unwrap()).unwrap(),
            key
        );
        let line = dns_record("r1", "acme.example", &key).unwrap();
        assert!(
            line.starts_with("r1._postwire.acme.example. TXT \"v=DKIM1;k=rsa;p="),
            "{line}"
        );
    }

    #[test]
    fn keys_their_parser_cannot_read_are_refused() {
        let rsa3072 = PrivateKey::generate(KeyType::Rsa).unwrap().public_key();
        let err = dkim_txt(&rsa3072).unwrap_err().to_string();
        assert!(err.contains("--bits 2048"), "{err}");
        let ed = PrivateKey::generate(KeyType::Ed25519).unwrap().public_key();
        assert!(dkim_txt(&ed).is_err());
    }
}
