//! The legacy draft-cavage HTTP Signatures scheme (draft-cavage-http-signatures-12) as
//! SMTPeter-style receivers expect it: a `Signature` header with `rsa-sha256` over
//! `(request-target) host date digest content-type webhook-id x-nonce` and the account-id
//! header, an RFC 3230 `Digest`, a `Date` and an `X-Nonce`. [`Profile::Smtpeter`] signs
//! SMTPeter's own header list instead, for receivers built on Copernica's PHP library
//! ([`crate::smtpeter`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::capture::Captured;
use crate::crypto;
use crate::error::{SignError, VerifyError};
use crate::keyring::{KeyRing, VerifyKey};
use crate::keys::PublicKey;
use crate::request::{ContentDigest, RequestParts, host_of, request_target};
use crate::standard_webhooks::check_time;

pub const HEADER_SIGNATURE: &str = "signature";
pub const HEADER_DIGEST: &str = "digest";
pub const HEADER_DATE: &str = "date";
pub const HEADER_NONCE: &str = "x-nonce";
/// The account-id header name unless configured otherwise.
pub const DEFAULT_ACCOUNT_HEADER: &str = "x-account-id";
/// The only algorithm name this scheme signs with or accepts.
pub const ALGORITHM: &str = "rsa-sha256";

/// What every accepted cavage signature must cover.
pub const REQUIRED: [&str; 4] = ["(request-target)", "host", "date", "digest"];

/// Which headers a cavage signature covers and how `Digest` is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// `(request-target) host date digest content-type webhook-id x-nonce` and the account
    /// header when set; `Digest: SHA-256=…`.
    #[default]
    Postwire,
    /// SMTPeter's list, `(request-target) host date content-length content-type
    /// x-copernica-id digest x-nonce`; `Digest: sha-256=…` ([`crate::smtpeter`]).
    Smtpeter,
}

impl Profile {
    /// The account-id header unless configured otherwise.
    pub fn default_account_header(self) -> &'static str {
        match self {
            Profile::Postwire => DEFAULT_ACCOUNT_HEADER,
            Profile::Smtpeter => crate::smtpeter::ACCOUNT_HEADER,
        }
    }
}

/// Signs with an RSA key; `account` is `(header name, value)` when the receiver wants one.
#[derive(Debug, Clone)]
pub struct CavageSigner {
    key: Box<rsa::PrivateKey>,
    keyid: String,
    account: Option<(String, String)>,
    profile: Profile,
}

impl CavageSigner {
    pub fn new(key: Box<rsa::PrivateKey>, keyid: &str, account: Option<(String, String)>) -> Self {
        Self {
            key,
            keyid: keyid.to_owned(),
            account: account.map(|(h, v)| (h.to_ascii_lowercase(), v)),
            profile: Profile::Postwire,
        }
    }

    /// The same signer with `profile`'s header list.
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// The headers to add: `Date`, `Digest`, `X-Nonce`, the account header, `Signature`.
    pub fn sign(
        &self,
        req: &RequestParts<'_>,
        now: i64,
    ) -> Result<Vec<(String, String)>, SignError> {
        let url = url::Url::parse(req.url).map_err(|_| SignError::Url(req.url.to_owned()))?;
        let date = httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.max(0) as u64),
        );
        let target = format!(
            "{} {}",
            req.method.to_ascii_lowercase(),
            request_target(&url)
        );
        let digest = req.content_digest.legacy_header_value();
        let signed: Vec<(String, String)> = match self.profile {
            Profile::Postwire => {
                let mut signed = vec![
                    ("(request-target)".into(), target),
                    ("host".into(), host_of(&url)),
                    (HEADER_DATE.into(), date),
                    (HEADER_DIGEST.into(), digest),
                    ("content-type".into(), req.content_type.to_owned()),
                    ("webhook-id".into(), req.webhook_id.to_owned()),
                    (HEADER_NONCE.into(), crypto::nonce()?),
                ];
                if let Some((name, value)) = &self.account {
                    signed.push((name.clone(), value.clone()));
                }
                signed
            }
            Profile::Smtpeter => {
                // Lower-case algorithm name: SMTPeter's Digest class knows no other spelling.
                let digest = digest.replacen("SHA-256=", "sha-256=", 1);
                let (account_header, account) = self
                    .account
                    .clone()
                    .unwrap_or_else(|| (crate::smtpeter::ACCOUNT_HEADER.into(), String::new()));
                vec![
                    ("(request-target)".into(), target),
                    ("host".into(), host_of(&url)),
                    (HEADER_DATE.into(), date),
                    ("content-length".into(), req.body.len().to_string()),
                    ("content-type".into(), req.content_type.to_owned()),
                    (account_header, account),
                    (HEADER_DIGEST.into(), digest),
                    (HEADER_NONCE.into(), crypto::nonce()?),
                ]
            }
        };
        let string = signing_string(signed.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let sig = crypto::rsa_sha256_sign(&self.key, string.as_bytes())?;
        let names: Vec<&str> = signed.iter().map(|(n, _)| n.as_str()).collect();
        let header = format!(
            "keyId=\"{}\",algorithm=\"{ALGORITHM}\",headers=\"{}\",signature=\"{}\"",
            self.keyid,
            names.join(" "),
            B64.encode(sig)
        );
        let mut out: Vec<(String, String)> = signed
            .into_iter()
            .filter(|(n, _)| {
                !matches!(
                    n.as_str(),
                    "(request-target)" | "host" | "content-type" | "content-length" | "webhook-id"
                )
            })
            .collect();
        out.push((HEADER_SIGNATURE.into(), header));
        Ok(out)
    }
}

fn signing_string<'a>(lines: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    lines
        .map(|(n, v)| format!("{n}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The parameters of a `Signature` (or `Authorization: Signature …`) header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pub key_id: String,
    pub algorithm: Option<String>,
    pub headers: Vec<String>,
    pub signature: Vec<u8>,
}

/// Parses `keyId="…",algorithm="…",headers="…",signature="…"`.
pub fn parse(value: &str) -> Result<Params, VerifyError> {
    let bad = || VerifyError::Malformed("Signature header".into());
    let mut p = Params {
        headers: vec!["date".into()],
        ..Params::default()
    };
    let mut rest = value.trim();
    rest = rest.strip_prefix("Signature ").unwrap_or(rest);
    let (mut key_id, mut signature) = (None, None);
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=').ok_or_else(bad)?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').ok_or_else(bad)?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => after.split_once(',').map_or((after, ""), |(v, a)| (v, a)),
        };
        match name.trim() {
            "keyId" => key_id = Some(value.to_owned()),
            "algorithm" => p.algorithm = Some(value.to_ascii_lowercase()),
            "headers" => {
                p.headers = value
                    .split_whitespace()
                    .map(|h| h.to_ascii_lowercase())
                    .collect()
            }
            "signature" => signature = Some(B64.decode(value).map_err(|_| bad())?),
            _ => {}
        }
        rest = after.trim_start().trim_start_matches(',').trim_start();
    }
    p.key_id = key_id.ok_or_else(bad)?;
    p.signature = signature.ok_or_else(bad)?;
    Ok(p)
}

fn signature_header(req: &Captured) -> Option<String> {
    req.header(HEADER_SIGNATURE).or_else(|| {
        req.header("authorization")
            .filter(|a| a.starts_with("Signature "))
    })
}

/// The keyid the request names, if it carries a cavage signature.
pub fn keyid(req: &Captured) -> Option<String> {
    parse(&signature_header(req)?).ok().map(|p| p.key_id)
}

/// The verified facts of a cavage request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub keyid: String,
    pub date: i64,
    /// The signed `X-Nonce`, when the signature covers one.
    pub nonce: Option<String>,
}

/// Verifies a cavage signature with an RSA key from `keys`: required headers covered, `Date`
/// within `tolerance_secs`, `Digest` matching the body, then the RSA-SHA256 signature.
pub fn verify(
    req: &Captured,
    keys: &KeyRing,
    now: i64,
    tolerance_secs: i64,
) -> Result<Verified, VerifyError> {
    let header =
        signature_header(req).ok_or_else(|| VerifyError::MissingHeader(HEADER_SIGNATURE.into()))?;
    let p = parse(&header)?;
    for required in REQUIRED {
        if !p.headers.iter().any(|h| h == required) {
            return Err(VerifyError::MissingComponent(required.into()));
        }
    }
    let key = keys
        .get(&p.key_id)
        .ok_or_else(|| VerifyError::UnknownKey(p.key_id.clone()))?;
    let VerifyKey::Public(PublicKey::Rsa(rsa_key)) = key else {
        return Err(VerifyError::WrongKeyType {
            keyid: p.key_id.clone(),
            key_type: key.kind().into(),
        });
    };
    if let Some(alg) = &p.algorithm
        && alg != ALGORITHM
    {
        return Err(VerifyError::AlgorithmMismatch {
            claimed: alg.clone(),
            key: ALGORITHM.into(),
        });
    }
    let date_text = req
        .header(HEADER_DATE)
        .ok_or_else(|| VerifyError::MissingHeader(HEADER_DATE.into()))?;
    let date = httpdate::parse_http_date(&date_text)
        .map_err(|_| VerifyError::Malformed(HEADER_DATE.into()))?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    check_time(date, now, tolerance_secs)?;
    let url =
        url::Url::parse(&req.url).map_err(|_| VerifyError::Malformed("request URL".into()))?;
    let mut lines = Vec::new();
    for name in &p.headers {
        let value = match name.as_str() {
            "(request-target)" => format!(
                "{} {}",
                req.method.to_ascii_lowercase(),
                request_target(&url)
            ),
            "host" => req.header("host").unwrap_or_else(|| host_of(&url)),
            other if other.starts_with('(') => {
                return Err(VerifyError::Malformed(format!(
                    "unsupported pseudo-header {other}"
                )));
            }
            other => req
                .header(other)
                .ok_or_else(|| VerifyError::MissingHeader(other.into()))?,
        };
        lines.push((name.as_str(), value));
    }
    let string = signing_string(lines.iter().map(|(n, v)| (*n, v.as_str())));
    if !crypto::rsa_sha256_verify(rsa_key, string.as_bytes(), &p.signature) {
        return Err(VerifyError::BadSignature);
    }
    let digest = req.header(HEADER_DIGEST).unwrap_or_default();
    let digest = ContentDigest::parse_legacy_header(&digest)
        .ok_or_else(|| VerifyError::Malformed(HEADER_DIGEST.into()))?;
    if digest != ContentDigest::of(&req.body) {
        return Err(VerifyError::DigestMismatch);
    }
    let nonce = p
        .headers
        .iter()
        .any(|h| h == HEADER_NONCE)
        .then(|| req.header(HEADER_NONCE))
        .flatten();
    Ok(Verified {
        keyid: p.key_id,
        date,
        nonce,
    })
}
