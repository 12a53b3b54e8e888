//! Rate limits and isolation, per worker: a concurrency cap and a request rate per endpoint
//! and per tenant, plus a global cap on requests in flight. A delivery waits for its
//! endpoint without holding anything another endpoint needs; when too many wait for one
//! endpoint, the worker hands the extra back to JetStream (see `endpoint_queue`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postwire_core::Config;
use postwire_core::live::LiveConfig;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
// tokio's clock, so that paused test time (`start_paused`) drives the pacer exactly.
use tokio::time::Instant;

/// Spacing requests at `1 / rate` (no bursts): a receiver never sees more than `rate`
/// requests in any one-second window (plus one at its edge).
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: Instant,
}

#[derive(Debug)]
pub struct Limiter {
    slots: Arc<Semaphore>,
    pacer: Option<Mutex<Pacer>>,
    waiting: AtomicUsize,
}

impl Limiter {
    fn new(concurrency: usize, rate_per_sec: f64) -> Limiter {
        let pacer = (rate_per_sec > 0.0).then(|| {
            Mutex::new(Pacer {
                interval: Duration::from_secs_f64(1.0 / rate_per_sec),
                next: Instant::now(),
            })
        });
        Limiter {
            slots: Arc::new(Semaphore::new(concurrency)),
            pacer,
            waiting: AtomicUsize::new(0),
        }
    }

    /// Deliveries currently waiting for this limiter.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Waits for a slot, then for the rate; the permit is held for the request.
    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = self.slots.clone().acquire_owned().await;
        if let Some(p) = &self.pacer {
            let wait = {
                let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let at = p.next.max(now);
                p.next = at + p.interval;
                at - now
            };
            tokio::time::sleep(wait).await;
        }
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        match permit {
            Ok(p) => p,
            // The semaphore is never closed.
            Err(_) => unreachable!("limiter semaphore closed"),
        }
    }
}

impl Limiter {
    /// A slot by `deadline`, or `None`; a limiter with a rate is only tried now (its turn is
    /// not waited for). Cancel-safe: nothing is counted while it waits.
    async fn acquire_by(&self, deadline: Instant) -> Option<OwnedSemaphorePermit> {
        if self.pacer.is_some() {
            return self.try_acquire();
        }
        tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// A slot and the rate's turn now, or `None` without waiting (the process worker's
    /// first attempt, which hands a busy endpoint's delivery to `OUTBOX` instead).
    fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        let permit = self.slots.clone().try_acquire_owned().ok()?;
        if let Some(p) = &self.pacer {
            let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if p.next > now {
                return None;
            }
            p.next = now + p.interval;
        }
        Some(permit)
    }
}

/// Permits held during one request.
pub struct Permits {
    _endpoint: OwnedSemaphorePermit,
    _tenant: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

/// A limiter and the settings it was made with (a config change replaces it).
type Keyed = ((usize, f64), Arc<Limiter>);

pub struct Limits {
    live: Arc<LiveConfig>,
    global: Arc<Semaphore>,
    endpoints: Mutex<HashMap<(String, String), Keyed>>,
    tenants: Mutex<HashMap<String, Keyed>>,
}

impl Limits {
    pub fn new(cfg: Arc<Config>) -> Limits {
        Self::live(LiveConfig::fixed(cfg))
    }

    /// Limits that follow the live configuration (changed limits apply to new waits).
    pub fn live(live: Arc<LiveConfig>) -> Limits {
        let global = Arc::new(Semaphore::new(live.get().cfg.delivery.concurrency));
        Limits {
            live,
            global,
            endpoints: Mutex::default(),
            tenants: Mutex::default(),
        }
    }

    pub fn endpoint(&self, tenant: &str, endpoint: &str) -> Arc<Limiter> {
        let snap = self.live.get();
        let ep = snap
            .cfg
            .tenants
            .get(tenant)
            .and_then(|t| t.endpoints.get(endpoint));
        let d = &snap.cfg.delivery;
        let want = (
            ep.and_then(|e| e.concurrency)
                .unwrap_or(d.endpoint_concurrency),
            ep.and_then(|e| e.rate_per_sec)
                .unwrap_or(d.endpoint_rate_per_sec),
        );
        let mut map = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        keyed(map.entry((tenant.to_string(), endpoint.to_string())), want)
    }

    fn tenant(&self, tenant: &str) -> Arc<Limiter> {
        let snap = self.live.get();
        let t = snap.cfg.tenants.get(tenant);
        let want = (
            t.and_then(|t| t.concurrency)
                .unwrap_or(Semaphore::MAX_PERMITS),
            t.and_then(|t| t.rate_per_sec).unwrap_or(0.0),
        );
        let mut map = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        keyed(map.entry(tenant.to_string()), want)
    }

    /// Whether the endpoint's traffic was limited on purpose: a request rate (its own, its
    /// tenant's or `endpoint_rate_per_sec`) or a concurrency of its own or its tenant's. Such
    /// an endpoint is posted to by the deliver worker only: the process worker's first
    /// attempt would take its slot from another process's limiter and add to the limit.
    pub fn limited(&self, tenant: &str, endpoint: &str) -> bool {
        let snap = self.live.get();
        let t = snap.cfg.tenants.get(tenant);
        let ep = t.and_then(|t| t.endpoints.get(endpoint));
        let ep_rate = ep
            .and_then(|e| e.rate_per_sec)
            .unwrap_or(snap.cfg.delivery.endpoint_rate_per_sec);
        ep_rate > 0.0
            || ep.is_some_and(|e| e.concurrency.is_some())
            || t.is_some_and(|t| t.concurrency.is_some() || t.rate_per_sec.is_some_and(|r| r > 0.0))
    }

    /// Whether one more delivery may wait for this endpoint in this worker.
    pub fn has_room(&self, tenant: &str, endpoint: &str) -> bool {
        self.endpoint(tenant, endpoint).waiting() < self.live.get().cfg.delivery.endpoint_queue
    }

    /// Endpoint first (so a busy endpoint queues on itself), then tenant, then global.
    pub async fn acquire(&self, tenant: &str, endpoint: &str) -> Permits {
        let e = self.endpoint(tenant, endpoint).acquire().await;
        let t = self.tenant(tenant).acquire().await;
        let g = match self.global.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => unreachable!("global semaphore closed"),
        };
        Permits {
            _endpoint: e,
            _tenant: t,
            _global: g,
        }
    }
}

impl Limits {
    /// [`Limits::acquire`], waiting at most `wait` for the slots: `None` when the endpoint,
    /// the tenant or the worker has none free by then (or a rate has no turn right now). The
    /// process worker's first attempt, which hands a busy endpoint's delivery to `OUTBOX`.
    pub async fn acquire_within(
        &self,
        tenant: &str,
        endpoint: &str,
        wait: Duration,
    ) -> Option<Permits> {
        let by = Instant::now() + wait;
        let e = self.endpoint(tenant, endpoint).acquire_by(by).await?;
        let t = self.tenant(tenant).acquire_by(by).await?;
        let g = tokio::time::timeout_at(by, self.global.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some(Permits {
            _endpoint: e,
            _tenant: t,
            _global: g,
        })
    }
}

/// The limiter for `want`, made anew when the settings changed.
fn keyed<K>(
    entry: std::collections::hash_map::Entry<'_, K, Keyed>,
    want: (usize, f64),
) -> Arc<Limiter> {
    let slot = entry.or_insert_with(|| (want, Arc::new(Limiter::new(want.0, want.1))));
    if slot.0 != want {
        *slot = (want, Arc::new(Limiter::new(want.0, want.1)));
    }
    slot.1.clone()
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
