//! `postwire`: one binary, a subcommand per role. `main` parses arguments, sets up logging
//! and hands over to a command; the roles themselves live in the library crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod auth;
mod client;
mod keys;
mod operator;
mod ops;
mod plugin;
mod run;
mod tools;
mod verify;

use postwire_node::Roles;

use crate::args::*;

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
    /// Refuses to start (exit code 2) unless NATS syncs every write before acknowledging it
    /// (`sync_interval: always`, read from nats.monitor_url), or nats.allow_unsynced is set.
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
    /// Is an accepted mail on disk? Prints each NATS server's sync policy and storage room,
    /// and the storage, replicas and persistence of every postwire stream.
    ///
    /// Exit code 0 when the deployment is durable, 1 when it is not, 2 on a config error.
    ///
    /// Example: postwire doctor --config /etc/postwire/postwire.toml
    Doctor {
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
    /// Object storage upkeep: the raw-mail retention sweep.
    Storage {
        #[command(subcommand)]
        command: StorageCommand,
    },
    /// Mail held back by a tenant's policy (`auth.policy`, `infected_attachments`).
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Key pairs for signing: generate, publish in DNS (dns-record), rotate, JWKS.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Verifies captured webhook requests (any scheme postwire signs with).
    ///
    /// Exit code 0 when every request verifies, 1 when one does not, 2 on a usage error.
    /// Public keys come from --public-key or, under --allow-domain, from DNS by keyid.
    ///
    /// Example: postwire verify request.json --allow-domain acme.example
    ///
    /// Example: postwire verify request.http --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    Verify(verify::VerifyArgs),
    /// Signs a request with `[[signing]]` entries from a TOML file and prints it as a JSON
    /// capture for `postwire verify` (debugging and tests).
    ///
    /// Example: postwire sign-request --config signing.toml --url https://hooks.example/in --body-file body.json
    #[command(hide = true)]
    SignRequest(verify::SignRequestArgs),
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The dead-letter stream: deliveries that gave up.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// The delivery audit trail.
    Deliveries {
        #[command(subcommand)]
        command: DeliveriesCommand,
    },
    /// Endpoint state (disabled after a 410 Gone).
    Endpoints {
        #[command(subcommand)]
        command: EndpointsCommand,
    },
    /// The admin HTTP API role: the API (docs/api.md), the dashboard at /ui, the JWKS.
    ///
    /// The token comes from the variable named by admin.token_env (POSTWIRE_ADMIN_TOKEN).
    ///
    /// Example: POSTWIRE_ADMIN_TOKEN=$(openssl rand -hex 24) postwire admin --config postwire.toml
    Admin {
        #[arg(long, short, env = "POSTWIRE_CONFIG", default_value = "postwire.toml")]
        config: PathBuf,
    },
    /// Tenants, domains, routes and endpoints through the admin API (live configuration).
    ///
    /// Token from POSTWIRE_TOKEN. Example: postwire tenants list --api http://127.0.0.1:8026
    Tenants {
        #[command(flatten)]
        api: client::ApiArgs,
        #[command(subcommand)]
        command: client::TenantsCommand,
    },
    /// Any admin API call (docs/api.md); prints the JSON answer.
    ///
    /// Token from POSTWIRE_TOKEN. Examples:
    ///   postwire api GET /api/v1/deliveries?status=dead
    ///   postwire api POST /api/v1/dlq/replay --data '{"tenant": "acme", "since": "2h"}'
    Api {
        #[command(flatten)]
        api: client::ApiArgs,
        /// GET, PUT, POST or DELETE.
        method: String,
        /// The path, e.g. /api/v1/tenants.
        path: String,
        /// The JSON body, or @file.json.
        #[arg(long)]
        data: Option<String>,
    },
    /// Plugin tools for plugin authors.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

fn main() -> ExitCode {
    postwire_node::alloc::fix_mmap_threshold();
    let cli = Cli::parse();
    let role = match &cli.command {
        Command::Dev { .. } => "dev",
        Command::Ingest { .. } => "ingest",
        Command::Worker { .. } => "worker",
        Command::Deliver { .. } => "deliver",
        Command::Sink { .. } => "sink",
        Command::Admin { .. } => "admin",
        _ => "cli",
    };
    // Before the runtime starts: the OTLP exporter's blocking HTTP client must not be built
    // inside it. Dropped after the runtime, flushing the last spans.
    let _telemetry = postwire_core::telemetry::init(role, "info,async_nats=warn");
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
            } => run::dev(&config, (!no_sink).then_some(sink_listen)).await,
            Command::Ingest { config } => {
                run::role(&config, "postwire-ingest", Roles::INGEST).await
            }
            Command::Worker { config } => {
                run::role(&config, "postwire-worker", Roles::WORKER).await
            }
            Command::Deliver { config } => {
                run::role(&config, "postwire-deliver", Roles::DELIVER).await
            }
            Command::Doctor { config } => run::doctor(&config).await,
            Command::Sink { listen, secrets } => run::sink(&listen, &secrets).await,
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
            Command::Quarantine { command } => ops::quarantine(command).await,
            Command::Storage {
                command: StorageCommand::Sweep { config, before },
            } => ops::storage_sweep(&config, before.as_deref()).await,
            Command::Dlq { command } => ops::dlq(command).await,
            Command::Deliveries { command } => operator::deliveries(command).await,
            Command::Endpoints { command } => ops::endpoints(command).await,
            Command::Admin { config } => run::role(&config, "postwire-admin", Roles::ADMIN).await,
            Command::Tenants { api, command } => client::tenants(api, command).await,
            Command::Api {
                api,
                method,
                path,
                data,
            } => client::raw(api, method, path, data).await,
            Command::Keys { command } => keys::command(command).await,
            Command::Verify(args) => verify::command(args).await,
            Command::SignRequest(args) => verify::sign_request(args),
            Command::Plugin {
                command: PluginCommand::Test(args),
            } => plugin::test(args).await,
            Command::Plugin {
                command: PluginCommand::Events(args),
            } => plugin::events(args).await,
            Command::Plugin {
                command: PluginCommand::New(args),
            } => plugin::new(args),
            Command::Plugin {
                command: PluginCommand::Try(args),
            } => plugin::try_plugin(args).await,
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
