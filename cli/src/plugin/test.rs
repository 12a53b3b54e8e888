//! `postwire plugin test`: runs one plugin over one event in the real host, with the limits
//! a worker uses (`[plugin_host]`, from `--host-config` or its defaults), and prints the
//! outcome, what the plugin wrote to stdout/stderr, the time and the fuel it took.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postwire_core::config::PluginHostConfig;
use postwire_core::envelope::{Envelope, now_rfc3339};
use postwire_core::ids::new_mail_id;
use postwire_stages::prepare::preview::{self, Preview};
use postwire_stages::transform::{
    ChainRun, LoadSource, Outcome, OwnedTags, PluginSpec, TransformSettings, Transformer,
};

use crate::tools::Failure;

#[derive(clap::Args)]
pub struct TestArgs {
    /// The plugin component (`.wasm`).
    pub plugin: PathBuf,
    /// The event (JSON, schema postwire.email.v1; `-` for standard input), or a raw
    /// message (`.eml`), turned into the event `postwire parse` prints.
    pub event: PathBuf,
    /// The plugin's config as JSON text, or `@file.json`.
    #[arg(long)]
    pub config: Option<String>,
    /// Take the limits and the cache folder from this postwire config's `[plugin_host]`
    /// (what the workers use); without it, the defaults of `[plugin_host]`.
    #[arg(long)]
    pub host_config: Option<PathBuf>,
    /// Wall-clock limit of the call (overrides `plugin_host.deadline_ms`).
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// Memory limit of the instance (overrides `plugin_host.memory_limit_bytes`).
    #[arg(long)]
    pub memory_limit_bytes: Option<usize>,
    /// CPU limit of the call in fuel units, 0 for none (overrides `plugin_host.fuel`).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Compile the plugin now instead of using the cache (`plugin_host.cache_dir` with
    /// `--host-config`, else `$XDG_CACHE_HOME/postwire/plugin-cache`).
    #[arg(long)]
    pub no_cache: bool,
    /// The tenant the event (and the plugin's log lines) belong to.
    #[arg(long, default_value = "local")]
    pub tenant: String,
    /// The route the event matched.
    #[arg(long, default_value = "local")]
    pub route: String,
    /// The envelope sender of a raw message (`.eml`).
    #[arg(long, default_value = "")]
    pub mail_from: String,
    /// An envelope recipient of a raw message (`.eml`); repeat for several.
    #[arg(long)]
    pub rcpt: Vec<String>,
}

/// Where `plugin test` keeps compiled plugins: `$XDG_CACHE_HOME/postwire/plugin-cache`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("postwire").join("plugin-cache"))
}

pub(crate) fn read_input(path: &Path) -> Result<String, Failure> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Failure::Usage(format!("reading standard input: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The host settings: `[plugin_host]` of `--host-config` (or its defaults), then the flags.
pub(crate) fn settings(args: &TestArgs) -> Result<TransformSettings, Failure> {
    let (ph, from_file) = match &args.host_config {
        Some(path) => {
            let cfg = postwire_core::Config::load(path)
                .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
            (cfg.plugin_host, true)
        }
        None => (PluginHostConfig::default(), false),
    };
    let mut s = TransformSettings::from_config(&ph);
    if !from_file {
        s.cache_dir = default_cache_dir();
    }
    if args.no_cache {
        s.cache_dir = None;
    }
    if let Some(d) = args.deadline_ms {
        s.deadline = Duration::from_millis(d);
    }
    if let Some(m) = args.memory_limit_bytes {
        s.memory_limit_bytes = m;
    }
    if let Some(f) = args.fuel {
        s.fuel = f;
    }
    Ok(s)
}

/// The event of `args.event`: JSON as it is, or a raw message parsed as the worker does,
/// with the tenant, route and envelope of the flags.
fn event(args: &TestArgs) -> Result<serde_json::Value, Failure> {
    if args.event.extension().is_none_or(|e| e != "eml") {
        return serde_json::from_str(&read_input(&args.event)?)
            .map_err(|e| Failure::Usage(format!("{} is not JSON: {e}", args.event.display())));
    }
    let raw = std::fs::read(&args.event)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", args.event.display())))?;
    let p = Preview {
        id: String::new(),
        mail_id: new_mail_id(),
        tenant: args.tenant.clone(),
        route: args.route.clone(),
        envelope: Envelope {
            mail_from: args.mail_from.clone(),
            rcpt_to: args.rcpt.clone(),
            received_at: now_rfc3339(),
            ..Default::default()
        },
    };
    serde_json::to_value(preview::event(&raw, &p)).map_err(|e| Failure::Failed(e.to_string()))
}

fn plugin_config(args: &TestArgs) -> Result<serde_json::Value, Failure> {
    let Some(text) = &args.config else {
        return Ok(serde_json::Value::Null);
    };
    let text = match text.strip_prefix('@') {
        Some(file) => read_input(Path::new(file))?,
        None => text.clone(),
    };
    serde_json::from_str(&text).map_err(|e| Failure::Usage(format!("--config is not JSON: {e}")))
}

pub async fn test(args: TestArgs) -> Result<(), Failure> {
    let event = event(&args)?;
    let config = plugin_config(&args)?;
    if !args.plugin.is_file() {
        return Err(Failure::Usage(format!(
            "{} is not a file",
            args.plugin.display()
        )));
    }
    let settings = settings(&args)?;
    let fuel_limit = settings.fuel;
    let spec = PluginSpec {
        path: args.plugin.clone(),
        config,
    };
    let tags = OwnedTags {
        tenant: args.tenant.clone(),
        route: args.route.clone(),
        mail_id: event["mail_id"].as_str().unwrap_or_default().to_string(),
    };
    // The host runs on a blocking thread, as in the worker: a plugin writing to stdout or
    // stderr makes WASI wait on the runtime, which an async thread must not do.
    let (load, run, took) = tokio::task::spawn_blocking(move || {
        let host = Transformer::new(settings)?;
        let load = host.load(&spec.path)?;
        let started = Instant::now();
        let run = host.call_traced(&spec, &event.to_string(), &tags.borrow());
        Ok::<_, postwire_stages::transform::TransformError>((load, run, started.elapsed()))
    })
    .await
    .map_err(|e| Failure::Failed(format!("the plugin thread failed: {e}")))?
    .map_err(|e| Failure::Failed(format!("{} error: {e}", e.kind())))?;
    let ChainRun {
        result,
        output,
        fuel_used,
    } = run;
    let source = match load.source {
        LoadSource::Cached => "from the cache",
        LoadSource::Compiled => "compiled",
    };
    let fuel = match fuel_limit {
        0 => String::new(),
        limit => format!(", fuel {fuel_used} of {limit}"),
    };
    let timing = format!(
        "time: load {} ({source}), call {}{fuel}",
        ms(load.time),
        ms(took)
    );
    if !output.is_empty() {
        eprintln!("plugin output (stdout and stderr):\n{output}");
    }
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    match result {
        Ok(Outcome::Deliver(v)) => println!("deliver\n{}", pretty(&v)),
        Ok(Outcome::Drop { reason }) => println!("drop: {reason}"),
        Ok(Outcome::Route(routes)) => {
            for (route, v) in routes {
                println!("route {route}\n{}", pretty(&v));
            }
        }
        Err(e) => {
            println!("{timing}");
            return Err(Failure::Failed(format!("{} error: {e}", e.kind())));
        }
    }
    println!("{timing}");
    Ok(())
}
