//! The `[storage]` section: where attachments and raw messages go, and how their URLs are
//! signed.

use serde::Deserialize;

use crate::config_error::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Nothing stored: attachment metadata only, no URLs.
    #[default]
    None,
    /// The local filesystem; postwire serves the objects itself with signed, expiring URLs.
    Fs,
    /// Any S3-compatible service; presigned URLs.
    S3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sse {
    #[default]
    None,
    /// SSE-S3 (`AES256`).
    Aes256,
    /// SSE-KMS with `kms_key_id`.
    Kms,
}

/// What happens to attachments (per tenant: `attachments = "…"`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentPolicy {
    /// Stored; the payload carries a URL.
    #[default]
    Store,
    /// Base64 in the payload up to `inline_max_bytes`, stored beyond.
    Inline,
    /// Metadata only.
    Drop,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub backend: Backend,
    /// How long attachment and raw-message URLs stay valid.
    pub url_expiry_secs: u64,
    /// Attachments at most this big are inlined under the `inline` policy.
    pub inline_max_bytes: u64,
    /// Claim check: messages above this size are stored by ingest and travel through NATS
    /// by reference (keep it well below NATS's `max_payload`).
    pub inline_limit_bytes: usize,
    /// Raw messages (`<tenant>/<sha256>.eml`) older than this are deleted by the process
    /// worker's sweep; 0 keeps them forever (or leave it to an S3 lifecycle rule).
    pub raw_retention_days: u64,
    /// How often each process worker runs that sweep.
    pub sweep_interval_secs: u64,
    /// fs: the directory.
    pub path: String,
    /// fs: the address postwire serves objects on.
    pub listen: String,
    /// fs: the base URL receivers use to reach `listen` (behind a proxy, its public name).
    pub public_url: String,
    /// fs: environment variable holding the URL signing key (32+ characters). `postwire dev`
    /// makes one up when it is unset.
    pub signing_key_env: String,
    /// s3: bucket, region, endpoint (for non-AWS services), path-style addressing.
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<String>,
    /// s3: the endpoint presigned URLs point at, when receivers reach the store under
    /// another name than postwire does (compose: `http://minio:9000` inside, a public
    /// address outside). Default: `endpoint`.
    pub public_endpoint: Option<String>,
    pub path_style: bool,
    /// s3: environment variables holding the credentials.
    pub access_key_env: String,
    pub secret_key_env: String,
    /// s3: server-side encryption.
    pub sse: Sse,
    pub kms_key_id: Option<String>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: Backend::None,
            url_expiry_secs: 3_600,
            inline_max_bytes: 256 * 1024,
            inline_limit_bytes: 512 * 1024,
            raw_retention_days: 30,
            sweep_interval_secs: 3_600,
            path: "./data/blobs".into(),
            listen: "127.0.0.1:8027".into(),
            public_url: "http://127.0.0.1:8027".into(),
            signing_key_env: "POSTWIRE_BLOB_KEY".into(),
            bucket: String::new(),
            region: "us-east-1".into(),
            endpoint: None,
            public_endpoint: None,
            path_style: false,
            access_key_env: "AWS_ACCESS_KEY_ID".into(),
            secret_key_env: "AWS_SECRET_ACCESS_KEY".into(),
            sse: Sse::None,
            kms_key_id: None,
        }
    }
}

impl StorageConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |k: &str, m: &str| Err(ConfigError::new(format!("storage.{k}"), m));
        if self.url_expiry_secs == 0 || self.url_expiry_secs > 7 * 86_400 {
            return err(
                "url_expiry_secs",
                "must be between 1 and 604800 (S3's limit)",
            );
        }
        if self.raw_retention_days > 36_500 {
            return err(
                "raw_retention_days",
                "must be at most 36500 (0 keeps raw mail forever)",
            );
        }
        if !(1..=7 * 86_400).contains(&self.sweep_interval_secs) {
            return err("sweep_interval_secs", "must be between 1 and 604800");
        }
        if !(4096..=64 * 1024 * 1024).contains(&self.inline_limit_bytes) {
            return err("inline_limit_bytes", "must be between 4096 and 67108864");
        }
        match self.backend {
            Backend::None => {}
            Backend::Fs => {
                if self.listen.parse::<std::net::SocketAddr>().is_err() {
                    return err("listen", "must be address:port");
                }
                if url::Url::parse(&self.public_url).is_err() {
                    return err("public_url", "must be a URL");
                }
            }
            Backend::S3 => {
                if self.bucket.is_empty() {
                    return err("bucket", "the s3 backend needs a bucket");
                }
                for (key, value) in [
                    ("endpoint", &self.endpoint),
                    ("public_endpoint", &self.public_endpoint),
                ] {
                    if value
                        .as_deref()
                        .is_some_and(|v| url::Url::parse(v).is_err())
                    {
                        return err(key, "must be a URL (http://host:port)");
                    }
                }
                if self.sse == Sse::Kms && self.kms_key_id.is_none() {
                    return err("kms_key_id", "sse = \"kms\" needs kms_key_id");
                }
            }
        }
        Ok(())
    }
}
