//! One-shot commands: `parse`, `config check`; and the error type of every command.

use std::io::Read;
use std::path::Path;

use postwire_core::Config;
use postwire_core::envelope::{Envelope, now_rfc3339};
use postwire_core::event::{EmailEvent, RawInfo, SCHEMA};
use postwire_core::ids::{new_mail_id, sha256_hex};

/// How a command failed: `Usage` exits 2 (bad arguments or config), `Failed` exits 1.
#[derive(Debug)]
pub enum Failure {
    Usage(String),
    Failed(String),
}

impl From<postwire_node::NodeError> for Failure {
    fn from(e: postwire_node::NodeError) -> Failure {
        match e.is_config() {
            true => Failure::Usage(e.to_string()),
            false => Failure::Failed(e.to_string()),
        }
    }
}

pub fn parse(file: &Path) -> Result<(), Failure> {
    let mut raw = Vec::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut raw).map(|_| ())
    } else {
        std::fs::read(file).map(|b| raw = b)
    };
    read.map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
    let event = event_from_raw(&raw);
    let json = serde_json::to_string_pretty(&event).map_err(|e| Failure::Failed(e.to_string()))?;
    println!("{json}");
    Ok(())
}

/// The event `postwire parse` prints for a raw message (tenant and route `local`).
pub fn event_from_raw(raw: &[u8]) -> EmailEvent {
    let (message, limits) = postwire_stages::parse::parse(raw);
    EmailEvent {
        schema: SCHEMA.into(),
        id: "msg_local".into(),
        mail_id: new_mail_id(),
        tenant: "local".into(),
        route: "local".into(),
        received_at: now_rfc3339(),
        envelope: Envelope {
            received_at: now_rfc3339(),
            ..Default::default()
        },
        message,
        auth: None,
        raw: Some(RawInfo {
            size: raw.len() as u64,
            sha256: sha256_hex(raw),
            url: None,
            url_expires_at: None,
        }),
        limits,
    }
}

pub fn config_check(path: &Path) -> Result<(), Failure> {
    let cfg = Config::load(path).map_err(|e| Failure::Usage(e.to_string()))?;
    let routes: usize = cfg.tenants.values().map(|t| t.routes.len()).sum();
    let endpoints: usize = cfg.tenants.values().map(|t| t.endpoints.len()).sum();
    println!(
        "{}: OK ({} tenant(s), {routes} route(s), {endpoints} endpoint(s))",
        path.display(),
        cfg.tenants.len()
    );
    Ok(())
}
