//! **Added worker CPU per mail**: the transform stage as the process worker runs it
//! (`postwire_stages::transform::stage::apply` on a multi-thread tokio runtime, the plugin
//! call handed to a blocking thread, the event serialised, the chain run, the result decoded
//! and turned into deliveries), once with the tenant's chain holding the plugin and once
//! without plugins; the difference of the process's CPU time (every thread: runtime workers,
//! blocking threads, the epoch ticker) per mail is what the plugin adds to the worker.

use std::time::Duration;

use anyhow::{Context, bail};
use postwire_core::Config;
use postwire_core::event::EmailEvent;
use postwire_core::plugin_config::PluginConfig;
use postwire_stages::prepare::RouteEvent;
use postwire_stages::transform::{PluginSlot, PluginSpec, stage};
use serde_json::json;

/// Fewer mails than this are not measured (see [`measure`]).
const MIN_MAILS: usize = 100;

/// CPU time of every thread of this process so far (schedstat: nanoseconds on the CPU).
pub fn process_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// The worker's configuration for one tenant whose chain is `plugin` (none: no plugins).
fn config(plugin: Option<&PluginSpec>, cache_dir: &str, fuel: u64) -> anyhow::Result<Config> {
    let mut cfg = Config::from_toml(&format!(
        r#"
[plugin_host]
cache_dir = "{cache_dir}"
deadline_ms = 10000
fuel = {fuel}

[tenants.acme]
domains = ["acme.test"]

[[tenants.acme.routes]]
name = "support"
recipients = ["*@acme.test"]
endpoints = ["hook"]

# Where the example `route` plugin sends invoices (bench/run.py's --config route=…).
[[tenants.acme.routes]]
name = "billing"
recipients = ["billing@acme.test"]
endpoints = ["hook"]

[[tenants.acme.routes]]
name = "archive"
recipients = ["archive@acme.test"]
endpoints = ["hook"]

[tenants.acme.endpoints.hook]
url = "https://hooks.example.com/postwire"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"#
    ))?;
    if let Some(p) = plugin {
        let tenant = cfg.tenants.get_mut("acme").context("tenant acme")?;
        tenant.plugins = vec![PluginConfig {
            path: p.path.clone(),
            config: Some(p.config.clone()),
        }];
    }
    Ok(cfg)
}

/// Process CPU per mail of `mails` mails through the transform stage with `cfg`.
async fn per_mail(cfg: &Config, event: &EmailEvent, mails: usize) -> anyhow::Result<Duration> {
    let slot = PluginSlot::default();
    let host = slot.get(cfg)?;
    let one = || {
        stage::apply(
            host.as_ref(),
            cfg,
            "acme",
            crate::event::MAIL_ID,
            vec![RouteEvent {
                route: "support".into(),
                event: event.clone(),
            }],
        )
    };
    for _ in 0..mails.div_ceil(10).max(5) {
        let out = one().await?;
        if let Some(dead) = out.dead.first() {
            bail!("the chain failed: {}", dead.reason);
        }
    }
    let cpu0 = process_cpu();
    for _ in 0..mails {
        one().await?;
    }
    Ok((process_cpu() - cpu0) / mails as u32)
}

/// Process CPU of one empty hop to a blocking thread and back (what the stage's
/// `spawn_blocking` costs besides the chain).
async fn hop(n: usize) -> anyhow::Result<Duration> {
    for _ in 0..n.div_ceil(10) {
        tokio::task::spawn_blocking(|| ()).await?;
    }
    let cpu0 = process_cpu();
    for _ in 0..n {
        tokio::task::spawn_blocking(|| ()).await?;
    }
    Ok((process_cpu() - cpu0) / n as u32)
}

/// Process CPU per mail without and with `plugin` in the tenant's chain.
pub fn measure(
    plugin: &PluginSpec,
    cache_dir: &str,
    fuel: u64,
    event: &EmailEvent,
    mails: usize,
) -> anyhow::Result<serde_json::Value> {
    // schedstat adds a running thread's time at the scheduler's next tick (a few ms): measure
    // enough mails that a tick is small beside them.
    let mails = mails.max(MIN_MAILS);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let without = config(None, cache_dir, fuel)?;
    let with = config(Some(plugin), cache_dir, fuel)?;
    let event = event.clone();
    // On a runtime worker thread, as the process worker's stages run.
    let (base, cost, hop) = runtime.block_on(runtime.spawn(async move {
        let base = per_mail(&without, &event, mails).await?;
        let cost = per_mail(&with, &event, mails).await?;
        anyhow::Ok((base, cost, hop(mails).await?))
    }))??;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Ok(json!({
        "pipeline_mails": mails,
        "stage_cpu_without_us": us(base),
        "stage_cpu_with_us": us(cost),
        "added_cpu_per_mail_us": us(cost.saturating_sub(base)),
        "blocking_hop_cpu_us": us(hop),
    }))
}
