//! `postwire tenants …` and `postwire api …`: the admin API from the command line, so
//! whatever the dashboard does can be scripted. The token comes from `POSTWIRE_TOKEN`
//! (or `POSTWIRE_ADMIN_TOKEN`), the address from `--api` / `POSTWIRE_API`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::Value;

use postwire_admin::client::{Client, ClientError, enc};

use crate::tools::Failure;

#[derive(clap::Args, Clone)]
pub struct ApiArgs {
    /// The admin API's address.
    #[arg(
        long,
        env = "POSTWIRE_API",
        default_value = "http://127.0.0.1:8026",
        global = true
    )]
    pub api: String,
}

#[derive(Subcommand)]
pub enum TenantsCommand {
    /// The tenants the token sees.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One tenant's configuration as JSON (secrets hidden).
    Get { tenant: String },
    /// Creates or replaces a tenant from a file: JSON, or TOML with the fields of
    /// `[tenants.<name>]` at the top level. Validated before it is written.
    ///
    /// Example: postwire tenants put acme --file acme.toml
    Put {
        tenant: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Deletes a tenant (global token).
    Delete { tenant: String },
    /// Adds or replaces a route.
    ///
    /// Example: postwire tenants route acme support --recipients 'support@acme.test' --endpoints main
    Route {
        tenant: String,
        route: String,
        #[arg(long, value_delimiter = ',', required = true)]
        recipients: Vec<String>,
        #[arg(long, value_delimiter = ',', required = true)]
        endpoints: Vec<String>,
    },
}

pub(crate) fn client(args: &ApiArgs) -> Result<Client, Failure> {
    let token = std::env::var("POSTWIRE_TOKEN")
        .or_else(|_| std::env::var("POSTWIRE_ADMIN_TOKEN"))
        .map_err(|_| Failure::Usage("set POSTWIRE_TOKEN to an admin API token".into()))?;
    Client::new(&args.api, token).map_err(|e| Failure::Usage(e.to_string()))
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        match e {
            ClientError::Usage(m) => Failure::Usage(m),
            e => Failure::Failed(e.to_string()),
        }
    }
}

fn print(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub async fn tenants(args: ApiArgs, cmd: TenantsCommand) -> Result<(), Failure> {
    let c = client(&args)?;
    match cmd {
        TenantsCommand::List { json } => {
            let v = c.call("GET", "/api/v1/tenants", None).await?;
            if json {
                print(&v);
            } else {
                for t in v["tenants"].as_array().into_iter().flatten() {
                    println!(
                        "{}\t{}\troutes {}\tendpoints {}\t{} by {}",
                        t["name"].as_str().unwrap_or(""),
                        t["domains"]
                            .as_array()
                            .map(|d| d
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(","))
                            .unwrap_or_default(),
                        t["routes"],
                        t["endpoints"],
                        t["source"].as_str().unwrap_or(""),
                        t["updated_by"].as_str().unwrap_or(""),
                    );
                }
            }
        }
        TenantsCommand::Get { tenant } => print(
            &c.call("GET", &format!("/api/v1/tenants/{}", enc(&tenant)), None)
                .await?,
        ),
        TenantsCommand::Put { tenant, file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
            let body: Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(_) => toml::from_str::<toml::Value>(&text)
                    .map_err(|e| {
                        Failure::Usage(format!("{} is neither JSON nor TOML: {e}", file.display()))
                    })
                    .and_then(|t| {
                        serde_json::to_value(t).map_err(|e| Failure::Usage(e.to_string()))
                    })?,
            };
            let v = c
                .call(
                    "PUT",
                    &format!("/api/v1/tenants/{}", enc(&tenant)),
                    Some(body),
                )
                .await?;
            eprintln!("tenant {tenant} is at revision {}", v["revision"]);
        }
        TenantsCommand::Delete { tenant } => {
            c.call("DELETE", &format!("/api/v1/tenants/{}", enc(&tenant)), None)
                .await?;
            eprintln!("tenant {tenant} deleted");
        }
        TenantsCommand::Route {
            tenant,
            route,
            recipients,
            endpoints,
        } => {
            let body = serde_json::json!({"recipients": recipients, "endpoints": endpoints});
            let v = c
                .call(
                    "PUT",
                    &format!("/api/v1/tenants/{}/routes/{}", enc(&tenant), enc(&route)),
                    Some(body),
                )
                .await?;
            eprintln!(
                "route {route} saved; tenant {tenant} is at revision {}",
                v["revision"]
            );
        }
    }
    Ok(())
}

/// `postwire api METHOD PATH [--data JSON|@file]`: any API call; prints the JSON answer.
pub async fn raw(
    args: ApiArgs,
    method: String,
    path: String,
    data: Option<String>,
) -> Result<(), Failure> {
    if !path.starts_with('/') {
        return Err(Failure::Usage(format!(
            "{path:?}: give a path like /api/v1/dlq"
        )));
    }
    let body = match data {
        None => None,
        Some(d) => {
            let text = match d.strip_prefix('@') {
                Some(f) => std::fs::read_to_string(f)
                    .map_err(|e| Failure::Usage(format!("cannot read {f}: {e}")))?,
                None => d,
            };
            Some(
                serde_json::from_str(&text)
                    .map_err(|e| Failure::Usage(format!("--data is not JSON: {e}")))?,
            )
        }
    };
    let c = client(&args)?;
    let v = c.call(&method, &path, body).await?;
    if !v.is_null() {
        print(&v);
    }
    Ok(())
}
