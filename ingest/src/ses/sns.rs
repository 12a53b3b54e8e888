//! Amazon SNS message signatures (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA), with
//! the signing certificate fetched only over HTTPS from an allowed host, and cached.

use std::collections::HashMap;
use std::sync::Mutex;

use rsa::PublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier as _;
use serde::Deserialize;
use x509_cert::der::{DecodePem, Encode};

/// An SNS HTTP(S) delivery body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsMessage {
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub message: String,
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    #[serde(rename = "SubscribeURL", default)]
    pub subscribe_url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    #[error("not an SNS message: {0}")]
    Malformed(String),
    #[error("topic {0} is not allowed")]
    Topic(String),
    #[error("refused URL {0}: must be https on an allowed host")]
    Url(String),
    #[error("the signing certificate cannot be used: {0}")]
    Certificate(String),
    #[error("the signature does not verify")]
    Signature,
    #[error("the notification's Timestamp {0} is too old or in the future")]
    Stale(String),
}

/// Whether a notification's `Timestamp` (RFC 3339) is at most `max_age_secs` old and at most
/// 5 minutes ahead of `now` (clock skew).
pub fn check_fresh(timestamp: &str, now: i64, max_age_secs: u64) -> Result<(), SnsError> {
    let stale = || SnsError::Stale(timestamp.to_string());
    let t = time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
        .map_err(|_| stale())?
        .unix_timestamp();
    let age = i128::from(now) - i128::from(t);
    if age > i128::from(max_age_secs) || age < -300 {
        return Err(stale());
    }
    Ok(())
}

/// The canonical string SNS signs (its documented field order).
pub fn string_to_sign(m: &SnsMessage) -> Result<String, SnsError> {
    let mut s = String::new();
    let mut add = |k: &str, v: &str| {
        s.push_str(k);
        s.push('\n');
        s.push_str(v);
        s.push('\n');
    };
    add("Message", &m.message);
    add("MessageId", &m.message_id);
    match m.kind.as_str() {
        "Notification" => {
            if let Some(subject) = &m.subject {
                add("Subject", subject);
            }
            add("Timestamp", &m.timestamp);
            add("TopicArn", &m.topic_arn);
            add("Type", &m.kind);
        }
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            let url = m
                .subscribe_url
                .as_deref()
                .ok_or(SnsError::Malformed("no SubscribeURL".into()))?;
            let token = m
                .token
                .as_deref()
                .ok_or(SnsError::Malformed("no Token".into()))?;
            add("SubscribeURL", url);
            add("Timestamp", &m.timestamp);
            add("Token", token);
            add("TopicArn", &m.topic_arn);
            add("Type", &m.kind);
        }
        other => return Err(SnsError::Malformed(format!("unknown Type {other}"))),
    }
    Ok(s)
}

/// Whether `host` matches one of `patterns` (`*` stands for one DNS label).
pub fn host_allowed(host: &str, patterns: &[String]) -> bool {
    let host = host.to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    patterns.iter().any(|p| {
        let pl: Vec<&str> = p.split('.').collect();
        pl.len() == labels.len()
            && pl.iter().zip(&labels).all(|(p, l)| {
                (*p == "*"
                    && !l.is_empty()
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
                    || p.eq_ignore_ascii_case(l)
            })
    })
}

/// An https URL on an allowed host.
pub fn vetted_url(raw: &str, hosts: &[String]) -> Result<url::Url, SnsError> {
    let u = url::Url::parse(raw).map_err(|_| SnsError::Url(raw.into()))?;
    let ok = u.scheme() == "https"
        && u.host_str().is_some_and(|h| host_allowed(h, hosts))
        && u.username().is_empty();
    if ok {
        Ok(u)
    } else {
        Err(SnsError::Url(raw.into()))
    }
}

pub struct SnsVerifier {
    hosts: Vec<String>,
    client: reqwest::Client,
    certs: Mutex<HashMap<String, PublicKey>>,
}

impl SnsVerifier {
    pub fn new(hosts: Vec<String>, client: reqwest::Client) -> SnsVerifier {
        SnsVerifier {
            hosts,
            client,
            certs: Mutex::default(),
        }
    }

    async fn key(&self, url: &str) -> Result<PublicKey, SnsError> {
        if let Some(k) = self
            .certs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(url)
        {
            return Ok(k.clone());
        }
        let u = vetted_url(url, &self.hosts)?;
        let cert_err = |e: String| SnsError::Certificate(e);
        let resp = self
            .client
            .get(u)
            .send()
            .await
            .map_err(|e| cert_err(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(cert_err(format!("HTTP {}", resp.status())));
        }
        let pem = resp.bytes().await.map_err(|e| cert_err(e.to_string()))?;
        let cert = x509_cert::Certificate::from_pem(&pem).map_err(|e| cert_err(e.to_string()))?;
        let spki = cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| cert_err(e.to_string()))?;
        let key = <PublicKey as rsa::pkcs8::DecodePublicKey>::from_public_key_der(&spki)
            .map_err(|e| cert_err(format!("not an RSA key: {e}")))?;
        self.certs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(url.to_string(), key.clone());
        Ok(key)
    }

    /// Checks the URL rules first (no fetch for a refused host), then the signature.
    pub async fn verify(&self, m: &SnsMessage) -> Result<(), SnsError> {
        vetted_url(&m.signing_cert_url, &self.hosts)?;
        let text = string_to_sign(m)?;
        let sig = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            m.signature.trim(),
        )
        .map_err(|_| SnsError::Signature)?;
        let sig = Signature::try_from(sig.as_slice()).map_err(|_| SnsError::Signature)?;
        let key = self.key(&m.signing_cert_url).await?;
        let ok = match m.signature_version.as_str() {
            "1" => VerifyingKey::<sha1::Sha1>::new(key)
                .verify(text.as_bytes(), &sig)
                .is_ok(),
            "2" => VerifyingKey::<sha2::Sha256>::new(key)
                .verify(text.as_bytes(), &sig)
                .is_ok(),
            v => return Err(SnsError::Malformed(format!("SignatureVersion {v}"))),
        };
        if ok { Ok(()) } else { Err(SnsError::Signature) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_must_be_fresh() {
        let now = 1_796_644_800; // 2026-12-07T12:00:00Z
        assert!(check_fresh("2026-12-07T11:50:00.123Z", now, 1200).is_ok());
        assert!(
            check_fresh("2026-12-07T12:04:00Z", now, 1200).is_ok(),
            "skew"
        );
        for stale in [
            "2026-12-07T11:39:59Z",
            "2026-11-23T10:00:00.123Z",
            "2026-12-07T12:06:00Z",
            "yesterday",
            "",
        ] {
            assert!(
                matches!(check_fresh(stale, now, 1200), Err(SnsError::Stale(_))),
                "{stale}"
            );
        }
    }

    #[test]
    fn host_patterns() {
        let p = vec!["sns.*.amazonaws.com".to_string()];
        assert!(host_allowed("sns.eu-west-1.amazonaws.com", &p));
        assert!(!host_allowed("sns.evil.com.amazonaws.com", &p));
        assert!(!host_allowed("sns.eu-west-1.amazonaws.com.evil.com", &p));
        assert!(!host_allowed("evil.com", &p));
        assert!(vetted_url("http://sns.us-east-1.amazonaws.com/x.pem", &p).is_err());
        assert!(vetted_url("https://sns.us-east-1.amazonaws.com/x.pem", &p).is_ok());
        assert!(vetted_url("https://user@sns.us-east-1.amazonaws.com/x.pem", &p).is_err());
    }
}
