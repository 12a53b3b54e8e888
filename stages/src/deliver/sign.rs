//! The signing step of a delivery: the endpoint's signer (every scheme it is configured for,
//! built once per endpoint configuration) signs the fixed body and `Content-Digest` at each
//! attempt, so timestamps are fresh even when a retry comes hours later. The schemes live in
//! `postwire-sign`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use postwire_core::tenant_config::EndpointConfig;
use postwire_sign::{ContentDigest, RequestParts, Signer};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// Why a delivery cannot be signed: neither heals by retrying, so the delivery is refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SignError {
    #[error("the endpoint's signing configuration is invalid")]
    Config(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// One signer per (tenant, endpoint), built when first needed and again when the endpoint's
/// configuration changed.
#[derive(Default)]
pub struct Signers(Mutex<SignerMap>);

type SignerMap = HashMap<(String, String), (EndpointConfig, Result<Arc<Signer>, SignError>)>;

impl Signers {
    pub fn get(
        &self,
        tenant: &str,
        endpoint: &str,
        ep: &EndpointConfig,
    ) -> Result<Arc<Signer>, SignError> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (tenant.to_string(), endpoint.to_string());
        if let Some((cfg, signer)) = map.get(&key)
            && cfg == ep
        {
            return signer.clone();
        }
        let signer = ep
            .signer()
            .map(Arc::new)
            .map_err(|e| SignError::Config(e.to_string()));
        if let Err(SignError::Config(e)) = &signer {
            tracing::error!(tenant, endpoint, error = %e, "An endpoint cannot sign; its deliveries will be dead-lettered.");
        }
        map.insert(key, (ep.clone(), signer.clone()));
        signer
    }
}

/// Signs one attempt of the delivery `webhook_id` (body as prepared) to `url` at `now`
/// (Unix seconds); returns the headers to send.
pub fn sign(
    signer: &Signer,
    url: &str,
    webhook_id: &str,
    body: &[u8],
    now: i64,
) -> Result<HeaderMap, SignError> {
    let digest = ContentDigest::of(body);
    let parts = RequestParts {
        method: "POST",
        url,
        content_type: "application/json",
        webhook_id,
        body,
        content_digest: &digest,
    };
    let signed = signer
        .sign(&parts, now)
        .map_err(|e| SignError::Sign(e.to_string()))?;
    let mut headers = HeaderMap::new();
    for (name, value) in signed {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(n, v);
        }
    }
    Ok(headers)
}
