//! What a tenant's authentication policy does with a set of verdicts. The domain owner's
//! DMARC policy is honoured up to the tenant's ceiling: a tenant on `reject` refuses only
//! mail whose domain asks for reject, and quarantines mail whose domain asks for quarantine.

use postwire_core::config::AuthPolicy;
use postwire_core::event::{Auth, DmarcPolicy, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Deliver,
    /// Keep in the QUARANTINE stream, undelivered.
    Quarantine,
    /// Refuse at SMTP time (550 5.7.1).
    Reject,
}

/// The action for `auth` under `policy`. DNS trouble (temperror) never leads to refusal
/// here: callers retry (process worker) or defer with 451 (ingest) first.
pub fn decide(policy: AuthPolicy, auth: &Auth) -> Action {
    if auth.dmarc.result != Verdict::Fail {
        return Action::Deliver;
    }
    match (policy, auth.dmarc.policy) {
        (AuthPolicy::Tag, _) | (_, None | Some(DmarcPolicy::None)) => Action::Deliver,
        (AuthPolicy::Quarantine, Some(_)) => Action::Quarantine,
        (AuthPolicy::Reject, Some(DmarcPolicy::Quarantine)) => Action::Quarantine,
        (AuthPolicy::Reject, Some(DmarcPolicy::Reject)) => Action::Reject,
    }
}

/// One sentence saying why `decide` did not deliver.
pub fn reason(auth: &Auth) -> String {
    let policy = match auth.dmarc.policy {
        Some(DmarcPolicy::Reject) => "reject",
        Some(DmarcPolicy::Quarantine) => "quarantine",
        _ => "none",
    };
    format!("DMARC failed for {} (policy {policy})", auth.dmarc.domain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use postwire_core::event::{DmarcVerdict, IprevVerdict, SpfVerdict};

    fn auth(result: Verdict, policy: Option<DmarcPolicy>) -> Auth {
        let spf = SpfVerdict {
            result: Verdict::None,
            domain: "x.test".into(),
        };
        Auth {
            spf: spf.clone(),
            dkim: vec![],
            dmarc: DmarcVerdict {
                result,
                policy,
                aligned: false,
                domain: "x.test".into(),
                spf_aligned: false,
                dkim_aligned: false,
            },
            authentication_results: String::new(),
            spf_helo: spf,
            iprev: IprevVerdict {
                result: Verdict::None,
                ptr: vec![],
            },
            arc: None,
        }
    }

    #[test]
    fn the_domain_policy_is_honoured_up_to_the_tenant_ceiling() {
        use AuthPolicy::*;
        let r = Some(DmarcPolicy::Reject);
        let q = Some(DmarcPolicy::Quarantine);
        let n = Some(DmarcPolicy::None);
        let fail = |p| auth(Verdict::Fail, p);
        assert_eq!(decide(Tag, &fail(r)), Action::Deliver);
        assert_eq!(decide(Quarantine, &fail(r)), Action::Quarantine);
        assert_eq!(decide(Quarantine, &fail(n)), Action::Deliver);
        assert_eq!(decide(Reject, &fail(r)), Action::Reject);
        assert_eq!(decide(Reject, &fail(q)), Action::Quarantine);
        assert_eq!(decide(Reject, &fail(n)), Action::Deliver);
        assert_eq!(decide(Reject, &auth(Verdict::Pass, r)), Action::Deliver);
        assert_eq!(
            decide(Reject, &auth(Verdict::TempError, r)),
            Action::Deliver
        );
    }
}
