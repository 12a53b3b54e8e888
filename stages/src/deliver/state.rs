//! Endpoint state shared by every worker (disabled after a 410, re-enabled by an admin) in
//! the `postwire_endpoints` KV bucket, consecutive-failure counting, and alert events on
//! `postwire.alerts.<tenant>` (also POSTed to the tenant's `alert_url` when set, through the
//! SSRF guard and signed like a delivery).

use std::collections::HashMap;
use std::sync::Mutex;

use async_nats::jetstream::{self, kv};
use postwire_core::{Config, bus};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::DeliverError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EndpointState {
    pub disabled: bool,
    pub reason: String,
    pub at: String,
}

pub(super) fn key(tenant: &str, endpoint: &str) -> String {
    format!("{tenant}.{endpoint}")
}

async fn bucket(js: &jetstream::Context) -> Result<kv::Store, DeliverError> {
    js.get_key_value(bus::KV_ENDPOINTS)
        .await
        .map_err(DeliverError::bus)
}

/// The endpoint's state; `None` when it is enabled. (The deliver worker reads its mirror of
/// the bucket instead, `state_mirror`.)
pub async fn get(
    js: &jetstream::Context,
    tenant: &str,
    endpoint: &str,
) -> Result<Option<EndpointState>, DeliverError> {
    match bucket(js)
        .await?
        .get(key(tenant, endpoint))
        .await
        .map_err(DeliverError::bus)?
    {
        Some(v) => Ok(serde_json::from_slice::<EndpointState>(&v)
            .ok()
            .filter(|s| s.disabled)),
        None => Ok(None),
    }
}

pub async fn disable(
    js: &jetstream::Context,
    tenant: &str,
    endpoint: &str,
    reason: &str,
) -> Result<(), DeliverError> {
    let state = EndpointState {
        disabled: true,
        reason: reason.to_string(),
        at: postwire_core::envelope::now_rfc3339(),
    };
    let value = serde_json::to_vec(&state).unwrap_or_default();
    bucket(js)
        .await?
        .put(key(tenant, endpoint), value.into())
        .await
        .map_err(DeliverError::bus)?;
    Ok(())
}

/// Re-enables an endpoint. Returns whether it was disabled.
pub async fn enable(
    js: &jetstream::Context,
    tenant: &str,
    endpoint: &str,
) -> Result<bool, DeliverError> {
    let was = get(js, tenant, endpoint).await?.is_some();
    bucket(js)
        .await?
        .delete(key(tenant, endpoint))
        .await
        .map_err(DeliverError::bus)?;
    Ok(was)
}

/// Counts consecutive failures per endpoint (per worker) and says when to alert.
#[derive(Default)]
pub struct FailureCounter(Mutex<HashMap<(String, String), u32>>);

impl FailureCounter {
    /// Records a failure; returns the count when it just reached `threshold`.
    pub fn failed(&self, tenant: &str, endpoint: &str, threshold: u32) -> Option<u32> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry((tenant.into(), endpoint.into())).or_default();
        *n += 1;
        (threshold > 0 && *n == threshold).then_some(*n)
    }

    pub fn succeeded(&self, tenant: &str, endpoint: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(tenant.into(), endpoint.into()));
    }
}

/// What became of an alert's POST to the tenant's `alert_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertPost {
    /// No `alert_url` (the event was only published).
    NotConfigured,
    /// POSTed; the receiver answered this status.
    Answered(u16),
    /// Not sent: refused by the SSRF guard, or the URL or the signing configuration is unfit.
    Refused(String),
    /// Sent but failed (connection, timeout); alerts are not retried.
    Failed(String),
}

/// Publishes an alert event, and POSTs it to the tenant's alert URL when configured: through
/// the SSRF guard like a delivery, signed with the schemes of the endpoint it concerns (the
/// receiver verifies it as it verifies that endpoint's deliveries; `webhook-id` is
/// `alert_<uuid>`), redirects not followed.
pub async fn alert(
    d: &super::dispatch::Dispatch,
    cfg: &Config,
    tenant: &str,
    event: serde_json::Value,
) -> AlertPost {
    let mut event = event;
    event["tenant"] = json!(tenant);
    event["at"] = json!(postwire_core::envelope::now_rfc3339());
    let body = event.to_string();
    tracing::warn!(tenant, alert = %event["kind"], endpoint = %event["endpoint"], "Alert.");
    if let Err(e) =
        d.js.client()
            .publish(bus::subject_alerts(tenant), body.clone().into())
            .await
    {
        tracing::warn!(error = %e, "Could not publish an alert event.");
    }
    let Some(t) = cfg.tenants.get(tenant) else {
        return AlertPost::NotConfigured;
    };
    let Some(url) = t.alert_url.as_deref() else {
        return AlertPost::NotConfigured;
    };
    let posted = post_alert(d, cfg, tenant, t, url, event["endpoint"].as_str(), body).await;
    match &posted {
        AlertPost::Refused(e) | AlertPost::Failed(e) => tracing::warn!(
            url = %postwire_core::redact::url(url),
            error = %postwire_core::redact::text(e),
            "Could not POST an alert to the tenant's alert URL."
        ),
        _ => {}
    }
    posted
}

async fn post_alert(
    d: &super::dispatch::Dispatch,
    cfg: &Config,
    tenant: &str,
    t: &postwire_core::tenant_config::TenantConfig,
    url: &str,
    endpoint: Option<&str>,
    body: String,
) -> AlertPost {
    if let Err(e) = postwire_core::tenant_config::check_alert_url(url) {
        return AlertPost::Refused(e);
    }
    let id = format!("alert_{}", uuid::Uuid::now_v7().simple());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let headers = match endpoint.and_then(|e| t.endpoints.get(e).map(|ep| (e, ep))) {
        Some((name, ep)) => {
            let signed = d
                .signers
                .get(tenant, name, ep)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    super::sign::sign(&s, url, &id, body.as_bytes(), now).map_err(|e| e.to_string())
                });
            match signed {
                Ok(h) => h,
                Err(e) => return AlertPost::Refused(e),
            }
        }
        None => reqwest::header::HeaderMap::new(),
    };
    let a = super::http::post(
        &d.client,
        &d.guard,
        url,
        headers,
        body.into_bytes(),
        cfg.delivery.max_response_bytes,
    )
    .await;
    use super::retry::Outcome;
    match a.outcome {
        Outcome::Delivered { status } => AlertPost::Answered(status),
        Outcome::Retry {
            status: Some(s), ..
        } => AlertPost::Answered(s),
        Outcome::Permanent { status, .. } if status != 0 => AlertPost::Answered(status),
        Outcome::Permanent { error, .. } => AlertPost::Refused(error),
        Outcome::Retry { error, .. } => AlertPost::Failed(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_once_when_consecutive_failures_reach_the_threshold() {
        let c = FailureCounter::default();
        let run: Vec<_> = (0..5).map(|_| c.failed("acme", "hook", 3)).collect();
        assert_eq!(run, [None, None, Some(3), None, None], "once, at the third");
        // Another endpoint and another tenant count on their own.
        assert_eq!(c.failed("acme", "other", 3), None);
        assert_eq!(c.failed("beta", "hook", 1), Some(1));
    }

    #[test]
    fn a_success_starts_the_count_again() {
        let c = FailureCounter::default();
        assert_eq!(c.failed("acme", "hook", 2), None);
        c.succeeded("acme", "hook");
        assert_eq!(c.failed("acme", "hook", 2), None, "the count was reset");
        assert_eq!(c.failed("acme", "hook", 2), Some(2));
        c.succeeded("acme", "hook");
        assert_eq!(c.failed("acme", "hook", 2), None);
        assert_eq!(
            c.failed("acme", "hook", 2),
            Some(2),
            "alerts again after recovering"
        );
    }

    #[test]
    fn threshold_zero_never_alerts() {
        let c = FailureCounter::default();
        assert!((0..100).all(|_| c.failed("acme", "hook", 0).is_none()));
    }
}
