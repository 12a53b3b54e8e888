//! The dead-letter queue and the quarantine: list, show, replay or release, purge.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use postwire_core::bus;
use postwire_stages::held::dlq;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::deliveries::{held_headers, time_arg, token_ok};
use crate::problem::{ApiResult, Body, P, Q};
use crate::{Api, Caller, Problem};
use postwire_stages::held::quarantine::{self, Quarantined};

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeadLetterView {
    seq: u64,
    tenant: String,
    route: String,
    delivery_id: String,
    mail_id: String,
    endpoint: String,
    attempts: String,
    last_status: String,
    last_error: String,
    failed_at: String,
    /// Only in `GET /api/v1/dlq/{seq}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    payload: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    headers: Option<Value>,
}

fn view(d: &dlq::DeadLetter, full: bool) -> DeadLetterView {
    DeadLetterView {
        seq: d.seq,
        tenant: d.tenant.clone(),
        route: d.route.clone(),
        delivery_id: d.delivery_id.clone(),
        mail_id: d.mail_id.clone(),
        endpoint: d.endpoint.clone(),
        attempts: d.attempts.clone(),
        last_status: d.last_status.clone(),
        last_error: d.last_error.clone(),
        failed_at: d.failed_at.clone(),
        payload: full.then(|| d.payload_json()),
        headers: full.then(|| held_headers(&d.stored.headers)),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeadLetters {
    dead_letters: Vec<DeadLetterView>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DlqQuery {
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    tenant: Option<String>,
    /// RFC 3339 time or an age like `2h`.
    since: Option<String>,
    /// A delivery id, mail id or DLQ sequence number.
    id: Option<String>,
}

/// The dead letters this token sees that match the selection.
async fn select(a: &Api, c: &Caller, sel: &Selection) -> ApiResult<Vec<dlq::DeadLetter>> {
    let scope = c.scope(sel.tenant.as_deref())?;
    if sel.id.as_deref().is_some_and(|i| !token_ok(i)) {
        return Err(Problem::bad_request(
            "id is not a delivery id, mail id or sequence",
        ));
    }
    let f = dlq::Filter {
        tenant: scope.single().map(str::to_string),
        since: sel
            .since
            .as_deref()
            .map(|s| time_arg("since", s))
            .transpose()?,
        id: sel.id.clone(),
    };
    let mut all = dlq::list(&a.js, &f).await.map_err(Problem::unavailable)?;
    all.retain(|d| scope.has(&d.tenant) && sel.seqs.as_ref().is_none_or(|s| s.contains(&d.seq)));
    Ok(all)
}

/// Dead letters, oldest first.
#[utoipa::path(get, path = "/api/v1/dlq", tag = "operations", params(DlqQuery),
    responses((status = 200, body = DeadLetters), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn dlq_list(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    Q(q): Q<DlqQuery>,
) -> ApiResult<Json<DeadLetters>> {
    let sel = Selection {
        seqs: None,
        tenant: q.tenant,
        since: q.since,
        id: q.id,
    };
    let all = select(&a, &c, &sel).await?;
    Ok(Json(DeadLetters {
        dead_letters: all.iter().map(|d| view(d, false)).collect(),
    }))
}

/// One dead letter with its payload.
#[utoipa::path(get, path = "/api/v1/dlq/{seq}", tag = "operations",
    params(("seq" = u64, Path)),
    responses((status = 200, body = DeadLetterView), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn dlq_show(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    P(seq): P<u64>,
) -> ApiResult<Json<DeadLetterView>> {
    let seq_text = seq.to_string();
    let sel = Selection {
        seqs: Some(vec![seq]),
        id: Some(seq_text),
        ..Default::default()
    };
    select(&a, &c, &sel)
        .await?
        .first()
        .map(|d| Json(view(d, true)))
        .ok_or_else(|| Problem::not_found(format!("no dead letter {seq}")))
}

/// Which dead letters (or quarantined mails) an operation takes: sequence numbers, or a
/// filter (at least one of tenant, since, id).
#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    #[serde(default)]
    seqs: Option<Vec<u64>>,
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    tenant: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

impl Selection {
    fn check(&self) -> ApiResult<()> {
        let empty = self.seqs.as_ref().is_none_or(|s| s.is_empty())
            && self.tenant.is_none()
            && self.since.is_none()
            && self.id.is_none();
        if empty {
            return Err(Problem::bad_request(
                "say what to take: seqs, or tenant, since and/or id",
            ));
        }
        if self.seqs.as_ref().is_some_and(|s| s.len() > 10_000) {
            return Err(Problem::bad_request("at most 10000 seqs at once"));
        }
        Ok(())
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReplayResult {
    /// Delivery ids sent back to the deliver worker (same `webhook-id`).
    replayed: Vec<String>,
    #[schema(value_type = Vec<Object>)]
    failed: Vec<Value>,
}

/// Sends dead letters back for delivery, with the same delivery id.
#[utoipa::path(post, path = "/api/v1/dlq/replay", tag = "operations", request_body = Selection,
    responses((status = 200, body = ReplayResult), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn dlq_replay(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    Body(sel): Body<Selection>,
) -> ApiResult<Json<ReplayResult>> {
    sel.check()?;
    let items = select(&a, &c, &sel).await?;
    let mut replayed = Vec::new();
    let mut failed = Vec::new();
    let mut done = Vec::new();
    for d in &items {
        match dlq::replay(&a.js, d).await {
            Ok(()) => {
                replayed.push(d.delivery_id.clone());
                done.push((
                    d.tenant.clone(),
                    json!({"seq": d.seq, "delivery_id": d.delivery_id}),
                ));
            }
            Err(e) => failed.push(json!({"seq": d.seq, "error": e.to_string()})),
        }
    }
    crate::oplog::record_each(&a, &c, "dlq.replay", done).await;
    tracing::info!(by = %c.name, replayed = replayed.len(), failed = failed.len(), "Dead letters replayed through the admin API.");
    Ok(Json(ReplayResult { replayed, failed }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PurgeResult {
    /// Sequence numbers removed.
    purged: Vec<u64>,
    #[schema(value_type = Vec<Object>)]
    failed: Vec<Value>,
}

/// Deletes dead letters for good.
#[utoipa::path(post, path = "/api/v1/dlq/purge", tag = "operations", request_body = Selection,
    responses((status = 200, body = PurgeResult), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn dlq_purge(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    Body(sel): Body<Selection>,
) -> ApiResult<Json<PurgeResult>> {
    sel.check()?;
    let items = select(&a, &c, &sel).await?;
    let stream =
        a.js.get_stream(bus::STREAM_DLQ)
            .await
            .map_err(Problem::unavailable)?;
    let mut purged = Vec::new();
    let mut failed = Vec::new();
    let mut done = Vec::new();
    for d in &items {
        match stream.delete_message(d.seq).await {
            Ok(_) => {
                purged.push(d.seq);
                done.push((
                    d.tenant.clone(),
                    json!({"seq": d.seq, "delivery_id": d.delivery_id}),
                ));
            }
            Err(e) => failed.push(json!({"seq": d.seq, "error": e.to_string()})),
        }
    }
    crate::oplog::record_each(&a, &c, "dlq.purge", done).await;
    tracing::info!(by = %c.name, purged = purged.len(), "Dead letters purged through the admin API.");
    Ok(Json(PurgeResult { purged, failed }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QuarantineList {
    quarantined: Vec<Quarantined>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    pub(super) tenant: Option<String>,
}

/// Mails held back by a tenant's authentication policy.
#[utoipa::path(get, path = "/api/v1/quarantine", tag = "operations", params(TenantQuery),
    responses((status = 200, body = QuarantineList), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn quarantine_list(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    Q(q): Q<TenantQuery>,
) -> ApiResult<Json<QuarantineList>> {
    let scope = c.scope(q.tenant.as_deref())?;
    let mut all = quarantine::entries(&a.js, scope.single())
        .await
        .map_err(Problem::unavailable)?;
    all.retain(|m| scope.has(&m.tenant));
    Ok(Json(QuarantineList { quarantined: all }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QuarantinedView {
    #[serde(flatten)]
    mail: Quarantined,
    /// The authentication verdicts that held it back (SPF, DKIM, DMARC, ARC, iprev).
    #[schema(value_type = Option<Object>)]
    auth: Option<Value>,
}

/// One quarantined mail, with the verdicts that held it back.
#[utoipa::path(get, path = "/api/v1/quarantine/{seq}", tag = "operations",
    params(("seq" = u64, Path)),
    responses((status = 200, body = QuarantinedView), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn quarantine_show(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    P(seq): P<u64>,
) -> ApiResult<Json<QuarantinedView>> {
    let missing = || Problem::not_found(format!("no quarantined mail {seq}"));
    match quarantine::tenant_of(&a.js, seq).await {
        Ok(Some(t)) if c.sees(&t) => {}
        Ok(_) => return Err(missing()),
        Err(e) => return Err(Problem::unavailable(e)),
    }
    let (mail, auth) = quarantine::one(&a.js, seq)
        .await
        .map_err(Problem::unavailable)?
        .ok_or_else(missing)?;
    Ok(Json(QuarantinedView {
        mail,
        auth: auth.and_then(|a| serde_json::to_value(a).ok()),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Seqs {
    seqs: Vec<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SeqResult {
    done: Vec<u64>,
    #[schema(value_type = Vec<Object>)]
    failed: Vec<Value>,
}

async fn each_quarantined(
    a: &Api,
    c: &Caller,
    seqs: &[u64],
    release: bool,
) -> ApiResult<SeqResult> {
    if seqs.is_empty() || seqs.len() > 10_000 {
        return Err(Problem::bad_request("give 1 to 10000 seqs"));
    }
    let mut done = Vec::new();
    let mut failed = Vec::new();
    let mut audited = Vec::new();
    for &seq in seqs {
        // Another tenant's mail is as absent as a missing one.
        let tenant = match quarantine::tenant_of(&a.js, seq).await {
            Ok(Some(t)) if c.sees(&t) => t,
            Ok(_) => {
                failed.push(json!({"seq": seq, "error": "not in quarantine"}));
                continue;
            }
            Err(e) => return Err(Problem::unavailable(e)),
        };
        let r = if release {
            quarantine::release_one(&a.js, seq).await.map(|_| ())
        } else {
            quarantine::purge_one(&a.js, seq).await
        };
        match r {
            Ok(()) => {
                done.push(seq);
                audited.push((tenant, json!({"seq": seq})));
            }
            Err(e) => failed.push(json!({"seq": seq, "error": e.to_string()})),
        }
    }
    let change = if release {
        "quarantine.release"
    } else {
        "quarantine.purge"
    };
    crate::oplog::record_each(a, c, change, audited).await;
    tracing::info!(by = %c.name, release, done = done.len(), "Quarantine changed through the admin API.");
    Ok(SeqResult { done, failed })
}

/// Releases quarantined mails: they are delivered, with their verdicts.
#[utoipa::path(post, path = "/api/v1/quarantine/release", tag = "operations", request_body = Seqs,
    responses((status = 200, body = SeqResult), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn quarantine_release(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    Body(b): Body<Seqs>,
) -> ApiResult<Json<SeqResult>> {
    each_quarantined(&a, &c, &b.seqs, true).await.map(Json)
}

/// Deletes quarantined mails for good.
#[utoipa::path(post, path = "/api/v1/quarantine/purge", tag = "operations", request_body = Seqs,
    responses((status = 200, body = SeqResult), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn quarantine_purge(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    Body(b): Body<Seqs>,
) -> ApiResult<Json<SeqResult>> {
    each_quarantined(&a, &c, &b.seqs, false).await.map(Json)
}
