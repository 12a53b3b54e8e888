//! `postwire`: one binary, a subcommand per role. `main` parses arguments, sets up logging
//! and hands over to a command; the roles themselves live in the library crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod auth;
mod inline;
mod quarantine;
mod roles;
mod shutdown;
mod sink;
mod tools;

/// Receive email over SMTP and deliver it as verified, signed JSON webhooks.
#[derive(Parser)]
#[command(name = "postwire", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything in one process for a laptop: SMTP ingest, workers and a local webhook sink.
    ///
    /// Needs a nats-server with JetStream (`make run` starts one).
    ///
    /// Example: postwire dev --config postwire.example.toml
    Dev {
        #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
        config: PathBuf,
        /// Address of the built-in webhook sink.
        #[arg(long, default_value = "127.0.0.1:8025")]
        sink_listen: String,
        /// Do not start the built-in sink (deliver to your own receiver).
        #[arg(long)]
        no_sink: bool,
    },
    /// The SMTP ingest role: accepts mail and publishes it to JetStream.
    ///
    /// Example: postwire ingest --config /etc/postwire/postwire.toml
    Ingest {
        #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
        config: PathBuf,
    },
    /// The process worker role: parses mail and prepares one delivery per endpoint.
    ///
    /// Example: postwire worker --config /etc/postwire/postwire.toml
    Worker {
        #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
        config: PathBuf,
    },
    /// The deliver worker role: signs and POSTs deliveries, with retries and a DLQ.
    ///
    /// Example: postwire deliver --config /etc/postwire/postwire.toml
    Deliver {
        #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
        config: PathBuf,
    },
    /// A local webhook receiver that verifies each signature and prints each delivery.
    ///
    /// Answers 204 to a valid delivery and 401 to a bad signature.
    ///
    /// Example: postwire sink --listen 127.0.0.1:8025 --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    Sink {
        #[arg(long, default_value = "127.0.0.1:8025")]
        listen: String,
        /// Standard Webhooks secret(s) to accept (`whsec_…`); repeat during a key rotation.
        #[arg(long = "secret", env = "POSTWIRE_SINK_SECRET", required = true)]
        secrets: Vec<String>,
    },
    /// Prints the payload a raw message would produce. No network.
    ///
    /// Example: postwire parse message.eml
    Parse {
        /// An RFC 5322 message file (`-` for standard input).
        file: PathBuf,
    },
    /// Prints the authentication verdicts (SPF, DKIM, DMARC, ARC, iprev) of a raw message.
    ///
    /// Uses the `[verify]` DNS settings of --config, or the system's resolver. Exit code 1
    /// when DMARC fails.
    ///
    /// Example: postwire auth message.eml --client-ip 192.0.2.1 --helo mx.example.com --mail-from a@example.com
    Auth {
        /// An RFC 5322 message file (`-` for standard input).
        file: PathBuf,
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Address of the SMTP client that sent the message.
        #[arg(long)]
        client_ip: String,
        /// The name the client gave in EHLO/HELO.
        #[arg(long)]
        helo: String,
        /// The MAIL FROM address (empty for `<>`).
        #[arg(long, default_value = "")]
        mail_from: String,
    },
    /// Mail held back by a tenant's authentication policy (`auth.policy`).
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum QuarantineCommand {
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
enum ConfigCommand {
    /// Validates a config file; exit code 2 and the bad key's path when it is wrong.
    ///
    /// Example: postwire config check --config postwire.toml
    Check {
        #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    postwire_core::telemetry::init_logging("info,async_nats=warn");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Dev {
                config,
                sink_listen,
                no_sink,
            } => roles::dev(&config, (!no_sink).then_some(sink_listen)).await,
            Command::Ingest { config } => roles::ingest(&config).await,
            Command::Worker { config } => roles::worker(&config).await,
            Command::Deliver { config } => roles::deliver(&config).await,
            Command::Sink { listen, secrets } => sink::command(&listen, &secrets).await,
            Command::Parse { file } => tools::parse(&file),
            Command::Config {
                command: ConfigCommand::Check { config },
            } => tools::config_check(&config),
            Command::Auth {
                file,
                config,
                client_ip,
                helo,
                mail_from,
            } => {
                auth::command(auth::Args {
                    file: &file,
                    config: config.as_deref(),
                    client_ip: &client_ip,
                    helo: &helo,
                    mail_from: &mail_from,
                })
                .await
            }
            Command::Quarantine {
                command:
                    QuarantineCommand::List {
                        config,
                        tenant,
                        json,
                    },
            } => quarantine::list(&config, tenant.as_deref(), json).await,
            Command::Quarantine {
                command: QuarantineCommand::Release { config, seq },
            } => quarantine::release(&config, &seq).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(tools::Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(tools::Failure::Failed(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
