//! `postwire plugin try`: a dry run of a candidate plugin version over a tenant's last stored
//! mails, through the admin API (`POST /api/v1/tenants/{tenant}/plugins/{name}/try`); prints,
//! per mail, what the candidate changes in the outcome of the active chain.

use std::path::PathBuf;

use postwire_admin::client::enc;
use serde_json::Value;

use crate::client::ApiArgs;
use crate::tools::Failure;

#[derive(clap::Args)]
pub struct TryArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The tenant whose stored mails the candidate runs over.
    #[arg(long)]
    pub tenant: String,
    /// The candidate component (`.wasm`).
    #[arg(long)]
    pub file: PathBuf,
    /// The plugin it stands in for (default: the file name without `.wasm`); added last to
    /// the chain when the tenant has none of that name.
    #[arg(long)]
    pub name: Option<String>,
    /// How many of the latest stored mails (1–50).
    #[arg(long, default_value_t = 10)]
    pub last: u32,
    /// Print the JSON answer instead of the diff.
    #[arg(long)]
    pub json: bool,
}

pub async fn try_plugin(args: TryArgs) -> Result<(), Failure> {
    let wasm = std::fs::read(&args.file)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", args.file.display())))?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => postwire_stages::transform::plugin_name(&args.file),
    };
    let c = crate::client::client(&args.api)?;
    let path = format!(
        "/api/v1/tenants/{}/plugins/{}/try?last={}",
        enc(&args.tenant),
        enc(&name),
        args.last
    );
    let v = c
        .send("POST", &path, Some(("application/wasm", wasm)))
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let how = match v["replaced"].as_str() {
        Some(f) => format!("in place of {f}"),
        None => "added last to the chain".into(),
    };
    println!(
        "candidate {} {} for tenant {}, {how}; nothing delivered",
        s(&v, "name"),
        &s(&v, "version")[..12.min(s(&v, "version").len())],
        s(&v, "tenant")
    );
    let show = |v: Option<&Value>| v.map_or("(none)".to_string(), |v| v.to_string());
    for m in v["mails"].as_array().into_iter().flatten() {
        let changes = m["changes"].as_array().cloned().unwrap_or_default();
        let verdict = match changes.len() {
            0 => "unchanged".to_string(),
            n => format!("{n} change(s)"),
        };
        println!(
            "\nmail {} ({}) {:?}: {} -> {}, {verdict}",
            s(m, "key"),
            s(m, "stored_at"),
            s(m, "subject"),
            s(&m["active"], "outcome"),
            s(&m["candidate"], "outcome")
        );
        for ch in &changes {
            println!(
                "  {}: {} -> {}",
                s(ch, "path"),
                show(ch.get("before")),
                show(ch.get("after"))
            );
        }
        for line in s(m, "output").lines() {
            println!("    | {line}");
        }
    }
    Ok(())
}
