//! The subcommands' arguments (the top level is in main.rs).

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Runs a plugin over an event in the real host; prints the outcome and the time taken.
    ///
    /// Exit code 1 when the plugin fails (trap, deadline, memory limit, its own error).
    ///
    /// Example: postwire plugin test plugins/build/slack.wasm event.json --config '{"style":"discord"}'
    Test(crate::plugin::TestArgs),
    /// Mail a plugin dropped and plugin errors delivered untransformed (fail-open), with
    /// what the plugins wrote, from the admin API (token in POSTWIRE_TOKEN). Fail-closed
    /// errors are dead letters: `postwire dlq list`.
    ///
    /// Example: postwire plugin events --tenant acme --since 2h
    Events(crate::plugin::EventsArgs),
    /// Writes a plugin project that builds and passes `postwire plugin test` as it is: the
    /// source, the WIT package, a sample event and a README with the build commands.
    ///
    /// Example: postwire plugin new tagger --lang rust   (or python, js, c)
    New(crate::plugin::NewArgs),
    /// Runs a candidate version over the tenant's last stored mails (raw mail in object
    /// storage) without delivering anything, and shows per mail what it changes in the
    /// active chain's payload. Through the admin API (token in POSTWIRE_TOKEN).
    ///
    /// Example: postwire plugin try --tenant acme --file redact.wasm --last 5
    Try(crate::plugin::TryArgs),
}

#[derive(clap::Args)]
pub struct DlqFilter {
    /// Only this tenant's dead letters.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only those that failed since this time (RFC 3339) or age (`2h`, `3d`).
    #[arg(long)]
    pub since: Option<String>,
    /// One delivery id, mail id or stream sequence number.
    #[arg(long)]
    pub id: Option<String>,
    #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
    pub config: PathBuf,
}

#[derive(Subcommand)]
pub enum DlqCommand {
    /// Lists dead letters.
    ///
    /// Example: postwire dlq list --tenant acme --since 2h
    List {
        #[command(flatten)]
        filter: DlqFilter,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Shows dead letters in full, payload included.
    ///
    /// Example: postwire dlq show msg_1ba951f173e87ac344486264e791dea0
    Show {
        /// A delivery id, mail id or stream sequence number.
        id: String,
        #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
        config: PathBuf,
    },
    /// Sends dead letters again, with the same webhook-id.
    ///
    /// Example: postwire dlq replay --tenant acme --since 1d
    Replay {
        #[command(flatten)]
        filter: DlqFilter,
    },
}

#[derive(Subcommand)]
pub enum DeliveriesCommand {
    /// Every delivery attempt of one mail: time, status, duration, error.
    ///
    /// Example: postwire deliveries show 01a20951-c5e9-73cc-8a02-b68605f36b85
    Show {
        mail_id: String,
        #[arg(long)]
        json: bool,
        #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
        config: PathBuf,
    },
    /// Sends a delivery again through the admin API: a new attempt with the same webhook-id
    /// and a fresh signature (from the DLQ, or from the payload kept for
    /// payload_retention_days). Token from POSTWIRE_TOKEN.
    ///
    /// Example: postwire deliveries resend msg_3f2a…
    Resend {
        delivery_id: String,
        #[command(flatten)]
        api: crate::client::ApiArgs,
    },
    /// Sends again every failed delivery of an endpoint since a time (admin API).
    ///
    /// Example: postwire deliveries recover acme main --since 6h
    Recover {
        tenant: String,
        endpoint: String,
        /// RFC 3339 time or an age like 6h.
        #[arg(long)]
        since: String,
        #[command(flatten)]
        api: crate::client::ApiArgs,
    },
}

#[derive(Subcommand)]
pub enum EndpointsCommand {
    /// Re-enables an endpoint disabled after a 410.
    ///
    /// Example: postwire endpoints enable acme main
    Enable {
        tenant: String,
        endpoint: String,
        #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
        config: PathBuf,
    },
    /// Sends a signed test event (a fixed example payload marked "test": true) to an
    /// endpoint through the admin API and prints the receiver's answer and timing.
    ///
    /// Example: postwire endpoints test acme sink
    Test {
        tenant: String,
        endpoint: String,
        #[command(flatten)]
        api: crate::client::ApiArgs,
    },
    /// Says whether an endpoint is enabled.
    ///
    /// Example: postwire endpoints status acme main
    Status {
        tenant: String,
        endpoint: String,
        #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum QuarantineCommand {
    /// Lists quarantined mail: sequence, tenant, mail id, time, sender, reason.
    ///
    /// Example: postwire quarantine list --config postwire.toml --tenant acme
    List {
        #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
        config: PathBuf,
        /// Only this tenant's mail.
        #[arg(long)]
        tenant: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Releases quarantined mail (by sequence number) for delivery with its verdicts.
    ///
    /// Example: postwire quarantine release --config postwire.toml 12 13
    Release {
        #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
        config: PathBuf,
        #[arg(required = true)]
        seq: Vec<u64>,
    },
}

#[derive(Subcommand)]
pub enum StorageCommand {
    /// Deletes raw messages older than storage.raw_retention_days (or --before), and
    /// uploads left in _incoming/ for more than a day. Attachments are kept. The process
    /// worker runs the same sweep every storage.sweep_interval_secs.
    ///
    /// Example: postwire storage sweep --config postwire.toml --before 2026-01-01T00:00:00Z
    Sweep {
        #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
        config: PathBuf,
        /// Delete raw messages last modified before this time (RFC 3339) instead.
        #[arg(long)]
        before: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validates a config file; exit code 2 and the bad key's path when it is wrong.
    ///
    /// Example: postwire config check --config postwire.toml
    Check {
        #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
        config: PathBuf,
    },
}
