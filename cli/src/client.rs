//! `postwire tenants …` and `postwire api …`: the admin API from the command line, so
//! whatever the dashboard does can be scripted. The token comes from `POSTWIRE_TOKEN`
//! (or `POSTWIRE_ADMIN_TOKEN`), the address from `--api` / `POSTWIRE_API`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::Value;

use postwire_admin::client::{Client, ClientError, enc};
use postwire_admin::client_body::{self, RouteArgs};

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
    ///
    /// Routes are tried by priority (lower first), then in list order; the first matching
    /// route ends the search unless it has --no-stop. A route that an earlier route always
    /// takes first is refused: put it --before that route or give it a lower --priority.
    ///
    /// Example: postwire tenants route acme sales --recipients 'sales@acme.test' --endpoints sink --before catchall
    ///
    /// Example: postwire tenants route acme invoices --recipients '/^inv-[0-9]+@acme\.test$/' --header 'Subject:(?i)invoice' --verdict dmarc=pass --endpoints main --priority -10
    Route {
        tenant: String,
        route: String,
        /// Patterns: user@domain, sales-*@domain, *@domain, *, /regex/ (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        recipients: Vec<String>,
        #[arg(long, value_delimiter = ',', required = true)]
        endpoints: Vec<String>,
        /// A header condition, `Name:regex` (repeatable; all must hold).
        #[arg(long = "header", value_name = "NAME:REGEX")]
        headers: Vec<String>,
        /// An accepted verdict, `spf|dkim|dmarc=result` (repeatable).
        #[arg(long = "verdict", value_name = "CHECK=RESULT")]
        verdicts: Vec<String>,
        /// Lower is tried first (default 0, or the priority of --before's route).
        #[arg(long, allow_hyphen_values = true)]
        priority: Option<i32>,
        /// Put the route just before this one.
        #[arg(long, value_name = "ROUTE")]
        before: Option<String>,
        /// Let later routes match too (fan-out) instead of ending the search here.
        #[arg(long)]
        no_stop: bool,
    },
    /// Lists a tenant's routes in the order they are tried.
    ///
    /// Example: postwire tenants routes acme
    Routes {
        tenant: String,
        #[arg(long)]
        json: bool,
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

pub(crate) fn print(v: &Value) {
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
                    println!("{}", client_body::tenant_row(t));
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
            let body = client_body::tenant_body(&text, &file.display().to_string())?;
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
        TenantsCommand::Routes { tenant, json } => {
            let v = c
                .call(
                    "GET",
                    &format!("/api/v1/tenants/{}/routes", enc(&tenant)),
                    None,
                )
                .await?;
            if json {
                print(&v);
            } else {
                for r in v["routes"].as_array().into_iter().flatten() {
                    println!("{}", client_body::route_row(r));
                }
            }
        }
        TenantsCommand::Route {
            tenant,
            route,
            recipients,
            endpoints,
            headers,
            verdicts,
            priority,
            before,
            no_stop,
        } => {
            let body = client_body::route_body(RouteArgs {
                recipients,
                endpoints,
                headers,
                verdicts,
                priority,
                before,
                no_stop,
            })?;
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
    let body = data.as_deref().map(client_body::data_body).transpose()?;
    let c = client(&args)?;
    let v = c.call(&method, &path, body).await?;
    if !v.is_null() {
        print(&v);
    }
    Ok(())
}
