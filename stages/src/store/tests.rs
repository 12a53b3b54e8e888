//! The store stage's handling of the raw mail and of attachment buffers (issue 17).

use bytes::Bytes;
use postwire_core::event::{Attachment, Message};
use postwire_core::ids::sha256_hex;
use postwire_core::storage_config::{AttachmentPolicy, Backend, StorageConfig};

use super::{BlobStore, raw_key};
use crate::parse::Body;
use crate::parse::deferred::{Deferred, measure};

/// A filesystem store in a fresh temporary folder (the store's unit tests share it).
pub(super) fn store() -> (BlobStore, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "postwire-apply-{}",
        postwire_core::ids::new_mail_id()
    ));
    let cfg = StorageConfig {
        backend: Backend::Fs,
        path: dir.display().to_string(),
        ..Default::default()
    };
    let store = BlobStore::from_config(&cfg, Some(vec![1; 32]))
        .unwrap()
        .unwrap();
    (store, dir)
}

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir.join("acme"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn message_with(body: &[u8]) -> Message {
    Message {
        attachments: vec![Attachment {
            id: "att_0".into(),
            content_type: "application/octet-stream".into(),
            size: body.len() as u64,
            sha256: sha256_hex(body),
            filename: None,
            disposition: "attachment".into(),
            content_id: None,
            url: None,
            url_expires_at: None,
            message: None,
            content_base64: None,
            scan: None,
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_raw_mail_ingest_stored_is_not_stored_again() {
    let (store, dir) = store();
    let raw = Bytes::from_static(b"Subject: x\r\n\r\nbody\r\n");
    let body = Bytes::from_static(b"an attachment");
    // Ingest stored the raw mail under its key (claim check; named here so that a second
    // copy under the worker's own hash of it would show).
    let stored = store
        .put_key("acme/from-ingest.eml".into(), raw.clone())
        .await
        .unwrap();
    let mut m = message_with(&body);
    let url = store
        .apply(
            "acme",
            AttachmentPolicy::Store,
            &raw,
            Some(&stored),
            &mut m,
            &[Body::Held(body.clone())],
        )
        .await
        .unwrap();
    assert!(url.url.contains(&stored), "{}", url.url);
    let att = &m.attachments[0];
    assert!(att.url.as_deref().unwrap().contains(&att.sha256));
    let expected = {
        let mut v = vec!["from-ingest.eml".to_string(), sha256_hex(&body)];
        v.sort();
        v
    };
    assert_eq!(files(&dir), expected);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_key_not_of_the_tenants_raw_form_is_not_taken() {
    let (store, dir) = store();
    let raw = Bytes::from_static(b"Subject: y\r\n\r\nbody\r\n");
    let mut m = Message::default();
    for foreign in [
        "other/abc.eml",
        "acme/abc",
        "acme/x/abc.eml",
        "acmex/abc.eml",
    ] {
        let url = store
            .apply(
                "acme",
                AttachmentPolicy::Store,
                &raw,
                Some(foreign),
                &mut m,
                &[],
            )
            .await
            .unwrap();
        let own = raw_key("acme", &sha256_hex(&raw));
        assert!(url.url.contains(&own), "{foreign}: {}", url.url);
    }
    assert_eq!(files(&dir), [format!("{}.eml", sha256_hex(&raw))]);
    let _ = std::fs::remove_dir_all(dir);
}

/// A deferred body (issue 17: large attachments streamed) is decoded into a multipart upload
/// and stored under its hash with exactly the decoded bytes; no temporary object is left, and
/// a second mail with the same attachment finds it there.
#[tokio::test]
async fn a_deferred_body_is_stored_decoded_under_its_hash() {
    use base64::Engine as _;
    let (store, dir) = store();
    let data: Vec<u8> = (0..3_500_000u32).map(|i| (i % 241) as u8).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
    let (size, sha) = measure(encoded.as_bytes()).unwrap();
    assert_eq!(sha, sha256_hex(&data));
    let body = Body::Deferred(Deferred::new(Bytes::from(encoded), size));
    for _ in 0..2 {
        let mut m = message_with(&data);
        let raw = Bytes::from_static(b"Subject: big\r\n\r\n");
        store
            .apply(
                "acme",
                AttachmentPolicy::Store,
                &raw,
                None,
                &mut m,
                std::slice::from_ref(&body),
            )
            .await
            .unwrap();
        assert!(m.attachments[0].url.as_deref().unwrap().contains(&sha));
    }
    let stored = store.get(&format!("acme/{sha}")).await.unwrap();
    assert!(stored == data, "the stored object is the decoded body");
    let incoming = dir.join(super::spool::INCOMING);
    let left = std::fs::read_dir(&incoming).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "no temporary upload is left");
    let _ = std::fs::remove_dir_all(dir);
}
