//! Public keys as a JSON Web Key Set (RFC 7517; Ed25519 as an OKP key per RFC 8037), for
//! `/.well-known/postwire-keys.json`. `kid` is the keyid (the DNS name).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};

use crate::keys::PublicKey;

/// Where the document is served.
pub const WELL_KNOWN_PATH: &str = "/.well-known/postwire-keys.json";

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// One JWK: `alg` names the algorithm postwire's RFC 9421 signatures use with it.
pub fn jwk(kid: &str, key: &PublicKey) -> Value {
    match key {
        PublicKey::Ed25519(k) => json!({
            "kty": "OKP", "crv": "Ed25519", "x": B64URL.encode(k.as_bytes()),
            "kid": kid, "use": "sig", "alg": "EdDSA",
        }),
        PublicKey::Rsa(k) => json!({
            "kty": "RSA", "n": B64URL.encode(trim(&k.n_bytes())), "e": B64URL.encode(trim(&k.e_bytes())),
            "kid": kid, "use": "sig", "alg": "PS512",
        }),
    }
}

/// `{"keys": [...]}` for `(keyid, key)` pairs.
pub fn jwks<'a>(keys: impl IntoIterator<Item = (&'a str, &'a PublicKey)>) -> Value {
    json!({ "keys": keys.into_iter().map(|(kid, k)| jwk(kid, k)).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyType, PrivateKey};

    #[test]
    fn ed25519_jwk_has_raw_key_in_x() {
        let k = PrivateKey::generate(KeyType::Ed25519).unwrap().public_key();
        let doc = jwks([("s1._postwire.example.com", &k)]);
        let x = doc["keys"][0]["x"].as_str().unwrap();
        assert_eq!(B64URL.decode(x).unwrap(), k.to_raw().unwrap());
        assert_eq!(doc["keys"][0]["kid"], "s1._postwire.example.com");
        assert_eq!(doc["keys"][0]["crv"], "Ed25519");
    }
}
