//! The operator's admin API commands: `deliveries resend|recover` and `endpoints test` (the
//! dashboard's buttons, scriptable); `deliveries show` reads the bus directly (ops.rs).

use postwire_admin::client::enc;
use serde_json::json;

use crate::args::DeliveriesCommand;
use crate::client::{ApiArgs, client, print};
use crate::tools::Failure;

pub async fn deliveries(command: DeliveriesCommand) -> Result<(), Failure> {
    match command {
        DeliveriesCommand::Show {
            mail_id,
            json,
            config,
        } => crate::ops::deliveries_show(&config, mail_id, json).await,
        DeliveriesCommand::Resend { delivery_id, api } => {
            let c = client(&api)?;
            let path = format!("/api/v1/deliveries/{}/resend", enc(&delivery_id));
            let v = c.call("POST", &path, None).await?;
            eprintln!(
                "delivery {delivery_id} of {} queued again (from the {}); the receiver sees the same webhook-id",
                v["tenant"].as_str().unwrap_or(""),
                if v["from"] == "dlq" {
                    "DLQ"
                } else {
                    "kept payload"
                },
            );
            Ok(())
        }
        DeliveriesCommand::Recover {
            tenant,
            endpoint,
            since,
            api,
        } => {
            let c = client(&api)?;
            let path = format!(
                "/api/v1/tenants/{}/endpoints/{}/recover",
                enc(&tenant),
                enc(&endpoint)
            );
            let v = c.call("POST", &path, Some(json!({"since": since}))).await?;
            print(&v);
            let failed = v["failed"].as_array().map_or(0, Vec::len);
            if failed > 0 {
                return Err(Failure::Failed(format!(
                    "{failed} deliveries could not be sent again"
                )));
            }
            Ok(())
        }
    }
}

/// `postwire endpoints test TENANT ENDPOINT`: exit 0 when the receiver answered 2xx.
pub async fn endpoint_test(api: ApiArgs, tenant: String, endpoint: String) -> Result<(), Failure> {
    let c = client(&api)?;
    let path = format!(
        "/api/v1/tenants/{}/endpoints/{}/test",
        enc(&tenant),
        enc(&endpoint)
    );
    let v = c.call("POST", &path, None).await?;
    let status = v["status"]
        .as_u64()
        .map_or("no answer".to_string(), |s| format!("HTTP {s}"));
    println!(
        "{}: {status} in {} ms (webhook-id {}){}",
        v["result"].as_str().unwrap_or(""),
        v["duration_ms"],
        v["webhook_id"].as_str().unwrap_or(""),
        v["error"]
            .as_str()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    if v["result"] == "delivered" {
        Ok(())
    } else {
        Err(Failure::Failed(format!(
            "the endpoint did not accept the test event ({status})"
        )))
    }
}
