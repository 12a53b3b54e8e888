//! RFC 9421 HTTP Message Signatures with an RFC 9530 `Content-Digest`.
//!
//! Postwire covers `@method`, `@target-uri`, `content-digest`, `content-type` and `webhook-id`,
//! with the parameters `created`, `expires`, `nonce`, `keyid` and `tag` (no `alg`: a verifier
//! takes the algorithm from the key). Algorithms: `ed25519`, `rsa-pss-sha512`, `hmac-sha256`.
//! Several signatures (labels) may travel in one request, e.g. during a key rotation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::crypto;
use crate::error::{KeyError, SignError};
use crate::keyring::VerifyKey;
use crate::keys::{PrivateKey, PublicKey, Secret};
use crate::request::RequestParts;

mod verifying;
pub use verifying::{Policy, Verified, keyids, verify};

pub const HEADER_SIGNATURE_INPUT: &str = "signature-input";
pub const HEADER_SIGNATURE: &str = "signature";
pub const HEADER_CONTENT_DIGEST: &str = "content-digest";

/// The components postwire signs, in order; also what [`verify`] requires by default.
pub const COMPONENTS: [&str; 5] = [
    "@method",
    "@target-uri",
    "content-digest",
    "content-type",
    "webhook-id",
];

/// An RFC 9421 signature algorithm (the registry's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    Ed25519,
    RsaPssSha512,
    HmacSha256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::RsaPssSha512 => "rsa-pss-sha512",
            Algorithm::HmacSha256 => "hmac-sha256",
        }
    }

    /// The only algorithm a verifier uses with `key`: bound to the key, not to the request.
    pub fn for_key(key: &VerifyKey) -> Algorithm {
        match key {
            VerifyKey::Public(PublicKey::Ed25519(_)) => Algorithm::Ed25519,
            VerifyKey::Public(PublicKey::Rsa(_)) => Algorithm::RsaPssSha512,
            VerifyKey::Secret(_) => Algorithm::HmacSha256,
        }
    }
}

/// What an RFC 9421 signature is made with.
#[allow(clippy::large_enum_variant)] // built once per endpoint, never moved in a hot path
#[derive(Debug, Clone)]
pub enum SigningMaterial {
    Private(PrivateKey),
    Secret(Secret),
}

/// One signature (one label) of an endpoint's RFC 9421 signing.
#[derive(Debug, Clone)]
pub struct Rfc9421Signer {
    label: String,
    material: SigningMaterial,
    keyid: String,
    tag: Option<String>,
    expires_secs: Option<i64>,
}

impl Rfc9421Signer {
    /// Checks that `material` fits `alg` and that label, keyid and tag are valid field text.
    pub fn new(
        label: &str,
        alg: Algorithm,
        material: SigningMaterial,
        keyid: &str,
        tag: Option<&str>,
        expires_secs: Option<i64>,
    ) -> Result<Self, KeyError> {
        let fits = matches!(
            (alg, &material),
            (
                Algorithm::Ed25519,
                SigningMaterial::Private(PrivateKey::Ed25519(_))
            ) | (
                Algorithm::RsaPssSha512,
                SigningMaterial::Private(PrivateKey::Rsa(_))
            ) | (Algorithm::HmacSha256, SigningMaterial::Secret(_))
        );
        if !fits {
            return Err(KeyError::Record(format!(
                "the key configured for RFC 9421 does not fit algorithm {}",
                alg.as_str()
            )));
        }
        if sfv::KeyRef::from_str(label).is_err() {
            return Err(KeyError::Record(format!("bad signature label {label:?}")));
        }
        for text in std::iter::once(keyid).chain(tag) {
            if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(KeyError::Record(format!("{text:?} is not printable ASCII")));
            }
        }
        Ok(Self {
            label: label.to_owned(),

            material,
            keyid: keyid.to_owned(),
            tag: tag.map(str::to_owned),
            expires_secs,
        })
    }

    /// The signature's label in `Signature-Input` and `Signature`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// `(Signature-Input member, Signature member)` for `req` at `now` (unix seconds).
    pub fn sign(&self, req: &RequestParts<'_>, now: i64) -> Result<(String, String), SignError> {
        let target = url::Url::parse(req.url).map_err(|_| SignError::Url(req.url.to_owned()))?;
        let mut target = target.to_string();
        if let Some(i) = target.find('#') {
            target.truncate(i);
        }
        let digest = req.content_digest.header_value();
        let values = [
            req.method,
            &target,
            &digest,
            req.content_type,
            req.webhook_id,
        ];
        let mut params = format!("created={now}");
        if let Some(exp) = self.expires_secs {
            params.push_str(&format!(";expires={}", now + exp));
        }
        params.push_str(&format!(";nonce={}", sf_string(&crypto::nonce()?)));
        params.push_str(&format!(";keyid={}", sf_string(&self.keyid)));
        if let Some(tag) = &self.tag {
            params.push_str(&format!(";tag={}", sf_string(tag)));
        }
        let list: Vec<String> = COMPONENTS.iter().map(|c| sf_string(c)).collect();
        let sig_params = format!("({});{params}", list.join(" "));
        let mut base = String::new();
        for (name, value) in COMPONENTS.iter().zip(values) {
            base.push_str(&format!("\"{name}\": {}\n", value.trim()));
        }
        base.push_str(&format!("\"@signature-params\": {sig_params}"));
        let sig = match &self.material {
            SigningMaterial::Private(PrivateKey::Ed25519(k)) => {
                crypto::ed25519_sign(k, base.as_bytes())
            }
            SigningMaterial::Private(PrivateKey::Rsa(k)) => {
                crypto::rsa_pss_sha512_sign(k, base.as_bytes())?
            }
            SigningMaterial::Secret(s) => crypto::hmac_sha256(s.as_bytes(), &[base.as_bytes()]),
        };
        Ok((
            format!("{}={sig_params}", self.label),
            format!("{}=:{}:", self.label, B64.encode(sig)),
        ))
    }
}

/// An sf-string: quoted, with `\` and `"` escaped. Callers pass printable ASCII.
pub(crate) fn sf_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
