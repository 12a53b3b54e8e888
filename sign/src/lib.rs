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
//! - [`cavage`]: legacy draft-cavage `Signature` (rsa-sha256) with `Digest`, `Date`, `X-Nonce`.
//! - [`auth`]: bearer token and basic auth.
//! - [`keys`]: key pairs, secrets, DNS records; [`keydir`]: rotation; [`jwks`]: JWKS document.
//! - [`keyring`], [`verify`], [`replay`], [`capture`]: the receiving side; [`dns`] (feature).
//! - [`config`] and [`Signer`]: the sending side's per-endpoint configuration.
//!
//! Default features pull in no async runtime; `dns` adds hickory-resolver (tokio).
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
pub mod standard_webhooks;
pub mod verify;

pub use config::{ConfigError, SigningConfig};
pub use error::{KeyError, SignError, VerifyError};
pub use request::{ContentDigest, RequestParts};
pub use signer::Signer;
pub use verify::{Scheme, Verified, Verifier};
