//! Durability of the filesystem backend beyond what object_store's `with_fsync` covers: an
//! object found already in place (written by an earlier attempt that may have been cut off
//! between its link and its fsync) is fsynced again, with the directories that name it,
//! before its key is handed on.

use std::path::{Path, PathBuf};

use super::{BlobStore, temporary_io};
use crate::StageError;

impl BlobStore {
    /// Fsyncs an existing object and every directory from it up to the store's root (a no-op
    /// for S3).
    pub(super) async fn sync_existing(&self, key: &str) -> Result<(), StageError> {
        let Some(root) = self.fs_root.clone() else {
            return Ok(());
        };
        let key = key.to_string();
        tokio::task::spawn_blocking(move || sync_object(&root, &key))
            .await
            .map_err(|e| StageError::Temporary(format!("object storage: fsync task: {e}")))?
            .map_err(temporary_io)
    }
}

/// Fsyncs `<root>/<key>` and its parent directories up to and including `root`.
pub fn sync_object(root: &Path, key: &str) -> std::io::Result<()> {
    let path: PathBuf = root.join(key);
    std::fs::File::open(&path)?.sync_all()?;
    let mut dir = path.parent();
    while let Some(d) = dir {
        std::fs::File::open(d)?.sync_all()?;
        if d == root {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_an_object_and_its_directories() {
        let root = std::env::temp_dir().join(format!("postwire-sync-{}", std::process::id()));
        std::fs::create_dir_all(root.join("acme")).unwrap();
        std::fs::write(root.join("acme/abc.eml"), b"x").unwrap();
        sync_object(&root, "acme/abc.eml").unwrap();
        let err = sync_object(&root, "acme/missing.eml").unwrap_err();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }
}
