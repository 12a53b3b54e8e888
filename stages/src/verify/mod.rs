//! Verify: SPF (MAIL FROM and HELO), DKIM (every signature), DMARC, ARC and iprev with
//! mail-auth, into the `auth` verdicts of the payload plus the `Authentication-Results`
//! value postwire would add.
//!
//! - [`resolver`]: the DNS resolver from `[verify]` (configured servers or the system's).
//! - [`verdict`]: mail-auth outputs → payload verdicts.
//! - [`policy`]: tenant policy × verdicts → deliver, quarantine or reject.
//! - [`at_smtp`]: the same checks at SMTP time (ingest, for tenants on `reject`), and what
//!   they mean for the reply. One verifier, two callers: the worker never verifies again a
//!   mail verified at SMTP time (its verdicts travel in `Postwire-Auth`).
//!
//! Verdicts are data. DNS trouble shows as `temperror` ([`Auth::undecided`]): callers retry
//! or answer 4xx; it is never reported as a failure.

pub mod at_smtp;
pub mod policy;
pub mod resolver;
pub mod verdict;

use std::net::IpAddr;

use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, AuthenticationResults, MessageAuthenticator};
use postwire_core::config::VerifyConfig;
use postwire_core::envelope::Envelope;
use postwire_core::event::{ArcVerdict, Auth, DmarcVerdict, IprevVerdict, Verdict};

pub use at_smtp::AtSmtp;
pub use policy::{Action, decide};

/// Runs the checks. Cheap to clone (the resolver and its cache are shared).
#[derive(Clone)]
pub struct Verifier {
    auth: MessageAuthenticator,
    hostname: String,
    arc: bool,
    iprev: bool,
    /// Where it runs, for the metric: `worker` or `smtp`.
    at: &'static str,
}

impl Verifier {
    /// `hostname` names this server in `Authentication-Results`.
    pub fn new(cfg: &VerifyConfig, hostname: &str) -> Result<Verifier, resolver::ResolverError> {
        Ok(Verifier {
            auth: resolver::authenticator(cfg)?,
            hostname: hostname.to_string(),
            arc: cfg.arc,
            iprev: cfg.iprev,
            at: "worker",
        })
    }

    /// The same verifier, counted as verifying at SMTP time.
    pub fn at_smtp(mut self) -> Verifier {
        self.at = "smtp";
        self
    }

    /// Verifies a raw message received with `env`.
    pub async fn verify(&self, raw: &[u8], env: &Envelope) -> Auth {
        postwire_core::metrics::inc(
            "postwire_auth_verifications_total",
            "Messages verified (SPF, DKIM, DMARC, ARC), by where: at SMTP time or in the worker.",
            &[("at", self.at)],
        );
        let ip: IpAddr = env.client_ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let helo = env.helo.as_str();
        let mail_from = env.mail_from.as_str();
        let mail_domain = mail_from.rsplit_once('@').map_or(helo, |(_, d)| d);
        let a = &self.auth;
        // Mail that did not come over SMTP to us (SES: the client address is unspecified) has
        // no connecting host to check: SPF and iprev are `none` (SES's own verdicts are in
        // `envelope.ses`); DKIM, DMARC (on DKIM) and ARC still run.
        let smtp = !ip.is_unspecified();
        let spf_mail = async {
            if mail_from.is_empty() || !smtp {
                return None;
            }
            let params = SpfParameters::verify_mail_from(ip, helo, &self.hostname, mail_from);
            Some(a.verify_spf(params).await)
        };
        let iprev = async {
            match self.iprev && smtp {
                true => Some(a.verify_iprev(ip).await),
                false => None,
            }
        };
        let spf_helo = async {
            match smtp {
                true => {
                    a.verify_spf(SpfParameters::verify_ehlo(ip, helo, &self.hostname))
                        .await
                }
                false => mail_auth::SpfOutput::new(helo.to_string()),
            }
        };
        let (spf_helo, spf_mail, iprev) = tokio::join!(spf_helo, spf_mail, iprev);
        let spf_mail = spf_mail.unwrap_or_else(|| spf_helo.clone());
        let mut results = AuthenticationResults::new(&self.hostname);
        // mail-auth parses with mail-parser, whose debug_assert!s malformed MIME can reach.
        let parsed = std::panic::catch_unwind(|| AuthenticatedMessage::parse(raw))
            .ok()
            .flatten();
        let (dkim, dmarc, arc) = match &parsed {
            Some(msg) => {
                let has_arc = !msg.as_headers.is_empty() || !msg.ams_headers.is_empty();
                let arc = async {
                    match self.arc && has_arc {
                        true => Some(a.verify_arc(msg).await),
                        false => None,
                    }
                };
                let (dkim, arc) = tokio::join!(a.verify_dkim(msg), arc);
                let dmarc = a
                    .verify_dmarc(DmarcParameters::new(msg, &dkim, mail_domain, &spf_mail))
                    .await;
                let from = msg.from().to_string();
                results = results
                    .with_dkim_results(&dkim, &from)
                    .with_dmarc_result(&dmarc);
                if let Some(arc) = &arc {
                    results = results.with_arc_result(arc, ip);
                }
                (
                    dkim.iter().map(verdict::dkim).collect(),
                    verdict::dmarc(&dmarc),
                    arc.map(|o| {
                        let (result, _) = verdict::dkim_result(o.result());
                        ArcVerdict {
                            result,
                            sets: o.sets().len(),
                        }
                    }),
                )
            }
            None => (Vec::new(), no_dmarc(), None),
        };
        if smtp {
            results = results
                .with_spf_ehlo_result(&spf_helo, ip, helo)
                .with_spf_mailfrom_result(&spf_mail, ip, mail_from, helo);
        }
        if let Some(iprev) = &iprev {
            results = results.with_iprev_result(iprev, ip);
        }
        Auth {
            spf: verdict::spf(&spf_mail),
            dkim,
            dmarc,
            authentication_results: unfold(&results.to_string()),
            spf_helo: verdict::spf(&spf_helo),
            iprev: iprev.as_ref().map(verdict::iprev).unwrap_or(IprevVerdict {
                result: Verdict::None,
                ptr: Vec::new(),
            }),
            arc,
        }
    }
}

fn no_dmarc() -> DmarcVerdict {
    DmarcVerdict {
        result: Verdict::None,
        policy: None,
        aligned: false,
        domain: String::new(),
        spf_aligned: false,
        dkim_aligned: false,
    }
}

/// The header value on one line: `Authentication-Results: ` and folding removed.
fn unfold(header: &str) -> String {
    let value = header
        .strip_prefix("Authentication-Results:")
        .unwrap_or(header);
    value
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolver that never answers (nothing listens on UDP port 9 here).
    fn verifier() -> Verifier {
        let cfg = VerifyConfig {
            enabled: true,
            dns_servers: vec!["127.0.0.1:9".into()],
            dns_timeout_ms: 50,
            dns_attempts: 1,
            ..Default::default()
        };
        Verifier::new(&cfg, "mx.test").expect("verifier")
    }

    fn envelope(ip: &str) -> Envelope {
        Envelope {
            client_ip: ip.into(),
            helo: "mail.example.com".into(),
            mail_from: "a@example.com".into(),
            rcpt_to: vec!["support@acme.test".into()],
            ..Default::default()
        }
    }

    const RAW: &[u8] = b"From: a@example.com\r\nTo: support@acme.test\r\nSubject: x\r\n\r\nhi\r\n";

    #[tokio::test]
    async fn mail_without_a_connecting_host_gets_no_spf_or_iprev() {
        // SES mail carries the unspecified address: nothing to check SPF or iprev against.
        let auth = verifier().verify(RAW, &envelope("0.0.0.0")).await;
        assert_eq!(auth.spf.result, Verdict::None);
        assert_eq!(auth.spf_helo.result, Verdict::None);
        assert_eq!(auth.iprev.result, Verdict::None);
        assert!(!auth.authentication_results.contains("spf="));
        // Over SMTP the same DNS trouble is a temporary error, never a silent `none`.
        let auth = verifier().verify(RAW, &envelope("192.0.2.1")).await;
        assert_eq!(auth.spf.result, Verdict::TempError);
    }
}
