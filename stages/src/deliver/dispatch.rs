//! Dispatch: one attempt of one delivery. The endpoint must still be configured and not
//! disabled; the attempt waits for the endpoint's, the tenant's and the worker's limits, is
//! signed now ([`super::sign`]) and POSTed ([`super::http`], through the SSRF guard).

use std::time::Duration;

use std::sync::Arc;

use async_nats::jetstream;
use postwire_core::Config;

use super::retry::Outcome;
use super::sign::Signers;
use super::state_mirror::StateMirror;
use super::{DeliverError, Ids, http, limits, ssrf, state};

/// How long the process worker's first attempt waits for a free slot of the endpoint (and
/// tenant and worker) before it hands the delivery to `OUTBOX`. Not waiting at all sent 12 % of
/// the benchmark's deliveries to `OUTBOX` at saturation (bursts of 48 mails against the
/// endpoint's 16 slots, each free again within a millisecond or two); a slow endpoint holds a
/// mail at most this much longer, and one whose attempts time out is left to the deliver
/// worker.
pub const SLOT_WAIT: Duration = Duration::from_millis(50);

pub struct Dispatch {
    pub js: jetstream::Context,
    pub client: reqwest::Client,
    pub guard: ssrf::Guard,
    pub limits: limits::Limits,
    pub signers: Signers,
    /// The endpoints' state, mirrored from its KV bucket (read from memory per attempt).
    states: tokio::sync::OnceCell<Arc<StateMirror>>,
}

impl Dispatch {
    /// The dispatch `[delivery]` configures: the SSRF guard, the HTTP client through it and
    /// the live limits (the deliver worker's, and the process worker's first attempt).
    pub fn from_config(
        js: jetstream::Context,
        live: Arc<postwire_core::live::LiveConfig>,
        cfg: &Config,
    ) -> Result<Dispatch, crate::StageError> {
        let d = &cfg.delivery;
        let dns = d.dns_server.as_deref().and_then(|d| d.parse().ok());
        let guard = ssrf::Guard::new(&d.ssrf_allow, dns)
            .map_err(|e| crate::StageError::Permanent(e.to_string()))?;
        let client = http::client(d, guard.clone())?;
        Ok(Dispatch::new(js, client, guard, limits::Limits::live(live)))
    }

    pub fn new(
        js: jetstream::Context,
        client: reqwest::Client,
        guard: ssrf::Guard,
        limits: limits::Limits,
    ) -> Dispatch {
        Dispatch {
            js,
            client,
            guard,
            limits,
            signers: Signers::default(),
            states: tokio::sync::OnceCell::new(),
        }
    }

    async fn endpoint_state(
        &self,
        tenant: &str,
        endpoint: &str,
    ) -> Result<Option<state::EndpointState>, DeliverError> {
        let mirror = self
            .states
            .get_or_try_init(|| StateMirror::start(&self.js))
            .await?;
        Ok(mirror.get(tenant, endpoint))
    }

    /// One attempt: checks, waits for the limits, signs, POSTs.
    pub async fn attempt(
        &self,
        cfg: &Config,
        body: &[u8],
        ids: &Ids<'_>,
        attempt: u32,
    ) -> http::Attempt {
        let ready = match self.ready(cfg, ids).await {
            Ok(r) => r,
            Err(refused) => return refused,
        };
        let _permits = self.limits.acquire(ids.tenant, ids.endpoint).await;
        self.send(cfg, ready, body, ids, attempt).await
    }

    /// An attempt only if it can start soon: the endpoint enabled and its limits free within
    /// [`SLOT_WAIT`] (`None` otherwise). The process worker's first attempt.
    pub async fn attempt_now(
        &self,
        cfg: &Config,
        body: &[u8],
        ids: &Ids<'_>,
    ) -> Option<http::Attempt> {
        let ready = self.ready(cfg, ids).await.ok()?;
        let _permits = self
            .limits
            .acquire_within(ids.tenant, ids.endpoint, SLOT_WAIT)
            .await?;
        Some(self.send(cfg, ready, body, ids, 1).await)
    }

    /// The checks before an attempt: the endpoint configured and not disabled, its signer.
    async fn ready<'c>(&self, cfg: &'c Config, ids: &Ids<'_>) -> Result<Ready<'c>, http::Attempt> {
        let refused = |error: String| http::Attempt {
            outcome: Outcome::Permanent { status: 0, error },
            duration: Duration::ZERO,
        };
        let Some(ep) = cfg
            .tenants
            .get(ids.tenant)
            .and_then(|t| t.endpoints.get(ids.endpoint))
        else {
            return Err(refused(format!(
                "endpoint {:?} is not configured for tenant {:?}",
                ids.endpoint, ids.tenant
            )));
        };
        match self.endpoint_state(ids.tenant, ids.endpoint).await {
            Ok(Some(s)) => {
                return Err(refused(format!(
                    "endpoint disabled since {} ({})",
                    s.at, s.reason
                )));
            }
            Ok(None) => {}
            Err(e) => {
                return Err(http::Attempt {
                    outcome: Outcome::Retry {
                        status: None,
                        error: format!("endpoint state unavailable: {e}"),
                        retry_after: None,
                    },
                    duration: Duration::ZERO,
                });
            }
        }
        match self.signers.get(ids.tenant, ids.endpoint, ep) {
            Ok(signer) => Ok(Ready { ep, signer }),
            Err(e) => Err(refused(e.to_string())),
        }
    }

    /// Signs now (body and digest are fixed per delivery, the signatures per attempt) and
    /// POSTs.
    async fn send(
        &self,
        cfg: &Config,
        ready: Ready<'_>,
        body: &[u8],
        ids: &Ids<'_>,
        attempt: u32,
    ) -> http::Attempt {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let headers = match super::sign::sign(&ready.signer, &ready.ep.url, ids.id, body, now) {
            Ok(h) => h,
            Err(e) => {
                return http::Attempt {
                    outcome: Outcome::Permanent {
                        status: 0,
                        error: e.to_string(),
                    },
                    duration: Duration::ZERO,
                };
            }
        };
        tracing::debug!(attempt, url = %postwire_core::redact::url(&ready.ep.url), "Posting.");
        http::post(
            &self.client,
            &self.guard,
            &ready.ep.url,
            headers,
            body.to_vec(),
            cfg.delivery.max_response_bytes,
        )
        .await
    }
}

/// An endpoint that may be attempted, and its signer.
struct Ready<'c> {
    ep: &'c postwire_core::tenant_config::EndpointConfig,
    signer: Arc<postwire_sign::Signer>,
}
