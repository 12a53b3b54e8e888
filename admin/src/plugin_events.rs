//! What tenants' plugins did to mail, from the audit stream: drops
//! (`audit.<tenant>.drop.<mail_id>`) and errors under either failure mode
//! (`audit.<tenant>.plugin.<mail_id>`: `fail-open` delivered untransformed), with the
//! plugins' output. Fail-closed errors are dead letters (`GET /api/v1/dlq`).

use axum::Extension;
use axum::Json;
use axum::extract::State;
use postwire_core::bus;
use postwire_stages::deliver::scan;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::deliveries::time_arg;
use crate::problem::{ApiResult, Q};
use crate::{Api, Caller, Problem};

/// The audit kinds the transform stage writes.
const KINDS: [&str; 2] = ["drop", "plugin"];

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PluginEventsQuery {
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    tenant: Option<String>,
    /// RFC 3339 time or an age (default `7d`).
    since: Option<String>,
    /// `drop` or `plugin` (a plugin error delivered fail-open); both when absent.
    kind: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PluginEvents {
    /// `{kind, tenant, route, mail_id, reason, error_kind, mode, output, at}`, oldest first.
    #[schema(value_type = Vec<Object>)]
    events: Vec<Value>,
}

/// Mail a plugin dropped, and plugin errors delivered untransformed (fail-open).
#[utoipa::path(get, path = "/api/v1/plugins/events", tag = "operations", params(PluginEventsQuery),
    responses((status = 200, body = PluginEvents), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn plugin_events(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    Q(q): Q<PluginEventsQuery>,
) -> ApiResult<Json<PluginEvents>> {
    let scope = c.scope(q.tenant.as_deref())?;
    let since = time_arg("since", q.since.as_deref().unwrap_or("7d"))?;
    let kinds: Vec<&str> = match q.kind.as_deref() {
        None => KINDS.to_vec(),
        Some(k) if KINDS.contains(&k) => vec![k],
        Some(k) => {
            return Err(Problem::bad_request(format!(
                "kind={k:?}: give drop or plugin"
            )));
        }
    };
    let tenant = scope.single().unwrap_or("*");
    let mut records = Vec::new();
    for kind in kinds {
        let subject = format!("audit.{tenant}.{kind}.>");
        records.extend(
            scan::read(&a.js, bus::STREAM_AUDIT, &subject, Some(since))
                .await
                .map_err(Problem::unavailable)?,
        );
    }
    records.sort_by_key(|s| s.seq);
    let events = records
        .iter()
        .filter(|s| scope.has(s.subject.split('.').nth(1).unwrap_or_default()))
        .filter_map(|s| serde_json::from_slice(&s.payload).ok())
        .collect();
    Ok(Json(PluginEvents { events }))
}
