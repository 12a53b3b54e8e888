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
    /// [`Limits::acquire`] without waiting: `None` when the endpoint, the tenant or the
    /// worker has no free slot (or the endpoint's rate has no turn) right now.
    pub fn try_acquire(&self, tenant: &str, endpoint: &str) -> Option<Permits> {
        let e = self.endpoint(tenant, endpoint).try_acquire()?;
        let t = self.tenant(tenant).try_acquire()?;
        let g = self.global.clone().try_acquire_owned().ok()?;
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
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// When each of `n` back-to-back acquisitions got through, from the start.
    async fn times(l: &Limiter, n: usize) -> Vec<Duration> {
        let start = Instant::now();
        let mut held = Vec::new();
        let mut at = Vec::new();
        for _ in 0..n {
            held.push(l.acquire().await);
            at.push(start.elapsed());
        }
        at
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_spaces_requests_exactly() {
        let l = Limiter::new(10, 4.0);
        assert_eq!(
            times(&l, 5).await,
            [ms(0), ms(250), ms(500), ms(750), ms(1000)],
            "4/s: one request every 250 ms, the first at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_banked_into_a_burst() {
        let l = Limiter::new(10, 2.0);
        assert_eq!(times(&l, 2).await, [ms(0), ms(500)]);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            times(&l, 3).await,
            [ms(0), ms(500), ms(1000)],
            "after 10 s idle: one at once, then spaced again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_capped_and_waiters_counted() {
        let l = Arc::new(Limiter::new(1, 0.0));
        let first = l.acquire().await;
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.acquire().await });
        // Paused time only advances once every task is blocked: the waiter is at the gate.
        tokio::time::sleep(ms(50)).await;
        assert_eq!(l.waiting(), 1);
        assert!(!waiter.is_finished());
        drop(first);
        let _second = waiter.await.unwrap();
        assert_eq!(l.waiting(), 0);
    }

    const TWO_ENDPOINTS: &str = r#"
[tenants.acme]
domains = ["acme.test"]
rate_per_sec = 2.0
[[tenants.acme.routes]]
name = "r"
recipients = ["*@acme.test"]
endpoints = ["slow", "free"]
[tenants.acme.endpoints.slow]
url = "https://example.com/slow"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
rate_per_sec = 1.0
[tenants.acme.endpoints.free]
url = "https://example.com/free"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"#;

    fn limits() -> Limits {
        let cfg = Config::from_toml(TWO_ENDPOINTS).expect("config");
        Limits::new(Arc::new(cfg))
    }

    /// What the process worker's first attempt leaves to the deliver worker: an endpoint
    /// with a rate or a concurrency set on purpose, its own or its tenant's.
    #[test]
    fn limited_means_a_rate_or_a_concurrency_set_on_purpose() {
        let one = |tenant: &str, endpoint: &str| {
            let toml = TWO_ENDPOINTS
                .replace("rate_per_sec = 2.0\n", tenant)
                .replace("rate_per_sec = 1.0\n", endpoint);
            Limits::new(Arc::new(Config::from_toml(&toml).expect("config"))).limited("acme", "slow")
        };
        assert!(!one("", ""), "nothing set");
        assert!(one("rate_per_sec = 2.0\n", ""), "the tenant's rate");
        assert!(one("concurrency = 4\n", ""), "the tenant's concurrency");
        assert!(one("", "rate_per_sec = 1.0\n"), "the endpoint's rate");
        assert!(one("", "concurrency = 1\n"), "the endpoint's concurrency");
        assert!(limits().limited("acme", "free"), "its tenant's rate");
    }

    /// The tenant's rate (2/s) spaces requests to all of its endpoints together; the slow
    /// endpoint's own rate (1/s) only its own.
    #[tokio::test(start_paused = true)]
    async fn tenant_and_endpoint_rates_compose() {
        let limits = Arc::new(limits());
        let start = Instant::now();
        let mut tasks = Vec::new();
        for (i, endpoint) in ["slow", "slow", "free", "free"].into_iter().enumerate() {
            let limits = limits.clone();
            tasks.push(tokio::spawn(async move {
                // Start in this order, one paused millisecond apart.
                tokio::time::sleep(ms(i as u64)).await;
                let _p = limits.acquire("acme", endpoint).await;
                (endpoint, start.elapsed())
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.expect("task"));
        }
        assert_eq!(
            got,
            [
                ("slow", ms(0)),
                // Its endpoint pacer lets it go at 1000 ms; the tenant's slot then is 1500 ms
                // (the two `free` ones took 500 and 1000).
                ("slow", ms(1500)),
                ("free", ms(500)),
                ("free", ms(1000)),
            ]
        );
    }

    #[test]
    fn room_is_counted_per_endpoint() {
        let mut cfg = Config::from_toml(TWO_ENDPOINTS).expect("config");
        cfg.delivery.endpoint_queue = 1;
        let limits = Limits::new(Arc::new(cfg));
        assert!(limits.has_room("acme", "slow"));
        limits
            .endpoint("acme", "slow")
            .waiting
            .fetch_add(1, Ordering::Relaxed);
        assert!(
            !limits.has_room("acme", "slow"),
            "one waits: the queue is full"
        );
        assert!(
            limits.has_room("acme", "free"),
            "another endpoint is not affected"
        );
    }
}
