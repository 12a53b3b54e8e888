//! Deliveries and their attempts, read back from the audit stream (`audit.<tenant>.attempt.*`,
//! and the first attempts a mail's `received` record carries)
//! and the dead-letter stream, each with the summary of its mail (the `received` record:
//! sender, recipients, subject, …) so a mail can be found by address or subject; the
//! payload from the DLQ or, while the tenant keeps it, from `PAYLOADS`.

use std::collections::HashMap;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use postwire_core::bus;
use postwire_stages::deliver::audit;
use postwire_stages::deliver::scan;
use postwire_stages::held::{dlq, payloads};
use postwire_stages::prepare::summary::MailSummary;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::problem::{ApiResult, P, Q};
use crate::search::{self, Search};
use crate::{Api, Caller, Problem, Scope};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    pub(crate) attempt: u32,
    /// `delivered`, `failed` (retried or gave up), `refused` (permanent) or `skipped`.
    pub(crate) result: String,
    /// The HTTP status, when the endpoint answered.
    pub(crate) status: Option<u16>,
    pub(crate) error: Option<String>,
    pub(crate) duration_ms: u64,
    pub(crate) at: String,
}

/// One delivery (a mail to one endpoint of one route) and every attempt at it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub(crate) delivery_id: String,
    pub(crate) mail_id: String,
    pub(crate) tenant: String,
    pub(crate) route: String,
    pub(crate) endpoint: String,
    /// `delivered`, `retrying` (more attempts to come), `dead` (in the DLQ) or `refused`.
    pub(crate) status: String,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) last_at: String,
    /// What the mail is: sender, recipients, From, subject, size, attachments, verdicts,
    /// routes (absent when its record is older than the period read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mail: Option<MailSummary>,
    /// Its sequence in the DLQ, when it is there (replay it with this).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dlq_seq: Option<u64>,
    /// The JSON body, while postwire still holds it (in the DLQ, or kept for
    /// `payload_retention_days`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub(crate) payload: Option<Value>,
    /// The delivery's headers as held with it (never signatures or secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub(crate) headers: Option<Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    deliveries: Vec<Delivery>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    tenant: Option<String>,
    /// `delivered`, `retrying`, `dead` or `refused`.
    status: Option<String>,
    /// RFC 3339 time or an age like `2h` (default `24h`).
    since: Option<String>,
    /// RFC 3339 time or an age.
    until: Option<String>,
    mail_id: Option<String>,
    /// A delivery id (the `webhook-id` a receiver saw).
    delivery_id: Option<String>,
    /// Part of an address: envelope sender, a recipient or From (case-insensitive).
    address: Option<String>,
    /// Part of the subject (case-insensitive).
    subject: Option<String>,
    /// One endpoint's deliveries.
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    endpoint: Option<String>,
    /// Any of: part of an address or the subject, a mail id, a delivery id (the search box).
    q: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    limit: Option<usize>,
}

pub fn time_arg(name: &str, text: &str) -> ApiResult<OffsetDateTime> {
    postwire_core::since::parse(text).map_err(|_| {
        Problem::bad_request(format!(
            "{name}={text:?}: give a time like 2026-11-23T10:00:00Z or an age like 2h"
        ))
    })
}

fn fmt(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The dead letters held now, of the scope's tenants.
pub async fn held(a: &Api, scope: &Scope) -> ApiResult<Vec<dlq::DeadLetter>> {
    let f = dlq::Filter {
        tenant: scope.single().map(str::to_string),
        ..Default::default()
    };
    let mut all = dlq::list(&a.js, &f).await.map_err(Problem::unavailable)?;
    all.retain(|d| scope.has(&d.tenant));
    Ok(all)
}

/// Reads the attempt records of the scope since `since` and folds them into deliveries.
pub(crate) async fn collect(
    a: &Api,
    scope: &Scope,
    mail_id: Option<&str>,
    since: OffsetDateTime,
) -> ApiResult<Vec<Delivery>> {
    let subject = audit::filter(scope.single(), mail_id);
    let records = scan::read(&a.js, bus::STREAM_AUDIT, &subject, Some(since))
        .await
        .map_err(Problem::unavailable)?;
    let summaries = search::summaries(a, scope, mail_id, since).await?;
    let dead = held(a, scope).await?;
    let dead: HashMap<String, &dlq::DeadLetter> =
        dead.iter().map(|d| (d.delivery_id.clone(), d)).collect();
    let mut order: Vec<String> = Vec::new();
    let mut by_id: HashMap<String, Delivery> = HashMap::new();
    for s in records {
        let tenant = s.subject.split('.').nth(1).unwrap_or_default().to_string();
        if !scope.has(&tenant) {
            continue;
        }
        for r in audit::attempts_in(&s.subject, &s.payload) {
            let d = by_id.entry(r.delivery_id.clone()).or_insert_with(|| {
                order.push(r.delivery_id.clone());
                Delivery {
                    delivery_id: r.delivery_id.clone(),
                    mail_id: r.mail_id.clone(),
                    tenant: tenant.clone(),
                    route: r.route.clone(),
                    endpoint: r.endpoint.clone(),
                    status: String::new(),
                    attempts: Vec::new(),
                    last_at: String::new(),
                    mail: summaries.get(&r.mail_id).cloned(),
                    dlq_seq: None,
                    payload: None,
                    headers: None,
                }
            });
            if audit::made(&r.at, u32::MAX) > audit::made(&d.last_at, u32::MAX) {
                d.last_at = r.at.clone();
            }
            d.attempts.push(Attempt {
                attempt: r.attempt,
                result: r.result,
                status: r.status,
                error: r.error,
                duration_ms: r.duration_ms,
                at: r.at,
            });
        }
    }
    let mut out: Vec<Delivery> = order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .map(|mut d| {
            d.attempts.sort_by_key(|x| audit::made(&x.at, x.attempt));
            let last = d.attempts.last().map(|x| x.result.as_str()).unwrap_or("");
            d.status = match (dead.get(&d.delivery_id), last) {
                (Some(dl), _) => {
                    d.dlq_seq = Some(dl.seq);
                    "dead"
                }
                (None, "delivered") => "delivered",
                (None, "refused") => "refused",
                _ => "retrying",
            }
            .to_string();
            d
        })
        .collect();
    out.sort_by(|x, y| y.last_at.cmp(&x.last_at));
    Ok(out)
}

/// Deliveries with every attempt and their mail's summary, newest first; filtered by
/// status, time, ids, address, subject or the search box's text.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "deliveries", params(ListQuery),
    responses((status = 200, body = DeliveryList), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn list_deliveries(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    Q(q): Q<ListQuery>,
) -> ApiResult<Json<DeliveryList>> {
    let scope = c.scope(q.tenant.as_deref())?;
    let since = time_arg("since", q.since.as_deref().unwrap_or("24h"))?;
    let until = q
        .until
        .as_deref()
        .map(|u| time_arg("until", u))
        .transpose()?;
    if let Some(s) = &q.status
        && !["delivered", "retrying", "dead", "refused"].contains(&s.as_str())
    {
        return Err(Problem::bad_request(format!(
            "status={s:?}: one of delivered, retrying, dead, refused"
        )));
    }
    if q.mail_id.as_deref().is_some_and(|m| !token_ok(m)) {
        return Err(Problem::bad_request("mail_id is not a mail id"));
    }
    let search = Search::new([
        ("delivery_id", &q.delivery_id),
        ("address", &q.address),
        ("subject", &q.subject),
        ("endpoint", &q.endpoint),
        ("q", &q.q),
    ])?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut all = collect(&a, &scope, q.mail_id.as_deref(), since).await?;
    all.retain(|d| {
        q.status.as_deref().is_none_or(|s| d.status == s)
            && until.is_none_or(|u| d.last_at.as_str() <= fmt(u).as_str())
            && search.matches(d)
    });
    all.truncate(limit);
    Ok(Json(DeliveryList { deliveries: all }))
}

/// A NATS subject token we accept from a client (ids, names).
pub fn token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One delivery, with its payload while postwire holds it (in the DLQ, with its headers, or
/// kept for the tenant's `payload_retention_days`).
#[utoipa::path(get, path = "/api/v1/deliveries/{delivery_id}", tag = "deliveries",
    params(("delivery_id" = String, Path)),
    responses((status = 200, body = Delivery), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn show_delivery(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    P(id): P<String>,
) -> ApiResult<Json<Delivery>> {
    let scope = c.scope(None)?;
    let since = OffsetDateTime::now_utc() - time::Duration::days(30);
    let mut d = collect(&a, &scope, None, since)
        .await?
        .into_iter()
        .find(|d| d.delivery_id == id)
        .ok_or_else(|| Problem::not_found(format!("no delivery {id:?}")))?;
    if let Some(seq) = d.dlq_seq {
        let f = dlq::Filter {
            id: Some(seq.to_string()),
            tenant: Some(d.tenant.clone()),
            ..Default::default()
        };
        if let Some(dl) = dlq::list(&a.js, &f)
            .await
            .map_err(Problem::unavailable)?
            .into_iter()
            .next()
        {
            d.payload = Some(dl.payload_json());
            d.headers = Some(held_headers(&dl.stored.headers));
        }
    }
    if d.payload.is_none()
        && let Some(k) = payloads::get(&a.js, &d.tenant, &d.delivery_id)
            .await
            .map_err(Problem::unavailable)?
    {
        d.payload = Some(k.payload_json());
    }
    Ok(Json(d))
}

/// The headers kept with a held message, as JSON (postwire's own; no secrets among them).
pub fn held_headers(h: &async_nats::HeaderMap) -> Value {
    let mut m = serde_json::Map::new();
    for (name, values) in h.iter() {
        let v: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
        m.insert(name.to_string(), Value::String(v.join(", ")));
    }
    Value::Object(m)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MailDeliveries {
    mail_id: String,
    deliveries: Vec<Delivery>,
}

/// Every delivery of one mail.
#[utoipa::path(get, path = "/api/v1/mails/{mail_id}", tag = "deliveries",
    params(("mail_id" = String, Path)),
    responses((status = 200, body = MailDeliveries), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn mail_deliveries(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    P(mail_id): P<String>,
) -> ApiResult<Json<MailDeliveries>> {
    if !token_ok(&mail_id) {
        return Err(Problem::bad_request("not a mail id"));
    }
    let scope = c.scope(None)?;
    let since = OffsetDateTime::now_utc() - time::Duration::days(30);
    let deliveries = collect(&a, &scope, Some(&mail_id), since).await?;
    Ok(Json(MailDeliveries {
        mail_id,
        deliveries,
    }))
}
