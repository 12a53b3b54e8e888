//! Signing and verifying postwire webhooks.
//!
//! Senders build a [`Signer`] from an endpoint's [`SigningConfig`] list and call
//! [`Signer::sign`] at every attempt with the delivery's [`RequestParts`] (body and
//! [`ContentDigest`] fixed per delivery, timestamp fresh per attempt). Receivers build a
//! [`Verifier`] with the keys they trust and check a [`capture::Captured`] request; with the
//! `dns` feature, [`dns::DnsKeys`] fetches public keys published as DKIM-style TXT records.
//!
//! What lives where:
//! - [`standard_webhooks`]: `webhook-signature` `v1` (HMAC-SHA256) and `v1a` (Ed25519).
//! - [`rfc9421`]: HTTP Message Signatures (ed25519, rsa-pss-sha512, hmac-sha256) with
//!   `Content-Digest` ([`request`]).
//! - [`cavage`]: legacy draft-cavage `Signature` (rsa-sha256) with `Digest`, `Date`, `X-Nonce`;
//!   [`smtpeter`]: its profile for receivers built on Copernica's PHP library.
//! - [`auth`]: bearer token and basic auth.
//! - [`keys`]: key pairs, secrets, DNS records; [`keydir`]: rotation; [`jwks`]: JWKS document.
//! - [`keyring`], [`verify`], [`replay`], [`capture`]: the receiving side; [`dns`] (feature).
//! - [`config`] and [`Signer`]: the sending side's per-endpoint configuration.
//!
//! Default features pull in no async runtime; `dns` adds hickory-resolver (tokio).
//!
//! Decisions (and why):
//! - Postwire's RFC 9421 signatures carry no `alg` parameter; a verifier binds the algorithm
//!   to the key (`k=` in DNS). When a request does carry `alg`, it must match the key's, which
//!   defeats algorithm confusion (an HMAC keyed with a public key).
//! - RFC 9421 and draft-cavage both use the `Signature` header, so one endpoint can have one
//!   of them, not both ([`Signer::from_config`] refuses the combination).
//! - DNS records follow DKIM: `p=` is the raw 32-byte key for Ed25519 (RFC 8463) and the DER
//!   SubjectPublicKeyInfo for RSA; TXT strings are split at 255 bytes.
//! - Replay keys: the nonce when signed (RFC 9421 `nonce`, cavage `X-Nonce`), otherwise
//!   `webhook-id` with the timestamp, so a retry (fresh timestamp) is not taken for a replay.
//! - `whsk_`/`whpk_` Standard Webhooks keys are base64 of the 32-byte Ed25519 seed / public
//!   key (a 64-byte seed-and-public `whsk_` is accepted too). Ed25519 PEM files are PKCS#8 v1
//!   (seed only), which OpenSSL and Python's `cryptography` read.
#![forbid(unsafe_code)]

pub mod auth;
pub mod capture;
pub mod cavage;
pub mod config;
mod crypto;
#[cfg(feature = "dns")]
pub mod dns;
pub mod error;
pub mod jwks;
pub mod keydir;
pub mod keyring;
pub mod keys;
pub mod replay;
pub mod request;
pub mod rfc9421;
mod signer;
pub mod smtpeter;
pub mod standard_webhooks;
pub mod verify;

pub use config::{ConfigError, SigningConfig};
pub use error::{KeyError, SignError, VerifyError};
pub use request::{ContentDigest, RequestParts};
pub use signer::Signer;
pub use verify::{Scheme, UnknownScheme, Verified, Verifier};
