//! Operator commands on the bus: `dlq list|show|replay`, `deliveries show`,
//! `endpoints enable|status`.

use std::io::Write;
use std::path::Path;

use postwire_core::bus;
use postwire_stages::deliver::{audit, dlq, state};

use crate::tools::Failure;

/// Connects for a short command (no waiting for a server that is not there).
pub async fn connect(config: &Path) -> Result<async_nats::jetstream::Context, Failure> {
    let cfg = crate::roles::load(config)?;
    let client = async_nats::ConnectOptions::new()
        .name("postwire-cli")
        .connection_timeout(std::time::Duration::from_secs(5))
        .connect(cfg.nats.servers())
        .await
        .map_err(|e| Failure::Failed(format!("cannot connect to NATS at {}: {e}", cfg.nats.url)))?;
    Ok(bus::jetstream(client, &cfg.nats))
}

/// `--since`: RFC 3339 (`2026-11-23T10:00:00Z`) or an age (`90m`, `2h`, `3d`).
pub fn parse_since(text: &str) -> Result<time::OffsetDateTime, Failure> {
    if let Ok(t) = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Ok(t);
    }
    let age = postwire_core::delivery_config::parse_duration(text).map_err(|_| {
        Failure::Usage(format!(
            "--since {text:?}: give a time like 2026-11-23T10:00:00Z or an age like 2h"
        ))
    })?;
    Ok(time::OffsetDateTime::now_utc() - age)
}

pub fn filter(
    tenant: Option<String>,
    since: Option<String>,
    id: Option<String>,
) -> Result<dlq::Filter, Failure> {
    Ok(dlq::Filter {
        tenant,
        since: since.as_deref().map(parse_since).transpose()?,
        id,
    })
}

pub async fn dlq_list(config: &Path, f: dlq::Filter, json: bool) -> Result<(), Failure> {
    let js = connect(config).await?;
    let items = dlq::list(&js, &f).await.map_err(Failure::Failed)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&items).unwrap_or_default()
        );
        return Ok(());
    }
    if items.is_empty() {
        println!("The dead-letter stream holds nothing that matches.");
        return Ok(());
    }
    println!(
        "{:>6}  {:<20}  {:<28}  {:<36}  {:>8}  {:>6}  error",
        "seq", "failed at", "tenant/route", "delivery id", "attempts", "status"
    );
    for d in &items {
        let when = d.failed_at.get(..19).unwrap_or(&d.failed_at);
        println!(
            "{:>6}  {:<20}  {:<28}  {:<36}  {:>8}  {:>6}  {}",
            d.seq,
            when,
            format!("{}/{}", d.tenant, d.route),
            d.delivery_id,
            d.attempts,
            d.last_status,
            d.last_error
        );
    }
    println!("{} dead letter(s).", items.len());
    Ok(())
}

pub async fn dlq_show(config: &Path, id: String) -> Result<(), Failure> {
    let js = connect(config).await?;
    let items = dlq::list(
        &js,
        &dlq::Filter {
            id: Some(id.clone()),
            ..Default::default()
        },
    )
    .await
    .map_err(Failure::Failed)?;
    if items.is_empty() {
        return Err(Failure::Failed(format!("no dead letter matches {id}")));
    }
    for d in items {
        let mut v = serde_json::to_value(&d).unwrap_or_default();
        v["payload"] = d.payload_json();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    Ok(())
}

pub async fn dlq_replay(config: &Path, f: dlq::Filter) -> Result<(), Failure> {
    if f.tenant.is_none() && f.since.is_none() && f.id.is_none() {
        return Err(Failure::Usage(
            "say what to replay: --tenant, --since and/or --id".into(),
        ));
    }
    let js = connect(config).await?;
    let items = dlq::list(&js, &f).await.map_err(Failure::Failed)?;
    let total = items.len();
    let mut failed = 0;
    for (i, d) in items.iter().enumerate() {
        if let Err(e) = dlq::replay(&js, d).await {
            failed += 1;
            eprintln!("\nseq {}: {e}", d.seq);
        }
        progress(i + 1, total);
    }
    if total > 0 {
        eprintln!();
    }
    println!("Replayed {} of {total} dead letter(s).", total - failed);
    if failed > 0 {
        return Err(Failure::Failed(format!("{failed} replay(s) failed")));
    }
    Ok(())
}

fn progress(done: usize, total: usize) {
    const WIDTH: usize = 30;
    let filled = done * WIDTH / total.max(1);
    eprint!(
        "\r[{}{}] {done}/{total}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled)
    );
    let _ = std::io::stderr().flush();
}

pub async fn deliveries_show(config: &Path, mail_id: String, json: bool) -> Result<(), Failure> {
    let js = connect(config).await?;
    let records = audit::attempts(&js, &mail_id)
        .await
        .map_err(Failure::Failed)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&records).unwrap_or_default()
        );
        return Ok(());
    }
    if records.is_empty() {
        return Err(Failure::Failed(format!(
            "no delivery attempt recorded for mail {mail_id}"
        )));
    }
    println!(
        "{:<30}  {:<20}  {:>7}  {:<9}  {:>6}  {:>8}  error",
        "time", "route/endpoint", "attempt", "result", "status", "ms"
    );
    for r in &records {
        println!(
            "{:<30}  {:<20}  {:>7}  {:<9}  {:>6}  {:>8}  {}",
            r.at,
            format!("{}/{}", r.route, r.endpoint),
            r.attempt,
            r.result,
            r.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            r.duration_ms,
            r.error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

pub async fn endpoint_enable(
    config: &Path,
    tenant: String,
    endpoint: String,
) -> Result<(), Failure> {
    let js = connect(config).await?;
    let was = state::enable(&js, &tenant, &endpoint)
        .await
        .map_err(Failure::Failed)?;
    println!(
        "{tenant}/{endpoint}: {}",
        if was {
            "enabled again"
        } else {
            "was not disabled"
        }
    );
    Ok(())
}

pub async fn endpoint_status(
    config: &Path,
    tenant: String,
    endpoint: String,
) -> Result<(), Failure> {
    let js = connect(config).await?;
    match state::get(&js, &tenant, &endpoint)
        .await
        .map_err(Failure::Failed)?
    {
        Some(s) => println!(
            "{tenant}/{endpoint}: disabled since {} ({})",
            s.at, s.reason
        ),
        None => println!("{tenant}/{endpoint}: enabled"),
    }
    Ok(())
}
