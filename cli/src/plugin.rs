//! `postwire plugin test`: runs one plugin over one event in the real host, as a worker
//! would, and prints the outcome and the time taken.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postwire_stages::transform::{
    CallTags, LoadSource, Outcome, PluginSpec, TransformSettings, Transformer,
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
    /// Wall-clock limit of the call.
    #[arg(long, default_value_t = 100)]
    pub deadline_ms: u64,
    /// Memory limit of the instance.
    #[arg(long, default_value_t = 128 << 20)]
    pub memory_limit_bytes: usize,
    /// Compile the plugin now instead of using `$XDG_CACHE_HOME/postwire/plugin-cache`.
    #[arg(long)]
    pub no_cache: bool,
}

/// Where `plugin test` keeps compiled plugins: `$XDG_CACHE_HOME/postwire/plugin-cache`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("postwire").join("plugin-cache"))
}

fn read_input(path: &Path) -> Result<String, Failure> {
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

pub fn test(args: TestArgs) -> Result<(), Failure> {
    let event: serde_json::Value = if args.event.extension().is_some_and(|e| e == "eml") {
        // A raw message: the event `postwire parse` would print for it.
        let raw = std::fs::read(&args.event)
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", args.event.display())))?;
        serde_json::to_value(crate::tools::event_from_raw(&raw))
            .map_err(|e| Failure::Failed(e.to_string()))?
    } else {
        serde_json::from_str(&read_input(&args.event)?)
            .map_err(|e| Failure::Usage(format!("{} is not JSON: {e}", args.event.display())))?
    };
    let config = match &args.config {
        None => serde_json::Value::Null,
        Some(text) => {
            let text = match text.strip_prefix('@') {
                Some(file) => read_input(Path::new(file))?,
                None => text.clone(),
            };
            serde_json::from_str(&text)
                .map_err(|e| Failure::Usage(format!("--config is not JSON: {e}")))?
        }
    };
    if !args.plugin.is_file() {
        return Err(Failure::Usage(format!(
            "{} is not a file",
            args.plugin.display()
        )));
    }
    let settings = TransformSettings {
        deadline: Duration::from_millis(args.deadline_ms),
        memory_limit_bytes: args.memory_limit_bytes,
        cache_dir: if args.no_cache {
            None
        } else {
            default_cache_dir()
        },
    };
    let host = Transformer::new(settings).map_err(|e| Failure::Failed(e.to_string()))?;
    let load = host
        .load(&args.plugin)
        .map_err(|e| Failure::Failed(e.to_string()))?;
    let spec = PluginSpec {
        path: args.plugin.clone(),
        config,
    };
    let started = Instant::now();
    let result = host.call(&spec, &event.to_string(), &CallTags::default());
    let took = started.elapsed();
    let source = match load.source {
        LoadSource::Cached => "from the cache",
        LoadSource::Compiled => "compiled",
    };
    let timing = format!("time: load {} ({source}), call {}", ms(load.time), ms(took));
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
