//! RFC 9421 HTTP Message Signatures with an RFC 9530 `Content-Digest`.
//!
//! Postwire covers `@method`, `@target-uri`, `content-digest`, `content-type` and `webhook-id`,
//! with the parameters `created`, `expires`, `nonce`, `keyid` and `tag` (no `alg`: a verifier
//! takes the algorithm from the key). Algorithms: `ed25519`, `rsa-pss-sha512`, `hmac-sha256`.
//! Several signatures (labels) may travel in one request, e.g. during a key rotation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sfv::{BareItem, ListEntry};

use crate::capture::Captured;
use crate::crypto;
use crate::error::{KeyError, SignError, VerifyError};
use crate::keyring::{KeyRing, VerifyKey};
use crate::keys::{PrivateKey, PublicKey, Secret};
use crate::request::RequestParts;
use crate::standard_webhooks::check_time;

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
fn sf_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// What [`verify`] insists on.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Components every accepted signature must cover (default: [`COMPONENTS`]).
    pub required_components: Vec<String>,
    /// Only signatures with this `tag` are considered (none: any tag).
    pub expect_tag: Option<String>,
    /// Allowed clock difference for `created`, both ways, in seconds.
    pub tolerance_secs: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            required_components: COMPONENTS.iter().map(|c| c.to_string()).collect(),
            expect_tag: None,
            tolerance_secs: 300,
        }
    }
}

/// The verified facts of one RFC 9421 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub label: String,
    pub keyid: String,
    pub algorithm: Algorithm,
    pub created: i64,
    pub nonce: Option<String>,
}

fn inputs(req: &Captured) -> Result<sfv::Dictionary, VerifyError> {
    let text = req
        .header(HEADER_SIGNATURE_INPUT)
        .ok_or_else(|| VerifyError::MissingHeader(HEADER_SIGNATURE_INPUT.into()))?;
    sfv::Parser::new(&text)
        .parse()
        .map_err(|_| VerifyError::Malformed(HEADER_SIGNATURE_INPUT.into()))
}

/// The keyids the request's signatures name (to fetch before [`verify`]).
pub fn keyids(req: &Captured) -> Vec<String> {
    let Ok(dict) = inputs(req) else {
        return Vec::new();
    };
    dict.values()
        .filter_map(|e| match e {
            ListEntry::InnerList(l) => l
                .params
                .get("keyid")?
                .as_string()
                .map(|s| s.as_str().to_owned()),
            ListEntry::Item(_) => None,
        })
        .collect()
}

/// Verifies the request's signatures: accepted when one signature that passes the policy
/// verifies with its key; otherwise the first signature's error is returned.
pub fn verify(
    req: &Captured,
    keys: &KeyRing,
    policy: &Policy,
    now: i64,
) -> Result<Verified, VerifyError> {
    let dict = inputs(req)?;
    let sig_text = req
        .header(HEADER_SIGNATURE)
        .ok_or_else(|| VerifyError::MissingHeader(HEADER_SIGNATURE.into()))?;
    let sigs: sfv::Dictionary = sfv::Parser::new(&sig_text)
        .parse()
        .map_err(|_| VerifyError::Malformed(HEADER_SIGNATURE.into()))?;
    let mut first_error = None;
    for (label, entry) in &dict {
        let ListEntry::InnerList(list) = entry else {
            first_error.get_or_insert(VerifyError::Malformed(HEADER_SIGNATURE_INPUT.into()));
            continue;
        };
        let tag = list.params.get("tag").and_then(|t| t.as_string());
        if let Some(expected) = &policy.expect_tag
            && tag.map(|t| t.as_str()) != Some(expected.as_str())
        {
            continue;
        }
        let signature = match sigs.get(label.as_str()) {
            Some(ListEntry::Item(item)) => item.bare_item.as_byte_sequence(),
            _ => None,
        };
        let result = match signature {
            Some(sig) => verify_one(req, label.as_str(), list, sig, keys, policy, now),
            None => Err(VerifyError::MissingHeader(format!("signature {label}"))),
        };
        match result {
            Ok(v) => return Ok(v),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(VerifyError::NoSignature))
}

fn verify_one(
    req: &Captured,
    label: &str,
    list: &sfv::InnerList,
    signature: &[u8],
    keys: &KeyRing,
    policy: &Policy,
    now: i64,
) -> Result<Verified, VerifyError> {
    let malformed = || VerifyError::Malformed(format!("{HEADER_SIGNATURE_INPUT} {label}"));
    let mut covered = Vec::new();
    for item in &list.items {
        let name = item.bare_item.as_string().ok_or_else(malformed)?.as_str();
        if !item.params.is_empty() || covered.contains(&name) {
            return Err(malformed());
        }
        covered.push(name);
    }
    for required in &policy.required_components {
        if !covered.contains(&required.as_str()) {
            return Err(VerifyError::MissingComponent(required.clone()));
        }
    }
    let int = |name: &str| {
        list.params
            .get(name)
            .and_then(|v| v.as_integer())
            .map(i64::from)
    };
    let text = |name: &str| {
        list.params
            .get(name)
            .and_then(|v| v.as_string())
            .map(|s| s.as_str().to_owned())
    };
    let created = int("created").ok_or_else(|| VerifyError::MissingComponent("created".into()))?;
    check_time(created, now, policy.tolerance_secs)?;
    if int("expires").is_some_and(|exp| now > exp) {
        return Err(VerifyError::Expired);
    }
    let keyid = text("keyid").ok_or_else(|| VerifyError::MissingComponent("keyid".into()))?;
    let key = keys
        .get(&keyid)
        .ok_or_else(|| VerifyError::UnknownKey(keyid.clone()))?;
    let algorithm = Algorithm::for_key(key);
    if let Some(claimed) = list.params.get("alg") {
        let claimed = claimed
            .as_string()
            .map(|s| s.as_str())
            .ok_or_else(malformed)?;
        if claimed != algorithm.as_str() {
            return Err(VerifyError::AlgorithmMismatch {
                claimed: claimed.to_owned(),
                key: algorithm.as_str().to_owned(),
            });
        }
    }
    let mut base = String::new();
    for name in &covered {
        let value = component(req, name)?;
        base.push_str(&format!("\"{name}\": {value}\n"));
    }
    base.push_str(&format!(
        "\"@signature-params\": {}",
        serialize_params(list).ok_or_else(malformed)?
    ));
    let ok = match key {
        VerifyKey::Public(PublicKey::Ed25519(k)) => {
            crypto::ed25519_verify(k, base.as_bytes(), signature)
        }
        VerifyKey::Public(PublicKey::Rsa(k)) => {
            crypto::rsa_pss_sha512_verify(k, base.as_bytes(), signature)
        }
        VerifyKey::Secret(s) => {
            crypto::hmac_sha256_verify(s.as_bytes(), &[base.as_bytes()], signature)
        }
    };
    if !ok {
        return Err(VerifyError::BadSignature);
    }
    if covered.contains(&HEADER_CONTENT_DIGEST) {
        let digest = req.header(HEADER_CONTENT_DIGEST).unwrap_or_default();
        let digest = crate::request::ContentDigest::parse_header(&digest)
            .ok_or_else(|| VerifyError::Malformed(HEADER_CONTENT_DIGEST.into()))?;
        if digest != crate::request::ContentDigest::of(&req.body) {
            return Err(VerifyError::DigestMismatch);
        }
    }
    Ok(Verified {
        label: label.to_owned(),
        keyid,
        algorithm,
        created,
        nonce: text("nonce"),
    })
}

/// The value of a covered component in `req` (RFC 9421 §2.1, §2.2).
fn component(req: &Captured, name: &str) -> Result<String, VerifyError> {
    let url =
        || url::Url::parse(&req.url).map_err(|_| VerifyError::Malformed("request URL".into()));
    Ok(match name {
        "@method" => req.method.to_ascii_uppercase(),
        "@target-uri" => {
            let mut u = url()?;
            u.set_fragment(None);
            u.to_string()
        }
        "@authority" => crate::request::host_of(&url()?).to_ascii_lowercase(),
        "@scheme" => url()?.scheme().to_owned(),
        "@path" => url()?.path().to_owned(),
        "@query" => format!("?{}", url()?.query().unwrap_or_default()),
        "@request-target" => crate::request::request_target(&url()?),
        derived if derived.starts_with('@') => {
            return Err(VerifyError::Malformed(format!(
                "unsupported component {derived}"
            )));
        }
        field => req
            .header(field)
            .ok_or_else(|| VerifyError::MissingHeader(field.to_owned()))?,
    })
}

/// Re-serialises a parsed signature-params inner list (RFC 8941 §4.1).
fn serialize_params(list: &sfv::InnerList) -> Option<String> {
    let items: Vec<String> = list
        .items
        .iter()
        .map(|i| i.bare_item.as_string().map(|s| sf_string(s.as_str())))
        .collect::<Option<_>>()?;
    let mut out = format!("({})", items.join(" "));
    for (name, value) in &list.params {
        out.push(';');
        out.push_str(name.as_str());
        match value {
            BareItem::Boolean(true) => {}
            BareItem::Boolean(false) => out.push_str("=?0"),
            BareItem::Integer(i) => out.push_str(&format!("={}", i64::from(*i))),
            BareItem::String(s) => out.push_str(&format!("={}", sf_string(s.as_str()))),
            BareItem::Token(t) => out.push_str(&format!("={}", t.as_str())),
            BareItem::ByteSequence(b) => out.push_str(&format!("=:{}:", B64.encode(b))),
            _ => return None,
        }
    }
    Some(out)
}
