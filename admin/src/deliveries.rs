//! Deliveries and their attempts, read back from the audit stream (`audit.<tenant>.attempt.*`)
//! and the dead-letter stream; the counts over time the dashboard charts.

use std::collections::HashMap;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use postwire_core::bus;
use postwire_stages::deliver::audit::AttemptRecord;
use postwire_stages::deliver::scan;
use postwire_stages::held::dlq;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::problem::{ApiResult, P, Q};
use crate::{Api, Caller, Problem, Scope};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    attempt: u32,
    /// `delivered`, `failed` (retried or gave up), `refused` (permanent) or `skipped`.
    result: String,
    /// The HTTP status, when the endpoint answered.
    status: Option<u16>,
    error: Option<String>,
    duration_ms: u64,
    at: String,
}

/// One delivery (a mail to one endpoint of one route) and every attempt at it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    delivery_id: String,
    mail_id: String,
    tenant: String,
    route: String,
    endpoint: String,
    /// `delivered`, `retrying` (more attempts to come), `dead` (in the DLQ) or `refused`.
    status: String,
    attempts: Vec<Attempt>,
    last_at: String,
    /// Its sequence in the DLQ, when it is there (replay it with this).
    #[serde(skip_serializing_if = "Option::is_none")]
    dlq_seq: Option<u64>,
    /// The JSON body, while postwire still holds it (in the DLQ).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    payload: Option<Value>,
    /// The delivery's headers as held with it (never signatures or secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    headers: Option<Value>,
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
async fn held(a: &Api, scope: &Scope) -> ApiResult<Vec<dlq::DeadLetter>> {
    let f = dlq::Filter {
        tenant: scope.single().map(str::to_string),
        ..Default::default()
    };
    let mut all = dlq::list(&a.js, &f).await.map_err(Problem::unavailable)?;
    all.retain(|d| scope.has(&d.tenant));
    Ok(all)
}

/// Reads the attempt records of the scope since `since` and folds them into deliveries.
async fn collect(
    a: &Api,
    scope: &Scope,
    mail_id: Option<&str>,
    since: OffsetDateTime,
) -> ApiResult<Vec<Delivery>> {
    let subject = format!(
        "audit.{}.attempt.{}",
        scope.single().unwrap_or("*"),
        mail_id.unwrap_or("*")
    );
    let records = scan::read(&a.js, bus::STREAM_AUDIT, &subject, Some(since))
        .await
        .map_err(Problem::unavailable)?;
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
        let Ok(r) = serde_json::from_slice::<AttemptRecord>(&s.payload) else {
            continue;
        };
        let d = by_id.entry(r.delivery_id.clone()).or_insert_with(|| {
            order.push(r.delivery_id.clone());
            Delivery {
                delivery_id: r.delivery_id.clone(),
                mail_id: r.mail_id.clone(),
                tenant,
                route: r.route.clone(),
                endpoint: r.endpoint.clone(),
                status: String::new(),
                attempts: Vec::new(),
                last_at: String::new(),
                dlq_seq: None,
                payload: None,
                headers: None,
            }
        });
        d.last_at = r.at.clone();
        d.attempts.push(Attempt {
            attempt: r.attempt,
            result: r.result,
            status: r.status,
            error: r.error,
            duration_ms: r.duration_ms,
            at: r.at,
        });
    }
    let mut out: Vec<Delivery> = order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .map(|mut d| {
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

/// Deliveries with every attempt, newest first.
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
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut all = collect(&a, &scope, q.mail_id.as_deref(), since).await?;
    all.retain(|d| {
        q.status.as_deref().is_none_or(|s| d.status == s)
            && until.is_none_or(|u| d.last_at.as_str() <= fmt(u).as_str())
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

/// One delivery, with its payload and headers while postwire holds them (in the DLQ).
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

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Bucket {
    /// The bucket's start.
    t: String,
    /// Mails processed for the tenant.
    received: u64,
    /// Successful attempts.
    delivered: u64,
    /// Failed or refused attempts.
    failed: u64,
    /// Deliveries that went to the DLQ in this bucket (and are still there).
    dead: u64,
    /// Dead letters held at the bucket's end (of those still held now).
    dlq_depth: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Stats {
    bucket_secs: u64,
    buckets: Vec<Bucket>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    tenant: Option<String>,
    /// How far back (default 24, at most 168).
    hours: Option<u32>,
}

/// Counts over time, in 48 buckets, for the dashboard's charts.
#[utoipa::path(get, path = "/api/v1/stats", tag = "deliveries", params(StatsQuery),
    responses((status = 200, body = Stats), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn stats(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    Q(q): Q<StatsQuery>,
) -> ApiResult<Json<Stats>> {
    let scope = c.scope(q.tenant.as_deref())?;
    let hours = u64::from(q.hours.unwrap_or(24).clamp(1, 168));
    const N: u64 = 48;
    let width = hours * 3600 / N;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let start = now - i64::try_from(width * N).unwrap_or(0);
    let since = OffsetDateTime::from_unix_timestamp(start).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut buckets: Vec<Bucket> = (0..N)
        .map(|i| Bucket {
            t: fmt(
                OffsetDateTime::from_unix_timestamp(start + (i * width) as i64)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            ),
            ..Default::default()
        })
        .collect();
    let index = |t: OffsetDateTime| -> Option<usize> {
        let off = t.unix_timestamp() - start;
        (off >= 0).then(|| ((off as u64 / width).min(N - 1)) as usize)
    };
    let tenant = scope.single().unwrap_or("*");
    let records = scan::read(
        &a.js,
        bus::STREAM_AUDIT,
        &format!("audit.{tenant}.>"),
        Some(since),
    )
    .await
    .map_err(Problem::unavailable)?;
    for s in records {
        let mut parts = s.subject.split('.');
        let (Some(t), Some(kind)) = (parts.nth(1), parts.next()) else {
            continue;
        };
        if !scope.has(t) {
            continue;
        }
        let Some(i) = index(s.time) else { continue };
        match kind {
            "received" => buckets[i].received += 1,
            "attempt" => match serde_json::from_slice::<AttemptRecord>(&s.payload) {
                Ok(r) if r.result == "delivered" => buckets[i].delivered += 1,
                Ok(r) if r.result == "failed" || r.result == "refused" => buckets[i].failed += 1,
                _ => {}
            },
            _ => {}
        }
    }
    let dead = held(&a, &scope).await?;
    let mut before = 0u64;
    for d in &dead {
        match index(d.stored.time) {
            Some(i) => buckets[i].dead += 1,
            None => before += 1,
        }
    }
    let mut depth = before;
    for b in &mut buckets {
        depth += b.dead;
        b.dlq_depth = depth;
    }
    Ok(Json(Stats {
        bucket_secs: width,
        buckets,
    }))
}
