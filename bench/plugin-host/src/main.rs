//! `plugin-bench`: what the WebAssembly plugin host costs, per example plugin (issue 5).
//!
//! For each `PATH:LANG` argument (LANG is rust, python, js or c) it measures, in the real host
//! (`postwire_stages::transform::Transformer`, the same code the process worker runs):
//!
//! - **per message**: `Transformer::call` on the event (`--eml`: the event the worker builds
//!   from that raw message, e.g. the bench's 2 KB mail, see `event.rs`; else `--event`,
//!   `plugins/event.json`), i.e. a fresh store and instance from the plugin's `InstancePre`,
//!   the call, and the result decoded, with the worker's engine settings (fuel on at
//!   `plugin_host.fuel`'s default unless `--fuel`) — wall time per call (mean, p50, p99) and
//!   the CPU time of the calling thread (from `/proc/thread-self/schedstat`, nanoseconds,
//!   independent of other load on the machine);
//! - **added worker CPU per mail** (`--pipeline-mails N`, at least 100, 0 to skip): the
//!   transform stage as the process worker runs it, with and without the plugin (see
//!   `pipeline.rs`);
//! - **cold load from the cache**: a new host (engine, empty plugin table) loading the plugin
//!   whose precompiled artifact is already in the cache: file read, content hash,
//!   deserialisation and `InstancePre`. The first load of the run (compile, or cache hit
//!   from an earlier run) is reported apart.
//!
//! Usage: plugin-bench [--cache-dir DIR] [--event FILE | --eml FILE] [--fuel N] [--calls N]
//!        [--guest-calls N] [--pipeline-mails N] [--loads N] [--json OUT]
//!        [--config NAME=JSON]... PATH:LANG...
//!
//! Prints a table; `--json` also writes the figures for `bench/run.py`.

mod event;
mod pipeline;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use postwire_stages::transform::{
    CallTags, LoadSource, PluginSpec, TransformSettings, Transformer,
};
use serde_json::json;

struct Args {
    cache_dir: PathBuf,
    event: PathBuf,
    eml: Option<PathBuf>,
    fuel: u64,
    calls: usize,
    guest_calls: usize,
    /// Mails through the transform stage for the added worker CPU (0: not measured).
    pipeline_mails: Option<usize>,
    loads: usize,
    json: Option<PathBuf>,
    /// Plugin name -> its config (`--config NAME=JSON`); `{}` otherwise.
    configs: std::collections::HashMap<String, serde_json::Value>,
    plugins: Vec<(PathBuf, String)>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        cache_dir: PathBuf::from("data/bench/plugin-cache"),
        event: PathBuf::from("plugins/event.json"),
        eml: None,
        fuel: TransformSettings::default().fuel,
        calls: 3000,
        guest_calls: 300,
        pipeline_mails: None,
        loads: 7,
        json: None,
        configs: Default::default(),
        plugins: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--cache-dir" => args.cache_dir = value("--cache-dir")?.into(),
            "--event" => args.event = value("--event")?.into(),
            "--eml" => args.eml = Some(value("--eml")?.into()),
            "--fuel" => args.fuel = value("--fuel")?.parse()?,
            "--pipeline-mails" => args.pipeline_mails = Some(value("--pipeline-mails")?.parse()?),
            "--calls" => args.calls = value("--calls")?.parse()?,
            "--guest-calls" => args.guest_calls = value("--guest-calls")?.parse()?,
            "--loads" => args.loads = value("--loads")?.parse()?,
            "--json" => args.json = Some(value("--json")?.into()),
            "--config" => {
                let v = value("--config")?;
                let (name, config) = v.split_once('=').context("--config NAME=JSON")?;
                args.configs.insert(
                    name.to_string(),
                    serde_json::from_str(config).context("--config")?,
                );
            }
            "-h" | "--help" => {
                println!(
                    "usage: plugin-bench [--cache-dir DIR] [--event FILE | --eml FILE] [--fuel N] \
                     [--calls N] [--guest-calls N] [--pipeline-mails N] [--loads N] [--json OUT] \
                     [--config NAME=JSON] PATH:LANG..."
                );
                std::process::exit(0);
            }
            p => {
                let (path, lang) = p
                    .rsplit_once(':')
                    .with_context(|| format!("{p}: expected PATH:LANG"))?;
                if !matches!(lang, "rust" | "python" | "js" | "c") {
                    bail!("{p}: LANG is rust, python, js or c");
                }
                args.plugins.push((path.into(), lang.to_string()));
            }
        }
    }
    if args.plugins.is_empty() {
        bail!("no plugins given (PATH:LANG...)");
    }
    Ok(args)
}

/// CPU time of the calling thread so far (schedstat: nanoseconds on the CPU).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn settings(cache_dir: &Path, fuel: u64) -> TransformSettings {
    TransformSettings {
        cache_dir: Some(cache_dir.to_path_buf()),
        fuel,
        // A cost, not a limit, is measured: a call preempted on a busy machine must not fail.
        deadline: Duration::from_secs(10),
        ..TransformSettings::default()
    }
}

fn bench_plugin(
    args: &Args,
    path: &PathBuf,
    lang: &str,
    event: &postwire_core::event::EmailEvent,
) -> anyhow::Result<serde_json::Value> {
    let spec = PluginSpec {
        path: path.to_path_buf(),
        config: args
            .configs
            .get(&postwire_stages::transform::plugin_name(path))
            .cloned()
            .unwrap_or_else(|| json!({})),
    };
    let tags = CallTags {
        tenant: "bench",
        route: "bench",
        mail_id: event::MAIL_ID,
    };
    // As the worker hands it over: the event serialised to JSON text.
    let event_json = serde_json::to_string(event)?;

    // First load of the run: compiles (and fills the cache) unless an earlier run did.
    let host = Transformer::new(settings(&args.cache_dir, args.fuel))?;
    let first = host.load(path)?;

    // Per message.
    let calls = if matches!(lang, "rust" | "c") {
        args.calls
    } else {
        args.guest_calls
    };
    for _ in 0..calls.div_ceil(10).max(5) {
        host.call(&spec, &event_json, &tags)?;
    }
    let mut times = Vec::with_capacity(calls);
    let cpu0 = thread_cpu();
    let wall0 = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        host.call(&spec, &event_json, &tags)?;
        times.push(t.elapsed());
    }
    let wall = wall0.elapsed();
    let cpu = thread_cpu() - cpu0;
    times.sort();
    drop(host);

    // Cold loads from the cache, each in a new host.
    let mut loads = Vec::with_capacity(args.loads);
    let mut load_cpu = Duration::ZERO;
    for _ in 0..args.loads {
        let host = Transformer::new(settings(&args.cache_dir, args.fuel))?;
        let c0 = thread_cpu();
        let t = Instant::now();
        let info = host.load(path)?;
        let elapsed = t.elapsed();
        load_cpu += thread_cpu() - c0;
        if info.source != LoadSource::Cached {
            bail!(
                "{}: expected a cache hit, got {:?}",
                path.display(),
                info.source
            );
        }
        loads.push(elapsed);
    }
    loads.sort();

    let pipeline = match args.pipeline_mails.unwrap_or(calls) {
        0 => json!({}),
        mails => pipeline::measure(
            &spec,
            &args.cache_dir.to_string_lossy(),
            args.fuel,
            event,
            mails,
        )?,
    };

    let n = calls as f64;
    let mut r = json!({
        "plugin": postwire_stages::transform::plugin_name(path),
        "lang": lang,
        "wasm_bytes": std::fs::metadata(path)?.len(),
        "first_load_ms": first.time.as_secs_f64() * 1e3,
        "first_load_source": format!("{:?}", first.source).to_lowercase(),
        "calls": calls,
        "call_mean_us": micros(wall) / n,
        "call_p50_us": micros(percentile(&times, 0.5)),
        "call_p99_us": micros(percentile(&times, 0.99)),
        "call_cpu_us": micros(cpu) / n,
        "loads": loads.len(),
        "load_min_ms": loads[0].as_secs_f64() * 1e3,
        "load_median_ms": percentile(&loads, 0.5).as_secs_f64() * 1e3,
        "load_max_ms": loads[loads.len() - 1].as_secs_f64() * 1e3,
        "load_cpu_ms": load_cpu.as_secs_f64() * 1e3 / loads.len() as f64,
        "event_bytes": event_json.len(),
        "fuel": args.fuel,
    });
    if let (Some(r), Some(p)) = (r.as_object_mut(), pipeline.as_object()) {
        r.extend(p.clone());
    }
    Ok(r)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let event = event::load(args.eml.as_deref(), &args.event)?;
    let mut results = Vec::new();
    println!(
        "{:<10} {:<7} {:>9} {:>9} {:>9} {:>9} {:>11} {:>10} {:>10} {:>12}",
        "plugin",
        "lang",
        "call µs",
        "p50 µs",
        "p99 µs",
        "CPU µs",
        "+worker µs",
        "load ms",
        "load max",
        "first load"
    );
    for (path, lang) in &args.plugins {
        let r = bench_plugin(&args, path, lang, &event)
            .with_context(|| format!("benchmarking {}", path.display()))?;
        println!(
            "{:<10} {:<7} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>11.1} {:>10.2} {:>10.2} {:>8.0} ms {}",
            r["plugin"].as_str().unwrap_or(""),
            lang,
            r["call_mean_us"].as_f64().unwrap_or(0.0),
            r["call_p50_us"].as_f64().unwrap_or(0.0),
            r["call_p99_us"].as_f64().unwrap_or(0.0),
            r["call_cpu_us"].as_f64().unwrap_or(0.0),
            r["added_cpu_per_mail_us"].as_f64().unwrap_or(f64::NAN),
            r["load_median_ms"].as_f64().unwrap_or(0.0),
            r["load_max_ms"].as_f64().unwrap_or(0.0),
            r["first_load_ms"].as_f64().unwrap_or(0.0),
            r["first_load_source"].as_str().unwrap_or(""),
        );
        results.push(r);
    }
    if let Some(out) = &args.json {
        std::fs::write(
            out,
            serde_json::to_string_pretty(&json!({ "plugins": results }))?,
        )
        .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}
