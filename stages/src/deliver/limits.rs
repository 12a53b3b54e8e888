//! Rate limits and isolation, per worker: a concurrency cap and a request rate per endpoint
//! and per tenant, plus a global cap on requests in flight. A delivery waits for its
//! endpoint without holding anything another endpoint needs; when too many wait for one
//! endpoint, the worker hands the extra back to JetStream (see `endpoint_queue`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postwire_core::Config;
use postwire_core::live::LiveConfig;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacer_spaces_requests() {
        let l = Limiter::new(10, 4.0);
        let start = tokio::time::Instant::now();
        let mut held = Vec::new();
        for _ in 0..5 {
            held.push(l.acquire().await);
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(990),
            "5 requests at 4/s take >= 1 s, took {elapsed:?}"
        );
    }

    #[tokio::test]
    async fn concurrency_is_capped_and_waiters_counted() {
        let l = Arc::new(Limiter::new(1, 0.0));
        let first = l.acquire().await;
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.acquire().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(l.waiting(), 1);
        assert!(!waiter.is_finished());
        drop(first);
        let _second = waiter.await.unwrap();
        assert_eq!(l.waiting(), 0);
    }
}
