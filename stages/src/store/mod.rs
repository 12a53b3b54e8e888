//! The store stage: attachments and the raw message go to object storage under
//! content-addressed keys (`<tenant>/<sha256>`, so a redelivered message never duplicates an
//! object), and the payload gets expiring URLs — presigned by S3, or HMAC-signed for the
//! filesystem backend, whose objects postwire serves itself ([`fs_url`]).

pub mod fs_url;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use mail_parser::MessageParser;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer as _;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use postwire_core::event::Message;
use postwire_core::ids::sha256_hex;
use postwire_core::storage_config::{AttachmentPolicy, Backend, Sse, StorageConfig};

use crate::StageError;

/// A URL and when it stops working (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl {
    pub url: String,
    pub expires_at: String,
}

enum Urls {
    Fs { key: Vec<u8>, base: String },
    S3(Arc<AmazonS3>),
}

pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    urls: Urls,
    expiry: Duration,
    inline_max: u64,
}

impl BlobStore {
    /// The configured store, or `None` when `storage.backend = "none"`. `fs_key` signs the
    /// filesystem backend's URLs.
    pub fn from_config(
        cfg: &StorageConfig,
        fs_key: Option<Vec<u8>>,
    ) -> Result<Option<BlobStore>, String> {
        let expiry = Duration::from_secs(cfg.url_expiry_secs);
        let (store, urls): (Arc<dyn ObjectStore>, Urls) = match cfg.backend {
            Backend::None => return Ok(None),
            Backend::Fs => {
                std::fs::create_dir_all(&cfg.path)
                    .map_err(|e| format!("storage.path {}: {e}", cfg.path))?;
                let fs = LocalFileSystem::new_with_prefix(&cfg.path).map_err(|e| e.to_string())?;
                let key = fs_key.ok_or("the filesystem backend needs a URL signing key")?;
                (
                    Arc::new(fs),
                    Urls::Fs {
                        key,
                        base: cfg.public_url.trim_end_matches('/').to_string(),
                    },
                )
            }
            Backend::S3 => {
                let env = |k: &str| std::env::var(k).ok();
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(&cfg.bucket)
                    .with_region(&cfg.region)
                    .with_virtual_hosted_style_request(!cfg.path_style);
                if let Some(ep) = &cfg.endpoint {
                    b = b
                        .with_endpoint(ep)
                        .with_allow_http(ep.starts_with("http://"));
                }
                if let (Some(k), Some(s)) = (env(&cfg.access_key_env), env(&cfg.secret_key_env)) {
                    b = b.with_access_key_id(k).with_secret_access_key(s);
                }
                b = match cfg.sse {
                    Sse::None => b,
                    Sse::Aes256 => {
                        let key = "aws_server_side_encryption"
                            .parse()
                            .map_err(|e: object_store::Error| e.to_string())?;
                        b.with_config(key, "AES256")
                    }
                    Sse::Kms => {
                        b.with_sse_kms_encryption(cfg.kms_key_id.clone().unwrap_or_default())
                    }
                };
                let s3 = Arc::new(b.build().map_err(|e| e.to_string())?);
                (s3.clone() as Arc<dyn ObjectStore>, Urls::S3(s3))
            }
        };
        Ok(Some(BlobStore {
            store,
            urls,
            expiry,
            inline_max: cfg.inline_max_bytes,
        }))
    }

    /// Stores `bytes` under `<tenant>/<sha256>` unless already there; returns the key.
    pub async fn put(&self, tenant: &str, bytes: &[u8]) -> Result<String, StageError> {
        self.put_owned(tenant, bytes.to_vec()).await
    }

    /// [`BlobStore::put`] of a buffer the caller gives away: stored without a copy (a large
    /// message's peak memory).
    pub async fn put_owned(
        &self,
        tenant: &str,
        bytes: impl Into<bytes::Bytes>,
    ) -> Result<String, StageError> {
        let bytes: bytes::Bytes = bytes.into();
        let key = format!("{tenant}/{}", sha256_hex(&bytes));
        let path = ObjectPath::from(key.as_str());
        let payload = PutPayload::from(bytes);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self.store.put_opts(&path, payload.clone(), opts).await {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(key),
            // Some S3-compatible services do not support conditional puts: fall back.
            Err(object_store::Error::NotImplemented { .. }) => {
                self.store.put(&path, payload).await.map_err(temporary)?;
                Ok(key)
            }
            Err(e) => Err(temporary(e)),
        }
    }

    /// An expiring URL for a stored key.
    pub async fn url(&self, key: &str) -> Result<SignedUrl, StageError> {
        let expires = time::OffsetDateTime::now_utc() + self.expiry;
        let expires_at = expires
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let url = match &self.urls {
            Urls::Fs { key: secret, base } => {
                fs_url::sign(base, secret, key, expires.unix_timestamp())
            }
            Urls::S3(s3) => s3
                .signed_url(http::Method::GET, &ObjectPath::from(key), self.expiry)
                .await
                .map_err(temporary)?
                .to_string(),
        };
        Ok(SignedUrl { url, expires_at })
    }

    /// Reads an object (the filesystem blob server).
    pub async fn get(&self, key: &str) -> Result<bytes::Bytes, object_store::Error> {
        self.store.get(&ObjectPath::from(key)).await?.bytes().await
    }

    /// The store stage for one mail: attachments by policy, and the raw message. Returns the
    /// raw message's URL.
    pub async fn apply(
        &self,
        tenant: &str,
        policy: AttachmentPolicy,
        raw: &bytes::Bytes,
        message: &mut Message,
    ) -> Result<SignedUrl, StageError> {
        if policy != AttachmentPolicy::Drop && !message.attachments.is_empty() {
            // Attachment bytes, matched to the payload's entries by content hash. Dropped
            // (with their decoded copies) before the raw message is stored.
            let parsed = MessageParser::default().parse(raw);
            let parts: Vec<&[u8]> = parsed
                .as_ref()
                .map(|m| m.attachments().map(|p| p.contents()).collect())
                .unwrap_or_default();
            for att in &mut message.attachments {
                let Some(bytes) = parts.iter().find(|b| sha256_hex(b) == att.sha256) else {
                    continue;
                };
                if policy == AttachmentPolicy::Inline && att.size <= self.inline_max {
                    att.content_base64 =
                        Some(base64::engine::general_purpose::STANDARD.encode(bytes));
                    continue;
                }
                let key = self.put(tenant, bytes).await?;
                let u = self.url(&key).await?;
                att.url = Some(u.url);
                att.url_expires_at = Some(u.expires_at);
            }
        }
        let raw_key = self.put_owned(tenant, raw.clone()).await?;
        self.url(&raw_key).await
    }
}

fn temporary(e: object_store::Error) -> StageError {
    StageError::Temporary(format!("object storage: {e}"))
}
