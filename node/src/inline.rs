//! Wires the mail-auth verifier of `postwire-stages` (the worker's) into ingest's
//! inline-verification seam. It exists whenever `[verify]` is enabled and decides per
//! transaction, from the live configuration, whether a recipient's tenant is on `reject`
//! now: a policy set or removed through the admin API counts from the next transaction.

use std::sync::Arc;

use postwire_core::Config;
use postwire_core::config::AuthPolicy;
use postwire_core::envelope::now_rfc3339;
use postwire_core::live::LiveConfig;
use postwire_ingest::smtp::Transaction;
use postwire_ingest::verify::VerdictFuture;
use postwire_ingest::{InlineVerdict, InlineVerifier};
use postwire_stages::verify::{AtSmtp, Verifier};

use crate::NodeError;

pub struct MailAuthInline {
    live: Arc<LiveConfig>,
    verifier: Verifier,
}

impl MailAuthInline {
    /// None when verification is off (`[verify] enabled = false`).
    pub fn for_config(
        cfg: &Config,
        live: Arc<LiveConfig>,
    ) -> Result<Option<Arc<dyn InlineVerifier>>, NodeError> {
        if !cfg.verify.enabled {
            return Ok(None);
        }
        let verifier = Verifier::new(&cfg.verify, &cfg.smtp.hostname)
            .map_err(|e| NodeError::Config(format!("verify: {e}")))?
            .at_smtp();
        Ok(Some(Arc::new(MailAuthInline { live, verifier })))
    }
}

impl InlineVerifier for MailAuthInline {
    fn applies(&self, tx: &Transaction) -> bool {
        let snap = self.live.get();
        tx.rcpts
            .iter()
            .any(|(_, d)| snap.cfg.auth_policy(&d.tenant) == AuthPolicy::Reject)
    }

    fn verify<'a>(&'a self, tx: &'a Transaction) -> VerdictFuture<'a> {
        Box::pin(async move {
            // The envelope the publisher writes to `Postwire-Envelope`: the worker would
            // verify with the same one.
            let env = tx.envelope(tx.rcpt_addresses(), now_rfc3339());
            match self.verifier.verify_at_smtp(&tx.body, &env).await {
                AtSmtp::Accept(auth) => InlineVerdict::Accept { auth: Some(auth) },
                AtSmtp::Reject(why) => InlineVerdict::Reject(why),
                AtSmtp::Defer => InlineVerdict::Defer,
            }
        })
    }
}
