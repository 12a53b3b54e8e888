//! A test event to an endpoint (`POST /api/v1/tenants/{t}/endpoints/{e}/test`): a fixed
//! example payload marked `"test": true`, signed with the endpoint's schemes exactly as a
//! delivery is (same signer, same HTTP client rules: SSRF guard, no redirects), POSTed once
//! from the admin process; the answer is the receiver's status and the time it took. It is
//! not queued, not retried and not counted as a delivery; it is an audit record.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use postwire_stages::deliver::retry::Outcome;
use postwire_stages::deliver::{http, sign, ssrf};
use serde::Serialize;
use serde_json::{Value, json};

use crate::problem::{ApiResult, P};
use crate::resend::record_action;
use crate::{Api, Caller, Problem};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestResult {
    /// The `webhook-id` of the test event (new for each test).
    webhook_id: String,
    /// `delivered` (2xx), `failed` (would be retried) or `refused`.
    result: String,
    /// The receiver's HTTP status (none when it did not answer).
    status: Option<u16>,
    error: Option<String>,
    duration_ms: u64,
    /// The payload sent.
    #[schema(value_type = Object)]
    payload: Value,
}

/// The example event: a `postwire.email.v1` event of a fixed example mail, marked
/// `"test": true` (and routed to `_test`).
pub fn example(tenant: &str, id: &str, now: &str) -> Value {
    use postwire_core::envelope::Envelope;
    use postwire_core::event::{EmailEvent, Limits, Mailbox, Message, SCHEMA};
    let mailbox = |name: Option<&str>, address: &str| Mailbox {
        name: name.map(str::to_string),
        address: Some(address.to_string()),
        group: None,
    };
    let event = EmailEvent {
        schema: SCHEMA.into(),
        id: id.into(),
        mail_id: "00000000-0000-7000-8000-000000000000".into(),
        tenant: tenant.into(),
        route: "_test".into(),
        received_at: now.into(),
        envelope: Envelope {
            mail_from: "sender@example.com".into(),
            rcpt_to: vec!["test@example.com".into()],
            helo: "mail.example.com".into(),
            client_ip: "192.0.2.1".into(),
            received_at: now.into(),
            ..Default::default()
        },
        message: Message {
            message_id: Some("<test@postwire.invalid>".into()),
            subject: Some("postwire test event".into()),
            from: vec![mailbox(Some("postwire"), "sender@example.com")],
            to: vec![mailbox(None, "test@example.com")],
            headers: vec![("Subject".into(), "postwire test event".into())],
            text: Some("This is a test event sent from the postwire admin API.".into()),
            ..Default::default()
        },
        auth: None,
        spam: None,
        raw: None,
        limits: Limits::default(),
    };
    let mut v = serde_json::to_value(event).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("test".into(), Value::Bool(true));
    }
    v
}

/// Sends a signed test event to an endpoint and reports the receiver's answer.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}/test", tag = "operations",
    params(("tenant" = String, Path), ("endpoint" = String, Path)),
    responses((status = 200, body = TestResult), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn test_endpoint(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    P((tenant, endpoint)): P<(String, String)>,
) -> ApiResult<Json<TestResult>> {
    c.check(&tenant)?;
    let snap = a.live.get();
    let cfg = &snap.cfg;
    let ep = cfg
        .tenants
        .get(&tenant)
        .and_then(|t| t.endpoints.get(&endpoint))
        .ok_or_else(|| Problem::not_found(format!("no endpoint {endpoint:?} in {tenant}")))?;
    let signer = ep
        .signer()
        .map_err(|e| Problem::invalid("signing", format!("the endpoint cannot sign: {e}")))?;
    let d = &cfg.delivery;
    let dns = d.dns_server.as_deref().and_then(|s| s.parse().ok());
    let guard = ssrf::Guard::new(&d.ssrf_allow, dns)
        .map_err(|e| Problem::invalid("delivery.ssrf_allow", e.to_string()))?;
    let client =
        http::client(d, guard.clone()).map_err(|e| Problem::invalid("delivery", e.to_string()))?;
    let id = format!("msg_test_{:032x}", rand::random::<u128>());
    let now = time::OffsetDateTime::now_utc();
    let payload = example(&tenant, &id, &postwire_core::envelope::now_rfc3339());
    let body = serde_json::to_vec(&payload).unwrap_or_default();
    let headers = sign::sign(&signer, &ep.url, &id, &body, now.unix_timestamp())
        .map_err(|e| Problem::invalid("signing", e.to_string()))?;
    let attempt = http::post(
        &client,
        &guard,
        &ep.url,
        headers,
        body,
        d.max_response_bytes,
    )
    .await;
    let (result, status, error) = match attempt.outcome {
        Outcome::Delivered { status } => ("delivered", Some(status), None),
        Outcome::Retry { status, error, .. } => ("failed", status, Some(error)),
        Outcome::Permanent { status, error } => {
            ("refused", Some(status).filter(|s| *s != 0), Some(error))
        }
    };
    let r = TestResult {
        webhook_id: id,
        result: result.into(),
        status,
        error,
        duration_ms: attempt.duration.as_millis() as u64,
        payload,
    };
    record_action(
        &a,
        &c,
        &tenant,
        &format!("test event to endpoint {endpoint}"),
        json!({"webhook_id": r.webhook_id, "result": r.result, "status": r.status}),
    )
    .await;
    tracing::info!(by = %c.name, tenant = %tenant, endpoint = %endpoint, result = %r.result, "A test event was sent through the admin API.");
    Ok(Json(r))
}
