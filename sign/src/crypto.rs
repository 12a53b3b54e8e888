//! The signature algorithms, as small functions over bytes. Verification is constant-time
//! where the algorithm allows it (HMAC comparison through `Mac::verify_slice`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use sha2::{Sha256, Sha512};

use crate::error::SignError;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    for part in parts {
        m.update(part);
    }
    m
}

pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    hmac(key, parts).finalize().into_bytes().to_vec()
}

pub(crate) fn hmac_sha256_verify(key: &[u8], parts: &[&[u8]], sig: &[u8]) -> bool {
    hmac(key, parts).verify_slice(sig).is_ok()
}

pub(crate) fn ed25519_sign(key: &ed25519_dalek::SigningKey, msg: &[u8]) -> Vec<u8> {
    key.sign(msg).to_bytes().to_vec()
}

pub(crate) fn ed25519_verify(key: &ed25519_dalek::VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    ed25519_dalek::Signature::from_slice(sig).is_ok_and(|s| key.verify_strict(msg, &s).is_ok())
}

pub(crate) fn rsa_pss_sha512_sign(key: &rsa::PrivateKey, msg: &[u8]) -> Result<Vec<u8>, SignError> {
    rsa::pss::SigningKey::<Sha512>::new(key.clone())
        .try_sign(msg)
        .map(|s| s.to_vec())
        .map_err(|e| SignError::Crypto {
            alg: "rsa-pss-sha512",
            reason: e.to_string(),
        })
}

pub(crate) fn rsa_pss_sha512_verify(key: &rsa::PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(sig) = rsa::pss::Signature::try_from(sig) else {
        return false;
    };
    rsa::pss::VerifyingKey::<Sha512>::new(key.clone())
        .verify(msg, &sig)
        .is_ok()
}

pub(crate) fn rsa_sha256_sign(key: &rsa::PrivateKey, msg: &[u8]) -> Result<Vec<u8>, SignError> {
    rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone())
        .try_sign(msg)
        .map(|s| s.to_vec())
        .map_err(|e| SignError::Crypto {
            alg: "rsa-sha256",
            reason: e.to_string(),
        })
}

pub(crate) fn rsa_sha256_verify(key: &rsa::PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(sig) = rsa::pkcs1v15::Signature::try_from(sig) else {
        return false;
    };
    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.clone())
        .verify(msg, &sig)
        .is_ok()
}

/// 16 random bytes, base64url without padding: a nonce safe in any header or SF string.
pub(crate) fn nonce() -> Result<String, SignError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| SignError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Equality that does not stop at the first difference (lengths are not secret).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The operating system's random source, for RSA key generation of a chosen size.
pub(crate) struct OsRng;

impl rsa::rand_core::TryRng for OsRng {
    type Error = getrandom::Error;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        getrandom::fill(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        getrandom::fill(dst)
    }
}

impl rsa::rand_core::TryCryptoRng for OsRng {}
