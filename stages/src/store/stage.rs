//! The store as a stage of the process worker: attachments by the tenant's policy and the
//! raw mail into object storage; inline images then point at their URLs instead of `cid:`.

use std::sync::Arc;

use super::BlobStore;
use crate::StageError;
use crate::process::mail::{Ctx, Flow, Mail, MailStage};

pub struct StoreStage {
    blobs: Arc<BlobStore>,
}

impl StoreStage {
    pub fn new(blobs: Arc<BlobStore>) -> StoreStage {
        StoreStage { blobs }
    }
}

impl MailStage for StoreStage {
    async fn run(&self, ctx: &Ctx<'_>, mail: &mut Mail) -> Result<Flow, StageError> {
        let Some(parsed) = mail.parsed.as_mut() else {
            return Ok(Flow::Next);
        };
        let policy = ctx
            .cfg
            .tenants
            .get(&mail.tenant)
            .map(|t| t.attachments)
            .unwrap_or_default();
        let url = self
            .blobs
            .apply(
                &mail.tenant,
                policy,
                &mail.raw,
                mail.raw_key.as_deref(),
                &mut parsed.message,
                &parsed.bodies,
            )
            .await?;
        crate::parse::sanitize::rewrite_cids(&mut parsed.message);
        mail.raw_url = Some(url);
        Ok(Flow::Next)
    }
}
