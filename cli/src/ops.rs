//! Operator commands on the bus: `dlq list|show|replay`, `quarantine list|release`,
//! `deliveries show`, `endpoints enable|status`, `storage sweep`.

use std::io::Write;
use std::path::Path;

use postwire_stages::deliver::{audit, state};
use postwire_stages::held::{dlq, quarantine};

use crate::args::{DlqCommand, EndpointsCommand, QuarantineCommand};
use crate::tools::Failure;

pub async fn dlq(command: DlqCommand) -> Result<(), Failure> {
    match command {
        DlqCommand::List { filter: f, json } => {
            dlq_list(&f.config, filter(f.tenant, f.since, f.id)?, json).await
        }
        DlqCommand::Show { id, config } => dlq_show(&config, id).await,
        DlqCommand::Replay { filter: f } => {
            dlq_replay(&f.config, filter(f.tenant, f.since, f.id)?).await
        }
    }
}

pub async fn endpoints(command: EndpointsCommand) -> Result<(), Failure> {
    match command {
        EndpointsCommand::Enable {
            tenant,
            endpoint,
            config,
        } => endpoint_enable(&config, tenant, endpoint).await,
        EndpointsCommand::Status {
            tenant,
            endpoint,
            config,
        } => endpoint_status(&config, tenant, endpoint).await,
        EndpointsCommand::Test {
            tenant,
            endpoint,
            api,
        } => crate::operator::endpoint_test(api, tenant, endpoint).await,
    }
}

pub async fn quarantine(command: QuarantineCommand) -> Result<(), Failure> {
    match command {
        QuarantineCommand::List {
            config,
            tenant,
            json,
        } => quarantine_list(&config, tenant.as_deref(), json).await,
        QuarantineCommand::Release { config, seq } => quarantine_release(&config, &seq).await,
    }
}

/// Connects for a short command (no waiting for a server that is not there).
pub async fn connect(config: &Path) -> Result<async_nats::jetstream::Context, Failure> {
    let cfg = postwire_node::connect::load(config)?;
    Ok(postwire_node::connect::jetstream_now(&cfg).await?)
}

fn failed(e: impl std::fmt::Display) -> Failure {
    Failure::Failed(e.to_string())
}

fn filter(
    tenant: Option<String>,
    since: Option<String>,
    id: Option<String>,
) -> Result<dlq::Filter, Failure> {
    Ok(dlq::Filter {
        tenant,
        since: since
            .as_deref()
            .map(postwire_core::since::parse)
            .transpose()
            .map_err(|e| Failure::Usage(format!("--since {e}")))?,
        id,
    })
}

async fn dlq_list(config: &Path, f: dlq::Filter, json: bool) -> Result<(), Failure> {
    let js = connect(config).await?;
    let items = dlq::list(&js, &f).await.map_err(failed)?;
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

async fn dlq_show(config: &Path, id: String) -> Result<(), Failure> {
    let js = connect(config).await?;
    let items = dlq::list(
        &js,
        &dlq::Filter {
            id: Some(id.clone()),
            ..Default::default()
        },
    )
    .await
    .map_err(failed)?;
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

async fn dlq_replay(config: &Path, f: dlq::Filter) -> Result<(), Failure> {
    if f.tenant.is_none() && f.since.is_none() && f.id.is_none() {
        return Err(Failure::Usage(
            "say what to replay: --tenant, --since and/or --id".into(),
        ));
    }
    let js = connect(config).await?;
    let items = dlq::list(&js, &f).await.map_err(failed)?;
    let total = items.len();
    let mut failed = 0;
    let mut done = std::collections::BTreeMap::<String, Vec<serde_json::Value>>::new();
    for (i, d) in items.iter().enumerate() {
        match dlq::replay(&js, d).await {
            Ok(()) => done
                .entry(d.tenant.clone())
                .or_default()
                .push(serde_json::json!({"seq": d.seq, "delivery_id": d.delivery_id})),
            Err(e) => {
                failed += 1;
                eprintln!("\nseq {}: {e}", d.seq);
            }
        }
        progress(i + 1, total);
    }
    let by = postwire_admin::oplog::cli_user();
    for (tenant, items) in done {
        let detail = serde_json::json!({ "items": items });
        postwire_admin::oplog::write(&js, &by, &tenant, "dlq.replay", detail).await;
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
    let records = audit::attempts(&js, &mail_id).await.map_err(failed)?;
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

async fn endpoint_enable(config: &Path, tenant: String, endpoint: String) -> Result<(), Failure> {
    let js = connect(config).await?;
    let was = state::enable(&js, &tenant, &endpoint)
        .await
        .map_err(failed)?;
    let detail = serde_json::json!({"endpoint": endpoint, "was_disabled": was});
    let by = postwire_admin::oplog::cli_user();
    postwire_admin::oplog::write(&js, &by, &tenant, "endpoint.enable", detail).await;
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

async fn endpoint_status(config: &Path, tenant: String, endpoint: String) -> Result<(), Failure> {
    let js = connect(config).await?;
    match state::get(&js, &tenant, &endpoint).await.map_err(failed)? {
        Some(s) => println!(
            "{tenant}/{endpoint}: disabled since {} ({})",
            s.at, s.reason
        ),
        None => println!("{tenant}/{endpoint}: enabled"),
    }
    Ok(())
}

/// Prints one line per quarantined mail (oldest first), or one JSON object per line.
async fn quarantine_list(config: &Path, tenant: Option<&str>, json: bool) -> Result<(), Failure> {
    let js = connect(config).await?;
    let all = quarantine::entries(&js, tenant)
        .await
        .map_err(|e| Failure::Failed(format!("cannot read the QUARANTINE stream: {e}")))?;
    for q in &all {
        if json {
            println!("{}", serde_json::to_string(q).unwrap_or_default());
        } else {
            println!(
                "{}\t{}\t{}\t{}\t<{}>\t{}",
                q.seq, q.tenant, q.mail_id, q.received_at, q.mail_from, q.reason
            );
        }
    }
    if !json {
        eprintln!("{} quarantined mail(s)", all.len());
    }
    Ok(())
}

/// Releases the mails with these stream sequence numbers.
async fn quarantine_release(config: &Path, seqs: &[u64]) -> Result<(), Failure> {
    let js = connect(config).await?;
    let by = postwire_admin::oplog::cli_user();
    for &seq in seqs {
        let (tenant, mail_id) = quarantine::release_one(&js, seq).await.map_err(failed)?;
        println!("released {seq} ({tenant} {mail_id})");
        let detail = serde_json::json!({ "items": [{"seq": seq}] });
        postwire_admin::oplog::write(&js, &by, &tenant, "quarantine.release", detail).await;
    }
    Ok(())
}

/// `postwire storage sweep`: one retention sweep now.
pub async fn storage_sweep(config: &Path, before: Option<&str>) -> Result<(), Failure> {
    let cfg = postwire_node::connect::load(config)?;
    let cutoff = match before {
        Some(t) => Some(
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|e| Failure::Usage(format!("--before {t:?}: {e} (want RFC 3339)")))?
                .unix_timestamp(),
        ),
        None if cfg.storage.raw_retention_days == 0 => None,
        None => {
            let keep = i64::try_from(cfg.storage.raw_retention_days.saturating_mul(86_400))
                .unwrap_or(i64::MAX);
            Some(
                time::OffsetDateTime::now_utc()
                    .unix_timestamp()
                    .saturating_sub(keep),
            )
        }
    };
    // The sweep never signs URLs: any key will do for the filesystem backend.
    let store = postwire_stages::store::BlobStore::from_config(&cfg.storage, Some(Vec::new()))
        .map_err(|e| Failure::Usage(format!("storage: {e}")))?
        .ok_or_else(|| Failure::Usage("storage.backend is \"none\": nothing to sweep".into()))?;
    let swept = store
        .sweep(cutoff)
        .await
        .map_err(|e| Failure::Failed(format!("the sweep failed: {e}")))?;
    println!(
        "deleted {} raw message(s) and {} leftover upload(s)",
        swept.raw, swept.incoming
    );
    Ok(())
}
