//! Verification at SMTP time, before the end of DATA is answered, for a transaction with a
//! recipient whose tenant is on `reject`. The checks are the worker's ([`Verifier::verify`],
//! with the envelope ingest publishes), so the verdict is the one the worker would have
//! made; it travels with the mail and the worker does not verify again.

use postwire_core::config::AuthPolicy;
use postwire_core::envelope::Envelope;
use postwire_core::event::Auth;

use super::Verifier;
use super::policy::{self, Action, decide};

/// What SMTP-time verification means for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtSmtp {
    /// Accept (250 after the PubAck); the verdicts go with the mail. A mail whose domain asks
    /// for quarantine is accepted here and held by the worker.
    Accept(Auth),
    /// 550 5.7.1: the domain owner asks for reject and DMARC failed; the text says why.
    Reject(String),
    /// 451 4.7.5: DNS could not decide; the client retries.
    Defer,
}

impl Verifier {
    /// Verifies `raw` received with `env` under the `reject` ceiling.
    pub async fn verify_at_smtp(&self, raw: &[u8], env: &Envelope) -> AtSmtp {
        let auth = self.verify(raw, env).await;
        judge(auth)
    }
}

/// The reply `auth` calls for at SMTP time.
pub fn judge(auth: Auth) -> AtSmtp {
    if auth.undecided() {
        return AtSmtp::Defer;
    }
    match decide(AuthPolicy::Reject, &auth) {
        Action::Reject => AtSmtp::Reject(policy::reason(&auth)),
        Action::Deliver | Action::Quarantine => AtSmtp::Accept(auth),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(dmarc: &str, policy: &str) -> Auth {
        Auth::from_header(&format!(
            r#"{{"spf":{{"result":"none","domain":"x.test"}},"dmarc":{{"result":"{dmarc}","policy":{policy},"aligned":false,"domain":"x.test","spf_aligned":false,"dkim_aligned":false}},"authentication_results":"mx.test; dmarc={dmarc}","spf_helo":{{"result":"none","domain":"c.test"}},"iprev":{{"result":"none"}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn the_reply_follows_the_domain_policy_under_the_reject_ceiling() {
        let rejected = judge(auth("fail", r#""reject""#));
        assert!(
            matches!(&rejected, AtSmtp::Reject(why) if why.contains("x.test")),
            "{rejected:?}"
        );
        // Held by the worker, not refused: the verdict goes with the mail.
        let held = auth("fail", r#""quarantine""#);
        assert_eq!(judge(held.clone()), AtSmtp::Accept(held));
        let passed = auth("pass", r#""reject""#);
        assert_eq!(judge(passed.clone()), AtSmtp::Accept(passed));
        assert_eq!(judge(auth("temperror", "null")), AtSmtp::Defer);
    }
}
