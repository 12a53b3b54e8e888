//! The latest raw messages of a tenant (`<tenant>/<sha256>.eml`, newest first): what
//! `postwire plugin try` runs a candidate plugin over.

use futures::StreamExt as _;
use object_store::path::Path as ObjectPath;

use super::{BlobStore, temporary};
use crate::StageError;

/// One stored raw message.
#[derive(Debug, Clone)]
pub struct StoredRaw {
    /// Its key, `<tenant>/<sha256>.eml`.
    pub key: String,
    /// When it was stored (RFC 3339).
    pub stored_at: String,
    pub bytes: bytes::Bytes,
}

impl BlobStore {
    /// The `last` most recently stored raw messages of `tenant`, newest first.
    pub async fn recent_raw(
        &self,
        tenant: &str,
        last: usize,
    ) -> Result<Vec<StoredRaw>, StageError> {
        let prefix = ObjectPath::from(tenant);
        let mut found = Vec::new();
        let mut list = self.store.list(Some(&prefix));
        while let Some(meta) = list.next().await {
            let meta = meta.map_err(temporary)?;
            let key = meta.location.as_ref().to_string();
            // Only the tenant's own objects (`acme` must not take `acme2/…`).
            if key.ends_with(".eml") && key.starts_with(&format!("{tenant}/")) {
                found.push((meta.last_modified.timestamp_nanos_opt().unwrap_or(0), key));
            }
        }
        found.sort_by(|a, b| b.cmp(a));
        let mut out = Vec::new();
        for (modified, key) in found.into_iter().take(last) {
            let bytes = match self.get(&key).await {
                Ok(b) => b,
                // Swept between the listing and the read.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(temporary(e)),
            };
            out.push(StoredRaw {
                key,
                stored_at: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(modified))
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default(),
                bytes,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn only_the_tenants_raw_mail_newest_first() {
        let (store, dir) = crate::store::tests::store();
        store.put_raw("acme", b"first").await.unwrap();
        store.put("acme", b"an attachment").await.unwrap();
        store.put_raw("acme2", b"another tenant").await.unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        store.put_raw("acme", b"second").await.unwrap();
        let got = store.recent_raw("acme", 5).await.unwrap();
        let bodies: Vec<&[u8]> = got.iter().map(|r| r.bytes.as_ref()).collect();
        assert_eq!(bodies, [b"second".as_ref(), b"first".as_ref()]);
        assert_eq!(store.recent_raw("acme", 1).await.unwrap().len(), 1);
        assert!(store.recent_raw("beta", 5).await.unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
