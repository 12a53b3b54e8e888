//! The store stage: attachments and the raw message go to object storage under
//! content-addressed keys (`<tenant>/<sha256>`, so a redelivered message never duplicates an
//! object), and the payload gets expiring URLs — presigned by S3, or HMAC-signed for the
//! filesystem backend, whose objects postwire serves itself ([`fs_url`]).
//!
//! Raw messages are `<tenant>/<sha256>.eml`, so the retention sweep ([`sweep`]) can tell them
//! from attachments. Ingest streams large messages to `_incoming/<id>` while DATA arrives
//! ([`spool`]) and moves them to their content-addressed key at the end.
//!
//! The filesystem backend fsyncs each object and the directories that name it before a
//! write returns (object_store's `with_fsync`): ingest publishes the key only then, so a
//! mail answered 250 never points at an object a power cut can take back
//! ([`durable`], docs/operations.md "Durability").

pub mod durable;
pub mod fs_url;
pub mod recent;
pub mod spool;
pub mod stage;
pub mod sweep;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer as _;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use postwire_core::event::Message;
use postwire_core::ids::sha256_hex;
use postwire_core::storage_config::{AttachmentPolicy, Backend, Sse, StorageConfig};

use crate::StageError;

/// Why object storage cannot be set up (at start: always a configuration problem).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage.path {path}: {source}")]
    Path {
        path: String,
        source: std::io::Error,
    },
    #[error("the filesystem backend needs a URL signing key")]
    NoSigningKey,
    #[error("object storage: {0}")]
    Backend(#[from] object_store::Error),
}

impl StoreError {
    /// Never: a wrong configuration stays wrong until it is fixed and the node restarted.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

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
    /// Part size of streamed uploads (S3 needs at least 5 MiB per part).
    part_bytes: usize,
    /// The filesystem backend's root, to fsync objects found already there.
    fs_root: Option<std::path::PathBuf>,
}

impl BlobStore {
    /// The configured store, or `None` when `storage.backend = "none"`. `fs_key` signs the
    /// filesystem backend's URLs.
    pub fn from_config(
        cfg: &StorageConfig,
        fs_key: Option<Vec<u8>>,
    ) -> Result<Option<BlobStore>, StoreError> {
        let expiry = Duration::from_secs(cfg.url_expiry_secs);
        let part_bytes = match cfg.backend {
            Backend::S3 => 5 * 1024 * 1024,
            _ => 1024 * 1024,
        };
        let (store, urls): (Arc<dyn ObjectStore>, Urls) = match cfg.backend {
            Backend::None => return Ok(None),
            Backend::Fs => {
                std::fs::create_dir_all(&cfg.path).map_err(|source| StoreError::Path {
                    path: cfg.path.clone(),
                    source,
                })?;
                let fs = LocalFileSystem::new_with_prefix(&cfg.path)?.with_fsync(true);
                let key = fs_key.ok_or(StoreError::NoSigningKey)?;
                (
                    Arc::new(fs),
                    Urls::Fs {
                        key,
                        base: cfg.public_url.trim_end_matches('/').to_string(),
                    },
                )
            }
            Backend::S3 => {
                let s3 = Arc::new(s3_builder(cfg, cfg.endpoint.as_deref())?.build()?);
                // Presigning is local: a second client, never used for requests, signs URLs
                // for the address receivers use when it differs from postwire's.
                let presigner = match &cfg.public_endpoint {
                    Some(public) if Some(public) != cfg.endpoint.as_ref() => {
                        Arc::new(s3_builder(cfg, Some(public.as_str()))?.build()?)
                    }
                    _ => s3.clone(),
                };
                (s3 as Arc<dyn ObjectStore>, Urls::S3(presigner))
            }
        };
        Ok(Some(BlobStore {
            store,
            urls,
            expiry,
            inline_max: cfg.inline_max_bytes,
            part_bytes,
            fs_root: (cfg.backend == Backend::Fs).then(|| cfg.path.clone().into()),
        }))
    }

    /// Stores `bytes` under `<tenant>/<sha256>` unless already there; returns the key.
    pub async fn put(&self, tenant: &str, bytes: &[u8]) -> Result<String, StageError> {
        let key = format!("{tenant}/{}", sha256_hex(bytes));
        self.put_key(key, Bytes::copy_from_slice(bytes)).await
    }

    /// Stores `bytes`, whose SHA-256 (hex) is `sha256`, under `<tenant>/<sha256>` unless
    /// already there; returns the key. The buffer is uploaded as it is (no copy, no second
    /// hash): the parse hashed exactly these bytes.
    pub async fn put_hashed(
        &self,
        tenant: &str,
        sha256: &str,
        bytes: Bytes,
    ) -> Result<String, StageError> {
        self.put_key(attachment_key(tenant, sha256), bytes).await
    }

    /// Stores a raw message under `<tenant>/<sha256>.eml` unless already there.
    pub async fn put_raw(&self, tenant: &str, bytes: &[u8]) -> Result<String, StageError> {
        self.put_key(
            raw_key(tenant, &sha256_hex(bytes)),
            Bytes::copy_from_slice(bytes),
        )
        .await
    }

    /// [`BlobStore::put_raw`] of a buffer the caller holds (uploaded without a copy).
    pub async fn put_raw_bytes(&self, tenant: &str, bytes: &Bytes) -> Result<String, StageError> {
        self.put_key(raw_key(tenant, &sha256_hex(bytes)), bytes.clone())
            .await
    }

    async fn put_key(&self, key: String, bytes: Bytes) -> Result<String, StageError> {
        let path = ObjectPath::from(key.as_str());
        let payload = PutPayload::from(bytes);
        let create = || PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let mut result = self.store.put_opts(&path, payload.clone(), create()).await;
        // object_store does not retry a conditional (create-only) PUT, since it is not
        // idempotent in general; here it is (the key is the content's hash, and "already
        // there" is success). A server may close a pooled keep-alive connection at any time
        // (s3s-fs does after large bodies): try again, on a fresh connection, a few times.
        for delay_ms in [20, 200] {
            match &result {
                Err(object_store::Error::Generic { .. }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                    result = self.store.put_opts(&path, payload.clone(), create()).await;
                }
                _ => break,
            }
        }
        match result {
            Ok(_) => Ok(key),
            // Written by an earlier attempt, which may have stopped before its fsync.
            Err(object_store::Error::AlreadyExists { .. }) => {
                self.sync_existing(&key).await?;
                Ok(key)
            }
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

    /// The store stage for one mail: attachments by policy (`bodies[i]` is the content of
    /// `message.attachments[i]`, as parse handed it over; infected ones are skipped), and the
    /// raw message — unless ingest stored it already (claim check: `stored_raw` is its key,
    /// the object the worker read the mail from). Returns the raw message's URL.
    pub async fn apply(
        &self,
        tenant: &str,
        policy: AttachmentPolicy,
        raw: &Bytes,
        stored_raw: Option<&str>,
        message: &mut Message,
        bodies: &[crate::parse::Body],
    ) -> Result<SignedUrl, StageError> {
        if policy != AttachmentPolicy::Drop {
            for (att, body) in message.attachments.iter_mut().zip(bodies) {
                if crate::antivirus::is_infected(att) {
                    continue;
                }
                if policy == AttachmentPolicy::Inline && att.size <= self.inline_max {
                    att.content_base64 =
                        Some(base64::engine::general_purpose::STANDARD.encode(body.to_bytes()));
                    continue;
                }
                let key = self.put_body(tenant, &att.sha256, body).await?;
                let u = self.url(&key).await?;
                att.url = Some(u.url);
                att.url_expires_at = Some(u.expires_at);
            }
        }
        // Only a key of this tenant's raw-mail form is taken as it is.
        let stored_raw = stored_raw.filter(|k| {
            k.strip_prefix(tenant)
                .and_then(|k| k.strip_prefix('/'))
                .is_some_and(|k| k.ends_with(".eml") && !k.contains('/'))
        });
        let raw_key = match stored_raw {
            Some(key) => key.to_string(),
            None => self.put_raw_bytes(tenant, raw).await?,
        };
        self.url(&raw_key).await
    }
}

/// The key of a raw message.
pub fn raw_key(tenant: &str, sha256: &str) -> String {
    format!("{tenant}/{sha256}.eml")
}

/// The key of an attachment's contents: `<tenant>/<sha256>`.
pub fn attachment_key(tenant: &str, sha256: &str) -> String {
    format!("{tenant}/{sha256}")
}

fn temporary(e: object_store::Error) -> StageError {
    StageError::Temporary(format!("object storage: {e}"))
}

fn temporary_io(e: std::io::Error) -> StageError {
    StageError::Temporary(format!("object storage: fsync: {e}"))
}

/// An S3 client builder for `endpoint` with the configured bucket, credentials and SSE.
fn s3_builder(cfg: &StorageConfig, endpoint: Option<&str>) -> Result<AmazonS3Builder, StoreError> {
    let env = |k: &str| std::env::var(k).ok();
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(&cfg.bucket)
        .with_region(&cfg.region)
        .with_virtual_hosted_style_request(!cfg.path_style);
    if let Some(ep) = endpoint {
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
            let key = "aws_server_side_encryption".parse()?;
            b.with_config(key, "AES256")
        }
        Sse::Kms => b.with_sse_kms_encryption(cfg.kms_key_id.clone().unwrap_or_default()),
    };
    Ok(b)
}
