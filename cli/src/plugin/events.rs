//! `postwire plugin events`: what tenants' plugins did to mail (drops, errors delivered
//! fail-open), with their output, from the admin API (`GET /api/v1/plugins/events`).

use postwire_admin::client::enc;
use serde_json::Value;

use crate::client::ApiArgs;
use crate::tools::Failure;

#[derive(clap::Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Only this tenant's.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Since this time (RFC 3339) or age (`2h`, `3d`).
    #[arg(long, default_value = "7d")]
    pub since: String,
    /// `drop` or `plugin` (an error delivered fail-open); both by default.
    #[arg(long)]
    pub kind: Option<String>,
    /// Print the JSON answer instead of lines.
    #[arg(long)]
    pub json: bool,
}

pub async fn events(args: EventsArgs) -> Result<(), Failure> {
    let c = crate::client::client(&args.api)?;
    let mut path = format!("/api/v1/plugins/events?since={}", enc(&args.since));
    if let Some(t) = &args.tenant {
        path.push_str(&format!("&tenant={}", enc(t)));
    }
    if let Some(k) = &args.kind {
        path.push_str(&format!("&kind={}", enc(k)));
    }
    let v = c.call("GET", &path, None).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    let s = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_string();
    for e in v["events"].as_array().into_iter().flatten() {
        let what = match (s(e, "kind").as_str(), s(e, "mode")) {
            ("drop", _) => "dropped".to_string(),
            (_, mode) => format!("{} error, {mode}", s(e, "error_kind")),
        };
        println!(
            "{} {} route {} mail {}: {what}: {}",
            s(e, "at"),
            s(e, "tenant"),
            s(e, "route"),
            s(e, "mail_id"),
            s(e, "reason")
        );
        for line in s(e, "output").lines() {
            println!("    | {line}");
        }
    }
    Ok(())
}
