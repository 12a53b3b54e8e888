//! Turning mail-auth's outputs into the verdicts of the payload (`auth`).

use mail_auth::dmarc::Policy;
use mail_auth::{
    DkimOutput, DkimResult, DmarcOutput, DmarcResult, IprevOutput, IprevResult, SpfOutput,
    SpfResult,
};
use postwire_core::event::{
    DkimVerdict, DmarcPolicy, DmarcVerdict, IprevVerdict, SpfVerdict, Verdict,
};

pub fn spf(out: &SpfOutput) -> SpfVerdict {
    SpfVerdict {
        result: match out.result() {
            SpfResult::Pass => Verdict::Pass,
            SpfResult::Fail => Verdict::Fail,
            SpfResult::SoftFail => Verdict::SoftFail,
            SpfResult::Neutral => Verdict::Neutral,
            SpfResult::TempError => Verdict::TempError,
            SpfResult::PermError => Verdict::PermError,
            SpfResult::None => Verdict::None,
        },
        domain: out.domain().to_string(),
    }
}

pub fn dkim_result(r: &DkimResult) -> (Verdict, Option<String>) {
    match r {
        DkimResult::Pass => (Verdict::Pass, None),
        DkimResult::Neutral(e) => (Verdict::Neutral, Some(e.to_string())),
        DkimResult::Fail(e) => (Verdict::Fail, Some(e.to_string())),
        DkimResult::PermError(e) => (Verdict::PermError, Some(e.to_string())),
        DkimResult::TempError(e) => (Verdict::TempError, Some(e.to_string())),
        DkimResult::None => (Verdict::None, None),
    }
}

pub fn dkim(out: &DkimOutput<'_>) -> DkimVerdict {
    let (result, reason) = dkim_result(out.result());
    DkimVerdict {
        result,
        domain: out.signature().map(|s| s.d.clone()),
        selector: out.signature().map(|s| s.s.clone()),
        reason,
    }
}

fn dmarc_result(r: &DmarcResult) -> Verdict {
    match r {
        DmarcResult::Pass => Verdict::Pass,
        DmarcResult::Fail(_) => Verdict::Fail,
        DmarcResult::TempError(_) => Verdict::TempError,
        DmarcResult::PermError(_) => Verdict::PermError,
        DmarcResult::None => Verdict::None,
    }
}

pub fn dmarc(out: &DmarcOutput) -> DmarcVerdict {
    let result = dmarc_result(&out.result());
    let policy = out.dmarc_record().map(|_| match out.policy() {
        Policy::Reject => DmarcPolicy::Reject,
        Policy::Quarantine => DmarcPolicy::Quarantine,
        Policy::None | Policy::Unspecified => DmarcPolicy::None,
    });
    let spf_aligned = *out.spf_result() == DmarcResult::Pass;
    let dkim_aligned = *out.dkim_result() == DmarcResult::Pass;
    DmarcVerdict {
        result,
        policy,
        aligned: spf_aligned || dkim_aligned,
        domain: out.domain().to_string(),
        spf_aligned,
        dkim_aligned,
    }
}

pub fn iprev(out: &IprevOutput) -> IprevVerdict {
    IprevVerdict {
        result: match out.result() {
            IprevResult::Pass => Verdict::Pass,
            IprevResult::Fail(_) => Verdict::Fail,
            IprevResult::TempError(_) => Verdict::TempError,
            IprevResult::PermError(_) => Verdict::PermError,
            IprevResult::None => Verdict::None,
        },
        ptr: out
            .ptr
            .as_ref()
            .map(|p| {
                p.iter()
                    .map(|h| h.trim_end_matches('.').to_string())
                    .collect()
            })
            .unwrap_or_default(),
    }
}
