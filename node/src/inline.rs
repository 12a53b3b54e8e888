//! Wires the mail-auth verifier of `postwire-stages` into ingest's inline-verification seam,
//! for tenants whose authentication policy is `reject`.

use std::sync::Arc;

use postwire_core::Config;
use postwire_core::config::AuthPolicy;
use postwire_core::envelope::{Envelope, now_rfc3339};
use postwire_ingest::smtp::Transaction;
use postwire_ingest::verify::VerdictFuture;
use postwire_ingest::{InlineVerdict, InlineVerifier};
use postwire_stages::verify::{Action, Verifier, decide, policy};

pub struct MailAuthInline {
    cfg: Arc<Config>,
    verifier: Verifier,
}

impl MailAuthInline {
    /// None when no tenant needs inline checks.
    pub fn for_config(cfg: &Arc<Config>) -> Result<Option<Arc<dyn InlineVerifier>>, String> {
        let needed = cfg.verify.enabled
            && cfg
                .tenants
                .values()
                .any(|t| t.auth.policy == AuthPolicy::Reject);
        if !needed {
            return Ok(None);
        }
        let verifier = Verifier::new(&cfg.verify, &cfg.smtp.hostname)?;
        Ok(Some(Arc::new(MailAuthInline {
            cfg: cfg.clone(),
            verifier,
        })))
    }
}

impl MailAuthInline {
    fn rejecting(&self, tx: &Transaction) -> bool {
        tx.rcpts
            .iter()
            .any(|(_, d)| self.cfg.auth_policy(&d.tenant) == AuthPolicy::Reject)
    }
}

impl InlineVerifier for MailAuthInline {
    fn needs_body(&self, tx: &Transaction) -> bool {
        self.rejecting(tx)
    }

    fn verify<'a>(&'a self, tx: &'a Transaction) -> VerdictFuture<'a> {
        Box::pin(async move {
            if !self.rejecting(tx) {
                return InlineVerdict::Accept { auth: None };
            }
            let env = Envelope {
                mail_from: tx.mail_from.clone(),
                rcpt_to: tx.rcpts.iter().map(|(a, _)| a.clone()).collect(),
                helo: tx.helo.clone(),
                client_ip: tx.client_ip.to_string(),
                received_at: now_rfc3339(),
                ..Default::default()
            };
            let auth = self.verifier.verify(&tx.body, &env).await;
            if auth.undecided() {
                return InlineVerdict::Defer;
            }
            if decide(AuthPolicy::Reject, &auth) == Action::Reject {
                return InlineVerdict::Reject(policy::reason(&auth));
            }
            InlineVerdict::Accept {
                auth: serde_json::to_string(&auth).ok(),
            }
        })
    }
}
