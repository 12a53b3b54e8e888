//! The claim check of ingest on the stages' object store: a large message is stored whole,
//! or streamed during DATA, and only its key travels on the bus.

use std::sync::Arc;

use postwire_stages::store::BlobStore;

/// Lets ingest store large messages through the stages' object store (claim check), whole
/// or streamed during DATA.
pub struct Claim(pub Arc<BlobStore>);

type BoxFuture<'a, T> = postwire_ingest::spool::BoxFuture<'a, T>;

impl postwire_ingest::ClaimCheck for Claim {
    fn put<'a>(
        &'a self,
        tenant: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            self.0
                .put_raw(tenant, bytes)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn postwire_ingest::Upload>, String>> {
        Box::pin(async move {
            let u = self.0.begin_upload().await.map_err(|e| e.to_string())?;
            Ok(Box::new(Upload(u)) as Box<dyn postwire_ingest::Upload>)
        })
    }

    fn adopt<'a>(
        &'a self,
        temp: &'a str,
        tenant: &'a str,
        sha256: &'a str,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            self.0
                .adopt(temp, tenant, sha256)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn discard<'a>(&'a self, temp: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.0.discard(temp))
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            self.0
                .get(key)
                .await
                .map(|b| b.to_vec())
                .map_err(|e| e.to_string())
        })
    }
}

struct Upload(postwire_stages::store::spool::RawUpload);

impl postwire_ingest::Upload for Upload {
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.0.write(bytes).await.map_err(|e| e.to_string()) })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<String, String>> {
        Box::pin(async move { self.0.finish().await.map_err(|e| e.to_string()) })
    }

    fn abort(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(self.0.abort())
    }
}
