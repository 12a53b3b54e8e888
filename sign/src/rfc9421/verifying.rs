//! Verification of RFC 9421 signatures: policy, component values, signature base.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sfv::{BareItem, ListEntry};

use super::{
    Algorithm, COMPONENTS, HEADER_CONTENT_DIGEST, HEADER_SIGNATURE, HEADER_SIGNATURE_INPUT,
    sf_string,
};
use crate::capture::Captured;
use crate::crypto;
use crate::error::VerifyError;
use crate::keyring::{KeyRing, VerifyKey};
use crate::keys::PublicKey;
use crate::standard_webhooks::check_time;

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
        match crate::request::ContentDigest::check_header(&digest, &req.body) {
            Some(true) => {}
            Some(false) => return Err(VerifyError::DigestMismatch),
            None => return Err(VerifyError::Malformed(HEADER_CONTENT_DIGEST.into())),
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
