//! Sending a delivery again: `POST /api/v1/deliveries/{id}/resend` (one delivery) and
//! `POST /api/v1/tenants/{t}/endpoints/{e}/recover` (every failed delivery of an endpoint
//! since a time, as Svix's recover). A delivery still in the DLQ is replayed from there (the
//! dead letter goes); any other is sent again from its kept payload (`PAYLOADS`). Either way
//! it is a new attempt with the same `webhook-id`, signed anew. Each is an audit record.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use postwire_core::bus;
use postwire_stages::held::{dlq, payloads};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::deliveries::{collect, time_arg, token_ok};
use crate::problem::{ApiResult, Body, P};
use crate::{Api, Caller, Problem, Scope};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Resent {
    /// The delivery id: the `webhook-id` the receiver sees again.
    delivery_id: String,
    tenant: String,
    /// `dlq` (replayed from the dead-letter queue) or `payload` (sent from the kept payload).
    from: String,
}

/// Sends one delivery of `tenant` again: from the DLQ when it is there, else from its kept
/// payload (`kept`, or looked up). `None`: neither holds it any more.
async fn resend_one(
    a: &Api,
    tenant: &str,
    id: &str,
    kept: Option<payloads::Kept>,
) -> ApiResult<Option<Resent>> {
    let f = dlq::Filter {
        tenant: Some(tenant.to_string()),
        id: Some(id.to_string()),
        ..Default::default()
    };
    let dead = dlq::list(&a.js, &f)
        .await
        .map_err(Problem::unavailable)?
        .into_iter()
        .find(|d| d.delivery_id == id && d.kind == dlq::Kind::Delivery);
    let from = if let Some(d) = dead {
        dlq::replay(&a.js, &d).await.map_err(Problem::unavailable)?;
        "dlq"
    } else {
        let kept = match kept {
            Some(k) => Some(k),
            None => payloads::get(&a.js, tenant, id)
                .await
                .map_err(Problem::unavailable)?,
        };
        let Some(k) = kept else {
            return Ok(None);
        };
        let nonce = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        payloads::resend(&a.js, &k, &nonce.to_string())
            .await
            .map_err(Problem::unavailable)?;
        "payload"
    };
    Ok(Some(Resent {
        delivery_id: id.to_string(),
        tenant: tenant.to_string(),
        from: from.into(),
    }))
}

/// The tenant of a delivery the caller sees: where its payload is kept, or else where it is
/// dead-lettered; with the kept payload when there is one.
async fn find_tenant(
    a: &Api,
    c: &Caller,
    id: &str,
) -> ApiResult<Option<(String, Option<payloads::Kept>)>> {
    let scope = c.scope(None)?;
    let tenants: Vec<String> = match &scope {
        Scope::All => a.live.get().cfg.tenants.keys().cloned().collect(),
        Scope::One(t) => vec![t.clone()],
        Scope::Some(ts) => ts.clone(),
    };
    for t in tenants {
        if let Some(k) = payloads::get(&a.js, &t, id)
            .await
            .map_err(Problem::unavailable)?
        {
            return Ok(Some((t, Some(k))));
        }
    }
    // Not kept (retention 0 or expired), or a tenant no longer configured: the DLQ may hold it.
    let f = dlq::Filter {
        id: Some(id.to_string()),
        tenant: scope.single().map(str::to_string),
        ..Default::default()
    };
    Ok(dlq::list(&a.js, &f)
        .await
        .map_err(Problem::unavailable)?
        .into_iter()
        .find(|d| d.delivery_id == id && scope.has(&d.tenant))
        .map(|d| (d.tenant, None)))
}

/// Notes an operator action in the tenant's audit trail (shown by `GET /api/v1/audit`).
pub async fn record_action(a: &Api, c: &Caller, tenant: &str, change: &str, detail: Value) {
    let record = json!({
        "at": postwire_core::envelope::now_rfc3339(),
        "by": c.name,
        "tenant": tenant,
        "change": change,
        "detail": detail,
    });
    let body = serde_json::to_vec(&record).unwrap_or_default();
    let done = match a
        .js
        .publish(bus::subject_audit(tenant, "config"), body.into())
        .await
    {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = done {
        tracing::warn!(error = %e, change, "Could not write the audit record of an operator action.");
    }
}

/// Sends a delivery again: a new attempt with the same `webhook-id` and a fresh signature.
#[utoipa::path(post, path = "/api/v1/deliveries/{delivery_id}/resend", tag = "deliveries",
    params(("delivery_id" = String, Path)),
    responses((status = 202, body = Resent), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 503, body = Problem)))]
pub async fn resend(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    P(id): P<String>,
) -> ApiResult<(StatusCode, Json<Resent>)> {
    if !token_ok(&id) {
        return Err(Problem::bad_request("not a delivery id"));
    }
    if let Some((t, kept)) = find_tenant(&a, &c, &id).await?
        && let Some(r) = resend_one(&a, &t, &id, kept).await?
    {
        record_action(
            &a,
            &c,
            &t,
            &format!("resend delivery {id}"),
            json!({"from": r.from}),
        )
        .await;
        tracing::info!(by = %c.name, tenant = %t, delivery_id = %id, from = %r.from, "A delivery was sent again through the admin API.");
        return Ok((StatusCode::ACCEPTED, Json(r)));
    }
    Err(Problem::not_found(format!(
        "no payload of delivery {id:?} is kept any more (payload_retention_days) and it is not in the DLQ"
    )))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverBody {
    /// RFC 3339 time or an age like `2h`: deliveries whose last attempt is this recent.
    since: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Recovered {
    /// The deliveries sent again.
    resent: Vec<Resent>,
    /// `{delivery_id, error}` for those that could not be.
    #[schema(value_type = Vec<Object>)]
    failed: Vec<Value>,
}

/// Sends again every failed delivery (dead or refused) of an endpoint since a time.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}/recover", tag = "operations",
    params(("tenant" = String, Path), ("endpoint" = String, Path)), request_body = RecoverBody,
    responses((status = 200, body = Recovered), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn recover(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    P((tenant, endpoint)): P<(String, String)>,
    Body(body): Body<RecoverBody>,
) -> ApiResult<Json<Recovered>> {
    c.check(&tenant)?;
    let known = a
        .live
        .get()
        .cfg
        .tenants
        .get(&tenant)
        .is_some_and(|t| t.endpoints.contains_key(&endpoint));
    if !known {
        return Err(Problem::not_found(format!(
            "no endpoint {endpoint:?} in {tenant}"
        )));
    }
    let since = time_arg("since", &body.since)?;
    let scope = Scope::One(tenant.clone());
    let failed_ones: Vec<String> = collect(&a, &scope, None, since)
        .await?
        .into_iter()
        .filter(|d| d.endpoint == endpoint && (d.status == "dead" || d.status == "refused"))
        .map(|d| d.delivery_id)
        .collect();
    let mut resent = Vec::new();
    let mut failed = Vec::new();
    for id in failed_ones {
        match resend_one(&a, &tenant, &id, None).await {
            Ok(Some(r)) => resent.push(r),
            Ok(None) => failed.push(json!({"delivery_id": id, "error": "payload no longer kept"})),
            Err(p) => failed.push(json!({"delivery_id": id, "error": p.detail})),
        }
    }
    let ids: Vec<&str> = resent.iter().map(|r| r.delivery_id.as_str()).collect();
    record_action(
        &a,
        &c,
        &tenant,
        &format!("recover endpoint {endpoint} since {}", body.since),
        json!({"resent": ids, "failed": failed.len()}),
    )
    .await;
    tracing::info!(by = %c.name, tenant = %tenant, endpoint = %endpoint, resent = resent.len(), failed = failed.len(), "An endpoint's failed deliveries were sent again through the admin API.");
    Ok(Json(Recovered { resent, failed }))
}
