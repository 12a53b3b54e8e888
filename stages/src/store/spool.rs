//! Streaming a raw message to storage while it arrives (ingest's claim check): a multipart
//! upload to `_incoming/<id>`, then a copy to the content-addressed `<tenant>/<sha256>.eml`
//! once the hash is known, then the temporary object is deleted. A large attachment the
//! parse deferred is stored the same way ([`BlobStore::put_body`]). See docs/decisions.md.

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt as _, WriteMultipart};

use super::{BlobStore, attachment_key, raw_key, temporary};
use crate::StageError;
use crate::parse::Body;

/// The prefix of uploads in progress (never served, swept after a day).
pub const INCOMING: &str = "_incoming";

/// One message being written. Memory: at most one part (`BlobStore`'s part size) buffered or
/// in flight at a time.
pub struct RawUpload {
    writer: WriteMultipart,
    key: String,
}

impl BlobStore {
    /// Starts an upload to a fresh `_incoming/<id>` key.
    pub async fn begin_upload(&self) -> Result<RawUpload, StageError> {
        let key = format!("{INCOMING}/{}", postwire_core::ids::new_mail_id());
        let upload = self
            .store
            .put_multipart(&ObjectPath::from(key.as_str()))
            .await
            .map_err(temporary)?;
        Ok(RawUpload {
            writer: WriteMultipart::new_with_chunk_size(upload, self.part_bytes),
            key,
        })
    }

    /// Gives a finished upload its content-addressed name `<tenant>/<sha256>.eml` (an object
    /// already there is the same bytes and is kept). The temporary object stays until
    /// [`BlobStore::discard`], so several tenants can adopt it.
    pub async fn adopt(
        &self,
        temp: &str,
        tenant: &str,
        sha256: &str,
    ) -> Result<String, StageError> {
        self.adopt_as(temp, raw_key(tenant, sha256)).await
    }

    /// Gives a finished upload the content-addressed name `key` (an object already there is
    /// the same bytes and is kept).
    async fn adopt_as(&self, temp: &str, key: String) -> Result<String, StageError> {
        if self.already_stored(&key).await? {
            return Ok(key);
        }
        self.store
            .copy(&ObjectPath::from(temp), &ObjectPath::from(key.as_str()))
            .await
            .map_err(temporary)?;
        Ok(key)
    }

    /// Whether content-addressed `key` exists (then synced, as a write of ours may have
    /// stopped before its fsync).
    async fn already_stored(&self, key: &str) -> Result<bool, StageError> {
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(_) => {
                self.sync_existing(key).await?;
                Ok(true)
            }
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(temporary(e)),
        }
    }

    /// Stores an attachment's contents, whose SHA-256 (hex) is `sha256`, under
    /// `<tenant>/<sha256>` unless already there; returns the key. A held body is uploaded as
    /// it is ([`BlobStore::put_hashed`]); a deferred one is decoded chunk by chunk into a
    /// multipart upload to a temporary key, which is then adopted under its hash, as ingest's
    /// spool does: the decoded attachment never exists whole.
    pub async fn put_body(
        &self,
        tenant: &str,
        sha256: &str,
        body: &Body,
    ) -> Result<String, StageError> {
        if !body.is_deferred() {
            return self.put_hashed(tenant, sha256, body.to_bytes()).await;
        }
        let key = attachment_key(tenant, sha256);
        if self.already_stored(&key).await? {
            return Ok(key);
        }
        let mut upload = self.begin_upload().await?;
        for chunk in body.chunks() {
            // Decoding is faster than the upload: one part at a time (memory: one part).
            if let Err(e) = upload.write_after(&chunk, 0).await {
                upload.abort().await;
                return Err(e);
            }
        }
        let temp = upload.finish().await?;
        let adopted = self.adopt_as(&temp, key).await;
        self.discard(&temp).await;
        adopted
    }

    /// Deletes a temporary upload (best effort: the sweep removes what is left).
    pub async fn discard(&self, temp: &str) {
        match self.store.delete(&ObjectPath::from(temp)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(error = %e, "Deleting a temporary upload failed; the storage sweep will remove it.")
            }
        }
    }
}

impl RawUpload {
    /// The temporary key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Appends bytes; waits while a previous part is still being uploaded.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), StageError> {
        self.write_after(bytes, 1).await
    }

    /// Appends bytes once at most `in_flight` parts are still being uploaded.
    pub async fn write_after(&mut self, bytes: &[u8], in_flight: usize) -> Result<(), StageError> {
        self.writer
            .wait_for_capacity(in_flight)
            .await
            .map_err(temporary)?;
        self.writer.write(bytes);
        Ok(())
    }

    /// Completes the upload; returns the temporary key.
    pub async fn finish(self) -> Result<String, StageError> {
        self.writer.finish().await.map_err(temporary)?;
        Ok(self.key)
    }

    /// Abandons the upload and removes what was uploaded.
    pub async fn abort(self) {
        if let Err(e) = self.writer.abort().await {
            tracing::warn!(error = %e, "Aborting a partial upload failed; the storage sweep (or the bucket's lifecycle rule for incomplete uploads) removes it.");
        }
    }
}
