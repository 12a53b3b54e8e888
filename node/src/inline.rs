//! Wires the checks of `postwire-stages` (the worker's) into ingest's inline-verification
//! seam: the mail-auth verifier whenever `[verify]` is enabled, for recipients whose tenant
//! is on `reject` now, and rspamd whenever `[spam]` is on, for recipients whose tenant has
//! `spam.reject_above`. Both are decided per transaction from the live configuration: a
//! policy set or removed through the admin API counts from the next transaction.

use std::sync::Arc;

use postwire_core::Config;
use postwire_core::config::AuthPolicy;
use postwire_core::envelope::now_rfc3339;
use postwire_core::event::Auth;
use postwire_core::live::LiveConfig;
use postwire_ingest::smtp::Transaction;
use postwire_ingest::verify::VerdictFuture;
use postwire_ingest::{InlineVerdict, InlineVerifier};
use postwire_stages::spam::Rspamd;
use postwire_stages::verify::{AtSmtp, Verifier};

use crate::NodeError;

pub struct MailAuthInline {
    live: Arc<LiveConfig>,
    verifier: Verifier,
}

impl MailAuthInline {
    /// None when verification is off (`[verify] enabled = false`).
    pub fn new(cfg: &Config, live: Arc<LiveConfig>) -> Result<Option<MailAuthInline>, NodeError> {
        if !cfg.verify.enabled {
            return Ok(None);
        }
        let verifier = Verifier::new(&cfg.verify, &cfg.smtp.hostname)
            .map_err(|e| NodeError::Config(format!("verify: {e}")))?
            .at_smtp();
        Ok(Some(MailAuthInline { live, verifier }))
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
                AtSmtp::Accept(auth) => InlineVerdict::Accept {
                    auth: Some(auth),
                    spam: None,
                },
                AtSmtp::Reject(why) => InlineVerdict::Reject(why),
                AtSmtp::Defer => InlineVerdict::Defer,
            }
        })
    }
}

/// rspamd at SMTP time: a score at or above the lowest `spam.reject_above` of the
/// transaction's tenants refuses the whole transaction (550 5.7.1); rspamd unreachable defers
/// it (451 4.7.1), never accepts it unscored.
pub struct SpamInline {
    live: Arc<LiveConfig>,
    rspamd: Rspamd,
}

impl SpamInline {
    fn threshold(&self, tx: &Transaction) -> Option<f64> {
        let snap = self.live.get();
        tx.rcpts
            .iter()
            .filter_map(|(_, d)| snap.cfg.tenants.get(&d.tenant)?.spam.reject_above)
            .reduce(f64::min)
    }

    async fn check(&self, tx: &Transaction, auth: Option<Auth>) -> InlineVerdict {
        let Some(limit) = self.threshold(tx) else {
            return InlineVerdict::Accept { auth, spam: None };
        };
        let env = tx.envelope(tx.rcpt_addresses(), now_rfc3339());
        match self.rspamd.check(&tx.body, &env, "smtp", "smtp").await {
            Ok(spam) if spam.score >= limit => InlineVerdict::Reject(format!(
                "spam (rspamd score {} is at or above {limit})",
                spam.score
            )),
            Ok(spam) => InlineVerdict::Accept {
                auth,
                spam: Some(spam),
            },
            Err(e) => {
                tracing::warn!(error = %e, "rspamd could not score a message at SMTP time.");
                InlineVerdict::Retry("Cannot scan the message for spam now, try again later".into())
            }
        }
    }
}

/// The checks ingest runs before answering DATA: authentication first (its refusal is
/// final), then spam.
pub struct Inline {
    auth: Option<MailAuthInline>,
    spam: Option<SpamInline>,
}

impl Inline {
    /// None when neither `[verify]` nor `[spam]` is on.
    pub fn for_config(
        cfg: &Config,
        live: Arc<LiveConfig>,
    ) -> Result<Option<Arc<dyn InlineVerifier>>, NodeError> {
        let auth = MailAuthInline::new(cfg, live.clone())?;
        let spam = Rspamd::from_config(&cfg.spam).map(|rspamd| SpamInline { live, rspamd });
        if auth.is_none() && spam.is_none() {
            return Ok(None);
        }
        Ok(Some(Arc::new(Inline { auth, spam })))
    }
}

impl InlineVerifier for Inline {
    fn applies(&self, tx: &Transaction) -> bool {
        self.auth.as_ref().is_some_and(|a| a.applies(tx))
            || self
                .spam
                .as_ref()
                .is_some_and(|s| s.threshold(tx).is_some())
    }

    fn verify<'a>(&'a self, tx: &'a Transaction) -> VerdictFuture<'a> {
        Box::pin(async move {
            let mut auth = None;
            if let Some(a) = self.auth.as_ref().filter(|a| a.applies(tx)) {
                match a.verify(tx).await {
                    InlineVerdict::Accept { auth: got, .. } => auth = got,
                    other => return other,
                }
            }
            match &self.spam {
                Some(s) => s.check(tx, auth).await,
                None => InlineVerdict::Accept { auth, spam: None },
            }
        })
    }
}
