//! Streaming DATA to object storage while it arrives (the claim check). Once a message's
//! content grows past `storage.inline_limit_bytes`, the I/O layer starts a [`Streaming`]
//! upload: our `Received:` line, then the content in chunks as it is read, hashed on the way.
//! A session then holds about the inline limit plus one upload part, whatever the message
//! size. At the end of DATA the upload is completed and the publisher gives it its
//! content-addressed key per tenant ([`ClaimCheck::adopt`]); a refused, over-size or aborted
//! transaction deletes the partial upload. See docs/decisions.md.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use crate::smtp::Spooled;
use crate::smtp::{Session, Transaction};

/// Why storing a message failed. The client is answered 451 and retries.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The object store failed (unreachable, refused, out of space).
    #[error("object storage: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The upload never started (storing had failed before).
    #[error("no upload in progress")]
    NotStarted,
}

impl SpoolError {
    /// An object store failure.
    pub fn storage(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> SpoolError {
        SpoolError::Storage(e.into())
    }

    /// Whether trying again later may succeed (for the client: always 451, never 5xx).
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// A boxed future, for the object-safe storage seam.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Chunks handed to a running upload once the inline limit was passed.
pub const SPILL_CHUNK: usize = 256 * 1024;

/// Object storage for the claim check: messages above the inline limit are stored there and
/// the MAIL message carries only their key (`Postwire-Raw-Key`). Implemented by the binary
/// over the stages' object store, so ingest does not depend on it.
pub trait ClaimCheck: Send + Sync + 'static {
    /// Stores a whole message (`bytes`, already in memory) for `tenant`; returns the key.
    fn put<'a>(
        &'a self,
        tenant: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<String, SpoolError>>;
    /// Starts streaming a message to a temporary object.
    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn Upload>, SpoolError>>;
    /// Gives the finished temporary object `temp` its key for `tenant` (content-addressed by
    /// `sha256`, the hash of all its bytes); returns that key.
    fn adopt<'a>(
        &'a self,
        temp: &'a str,
        tenant: &'a str,
        sha256: &'a str,
    ) -> BoxFuture<'a, Result<String, SpoolError>>;
    /// Deletes a temporary object (best effort).
    fn discard<'a>(&'a self, temp: &'a str) -> BoxFuture<'a, ()>;
    /// Reads an object back (inline verification of a streamed message).
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<u8>, SpoolError>>;
}

/// One upload in progress.
pub trait Upload: Send {
    /// Appends bytes (waits while the previous part is being uploaded).
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), SpoolError>>;
    /// Completes the upload; returns the temporary key.
    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<String, SpoolError>>;
    /// Abandons the upload and deletes what was uploaded.
    fn abort(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// A message being streamed during DATA. A storage failure does not stop the session
/// reading: the content is then discarded and the end of DATA answered with 451.
pub struct Streaming {
    upload: Option<Box<dyn Upload>>,
    failure: Option<SpoolError>,
    raw: Sha256,
    body: Sha256,
    size: u64,
    prefix_len: usize,
    mail_id: String,
}

impl Streaming {
    /// Starts an upload whose object begins with `prefix` (the `Received:` line).
    pub async fn start(claim: &dyn ClaimCheck, prefix: &str, mail_id: String) -> Streaming {
        let mut s = Streaming {
            upload: None,
            failure: None,
            raw: Sha256::new(),
            body: Sha256::new(),
            size: 0,
            prefix_len: prefix.len(),
            mail_id,
        };
        match claim.begin().await {
            Ok(u) => s.upload = Some(u),
            Err(e) => s.fail(e).await,
        }
        s.raw.update(prefix.as_bytes());
        s.size = prefix.len() as u64;
        if let Some(u) = &mut s.upload
            && let Err(e) = u.write(prefix.as_bytes()).await
        {
            s.fail(e).await;
        }
        s
    }

    async fn fail(&mut self, e: SpoolError) {
        tracing::warn!(error = %e, "Streaming a large message to storage failed; it will be deferred with 451.");
        postwire_core::metrics::inc(
            "postwire_smtp_spool_failures_total",
            "Large messages whose streaming to storage failed during DATA (answered 451).",
            &[],
        );
        self.failure = Some(e);
        if let Some(u) = self.upload.take() {
            u.abort().await;
        }
    }

    /// Appends content.
    pub async fn write(&mut self, chunk: &[u8]) {
        if chunk.is_empty() || self.failure.is_some() {
            return;
        }
        self.raw.update(chunk);
        self.body.update(chunk);
        self.size += chunk.len() as u64;
        if let Some(u) = &mut self.upload
            && let Err(e) = u.write(chunk).await
        {
            self.fail(e).await;
        }
    }

    /// Completes the upload.
    pub async fn finish(mut self) -> Result<Spooled, SpoolError> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        let Some(u) = self.upload.take() else {
            return Err(SpoolError::NotStarted);
        };
        let temp_key = u.finish().await?;
        Ok(Spooled {
            temp_key,
            sha256: postwire_core::ids::hex(&self.raw.finalize()),
            body_sha256: postwire_core::ids::hex(&self.body.finalize()),
            size: self.size,
            prefix_len: self.prefix_len,
            mail_id: self.mail_id,
        })
    }

    /// Abandons the upload (over-size, refused, connection gone).
    pub async fn abort(mut self) {
        if let Some(u) = self.upload.take() {
            u.abort().await;
        }
    }
}

// --- the I/O layer's part (server.rs) ---

/// During DATA, past the inline limit: streams what the session holds to storage, so memory
/// stays bounded by the limit plus one chunk whatever the message size.
pub(crate) async fn spill(
    session: &mut Session,
    streaming: &mut Option<Streaming>,
    spool: Option<&(Arc<dyn ClaimCheck>, usize)>,
) {
    let Some((store, limit)) = spool else {
        return;
    };
    if session.data_exceeded() {
        // It will get 552: nothing more is kept, and nothing uploaded is needed.
        if let Some(s) = streaming.take() {
            s.abort().await;
        }
        return;
    }
    let threshold = if streaming.is_some() {
        SPILL_CHUNK
    } else {
        *limit
    };
    if session.data_buffered() <= threshold {
        return;
    }
    if streaming.is_none() {
        let mail_id = postwire_core::ids::new_mail_id();
        let prefix = session.received_line(&mail_id, &crate::publish::rfc2822_now());
        *streaming = Some(Streaming::start(store.as_ref(), &prefix, mail_id).await);
    }
    if let Some(s) = streaming {
        s.write(&session.take_data()).await;
    }
}

/// At the end of DATA: the rest of the content goes to storage and the upload is completed.
/// False when storing failed (the client gets 451 and retries).
pub(crate) async fn finish(mut s: Streaming, tx: &mut Transaction) -> bool {
    s.write(&std::mem::take(&mut tx.body)).await;
    match s.finish().await {
        Ok(sp) => {
            tx.spooled = Some(sp);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "Deferred a large message: storing it failed.");
            false
        }
    }
}

/// Reads a streamed message's content back (for inline verification).
pub(crate) async fn read_back(
    spool: Option<&(Arc<dyn ClaimCheck>, usize)>,
    sp: &Spooled,
) -> Option<Vec<u8>> {
    let (store, _) = spool?;
    match store.get(&sp.temp_key).await {
        Ok(mut bytes) if bytes.len() >= sp.prefix_len => {
            bytes.drain(..sp.prefix_len);
            Some(bytes)
        }
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "Reading a streamed message back for verification failed.");
            None
        }
    }
}

/// A refused transaction's streamed copy is not needed.
pub(crate) async fn discard(spool: Option<&(Arc<dyn ClaimCheck>, usize)>, tx: &Transaction) {
    if let (Some(sp), Some((store, _))) = (&tx.spooled, spool) {
        store.discard(&sp.temp_key).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// An in-memory store recording what happens to uploads.
    #[derive(Default)]
    pub struct Memory {
        pub objects: Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
        pub aborted: Mutex<usize>,
        pub fail_writes: bool,
    }

    struct MemUpload(Arc<Memory>, String, Vec<u8>);

    impl Upload for MemUpload {
        fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), SpoolError>> {
            Box::pin(async move {
                if self.0.fail_writes {
                    return Err(SpoolError::storage("disk full"));
                }
                self.2.extend_from_slice(bytes);
                Ok(())
            })
        }
        fn finish(self: Box<Self>) -> BoxFuture<'static, Result<String, SpoolError>> {
            Box::pin(async move {
                self.0
                    .objects
                    .lock()
                    .unwrap()
                    .insert(self.1.clone(), self.2);
                Ok(self.1)
            })
        }
        fn abort(self: Box<Self>) -> BoxFuture<'static, ()> {
            Box::pin(async move {
                *self.0.aborted.lock().unwrap() += 1;
            })
        }
    }

    struct Claim(Arc<Memory>);

    impl ClaimCheck for Claim {
        fn put<'a>(&'a self, _: &'a str, _: &'a [u8]) -> BoxFuture<'a, Result<String, SpoolError>> {
            Box::pin(async { Err(SpoolError::storage("unused")) })
        }
        fn begin(&self) -> BoxFuture<'_, Result<Box<dyn Upload>, SpoolError>> {
            let m = self.0.clone();
            Box::pin(async move {
                Ok(Box::new(MemUpload(m, "_incoming/1".into(), Vec::new())) as Box<dyn Upload>)
            })
        }
        fn adopt<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: &'a str,
        ) -> BoxFuture<'a, Result<String, SpoolError>> {
            Box::pin(async { Err(SpoolError::storage("unused")) })
        }
        fn discard<'a>(&'a self, _: &'a str) -> BoxFuture<'a, ()> {
            Box::pin(async {})
        }
        fn get<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<u8>, SpoolError>> {
            Box::pin(async { Err(SpoolError::storage("unused")) })
        }
    }

    #[tokio::test]
    async fn hashes_what_it_uploads() {
        let mem = Arc::new(Memory::default());
        let claim = Claim(mem.clone());
        let mut s = Streaming::start(&claim, "Received: x\r\n", "m1".into()).await;
        s.write(b"Subject: a\r\n\r\n").await;
        s.write(b"body\r\n").await;
        let sp = s.finish().await.unwrap();
        let stored = mem.objects.lock().unwrap()["_incoming/1"].clone();
        assert_eq!(stored, b"Received: x\r\nSubject: a\r\n\r\nbody\r\n");
        assert_eq!(sp.sha256, postwire_core::ids::sha256_hex(&stored));
        assert_eq!(
            sp.body_sha256,
            postwire_core::ids::sha256_hex(&stored[13..])
        );
        assert_eq!((sp.size, sp.prefix_len), (stored.len() as u64, 13));
    }

    #[tokio::test]
    async fn a_failed_write_aborts_and_fails_the_finish() {
        let mem = Arc::new(Memory {
            fail_writes: true,
            ..Default::default()
        });
        let claim = Claim(mem.clone());
        let mut s = Streaming::start(&claim, "Received: x\r\n", "m1".into()).await;
        s.write(b"more").await;
        assert!(s.finish().await.is_err());
        assert_eq!(*mem.aborted.lock().unwrap(), 1);
        assert!(mem.objects.lock().unwrap().is_empty());
    }
}
