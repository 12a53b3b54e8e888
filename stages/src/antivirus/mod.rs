//! The antivirus stage: every attachment goes to ClamAV (`clamd`, [`clamd`]) between parse
//! and store, and gets a verdict in the payload (`attachments[].scan`). What an infected
//! attachment costs is the tenant's choice (`infected_attachments`): `drop` it (metadata and
//! verdict stay, no URL, no content) or `quarantine` the whole mail — the process worker does
//! that part. clamd unreachable, slow or erroring is a temporary failure: the mail is
//! processed again later, never delivered unscanned.

pub mod clamd;
pub mod stage;

use std::time::Duration;

use postwire_core::antivirus_config::AntivirusConfig;
use postwire_core::event::{Message, Scan, ScanStatus};
use postwire_core::metrics;

use crate::StageError;
use clamd::{Clamd, Verdict};

const SCANS: &str = "postwire_antivirus_scans_total";
const SCANS_HELP: &str =
    "Attachments scanned by clamd, by result (clean, infected, unscanned, error).";

pub struct Antivirus {
    clamd: Clamd,
    max_bytes: u64,
}

impl Antivirus {
    /// The scanner, when `antivirus.clamd` is set.
    pub fn from_config(cfg: &AntivirusConfig) -> Option<Antivirus> {
        Some(Antivirus {
            clamd: Clamd::new(
                cfg.address()?,
                Duration::from_millis(cfg.connect_timeout_ms),
                Duration::from_millis(cfg.scan_timeout_ms),
            ),
            max_bytes: cfg.max_scan_bytes,
        })
    }

    /// Scans every attachment (`bodies[i]` is the content of `message.attachments[i]`) and
    /// records the verdicts. Returns the signatures found, one per infected attachment.
    pub async fn scan(
        &self,
        message: &mut Message,
        bodies: &[crate::parse::Body],
    ) -> Result<Vec<String>, StageError> {
        let mut found = Vec::new();
        for (att, body) in message.attachments.iter_mut().zip(bodies) {
            let scan = if body.len() > self.max_bytes {
                metrics::inc(SCANS, SCANS_HELP, &[("result", "unscanned")]);
                Scan {
                    status: ScanStatus::Unscanned,
                    signature: None,
                    reason: Some(format!(
                        "larger than antivirus.max_scan_bytes ({})",
                        self.max_bytes
                    )),
                }
            } else {
                match self.clamd.scan_body(body).await {
                    Ok(Verdict::Clean) => {
                        metrics::inc(SCANS, SCANS_HELP, &[("result", "clean")]);
                        Scan {
                            status: ScanStatus::Clean,
                            signature: None,
                            reason: None,
                        }
                    }
                    Ok(Verdict::Infected(sig)) => {
                        metrics::inc(SCANS, SCANS_HELP, &[("result", "infected")]);
                        tracing::info!(attachment = %att.id, signature = %sig, "An attachment is infected.");
                        found.push(sig.clone());
                        Scan {
                            status: ScanStatus::Infected,
                            signature: Some(sig),
                            reason: None,
                        }
                    }
                    Err(e) => {
                        metrics::inc(SCANS, SCANS_HELP, &[("result", "error")]);
                        tracing::warn!(error = %e, "clamd could not scan an attachment; the mail will be processed again later.");
                        return Err(StageError::Temporary(e.to_string()));
                    }
                }
            };
            att.scan = Some(scan);
        }
        Ok(found)
    }
}

/// True when this attachment must not be stored or inlined.
pub fn is_infected(att: &postwire_core::event::Attachment) -> bool {
    att.scan
        .as_ref()
        .is_some_and(|s| s.status == ScanStatus::Infected)
}
