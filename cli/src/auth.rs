//! `postwire auth`: the authentication verdicts (`auth`) a raw message would get, using
//! the `[verify]` DNS settings of a config file (or the system's resolver without one).

use std::io::Read;
use std::path::Path;

use postwire_core::config::VerifyConfig;
use postwire_core::envelope::{Envelope, now_rfc3339};
use postwire_core::event::Verdict;
use postwire_stages::verify::Verifier;

use crate::tools::Failure;

pub struct Args<'a> {
    pub file: &'a Path,
    pub config: Option<&'a Path>,
    pub client_ip: &'a str,
    pub helo: &'a str,
    pub mail_from: &'a str,
}

/// Prints the verdicts as JSON; fails (exit 1) when DMARC fails.
pub async fn command(a: Args<'_>) -> Result<(), Failure> {
    let mut raw = Vec::new();
    let read = if a.file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut raw).map(|_| ())
    } else {
        std::fs::read(a.file).map(|b| raw = b)
    };
    read.map_err(|e| Failure::Usage(format!("cannot read {}: {e}", a.file.display())))?;
    if a.client_ip.parse::<std::net::IpAddr>().is_err() {
        return Err(Failure::Usage(format!(
            "--client-ip {:?} is not an IP address",
            a.client_ip
        )));
    }
    let (cfg, hostname) = match a.config {
        Some(p) => {
            let c = postwire_node::connect::load(p)?;
            (c.verify.clone(), c.smtp.hostname.clone())
        }
        None => (VerifyConfig::default(), "localhost".to_string()),
    };
    let verifier = Verifier::new(&cfg, &hostname).map_err(Failure::Failed)?;
    let env = Envelope {
        mail_from: a.mail_from.to_string(),
        helo: a.helo.to_string(),
        client_ip: a.client_ip.to_string(),
        received_at: now_rfc3339(),
        ..Default::default()
    };
    let auth = verifier.verify(&raw, &env).await;
    let json = serde_json::to_string_pretty(&auth).map_err(|e| Failure::Failed(e.to_string()))?;
    println!("{json}");
    if auth.dmarc.result == Verdict::Fail {
        return Err(Failure::Failed(format!(
            "DMARC fails for {}",
            auth.dmarc.domain
        )));
    }
    Ok(())
}
