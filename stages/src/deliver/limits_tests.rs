//! Tests of [`super`]: the limiters, their pacing, and what is limited on purpose.

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

/// The first attempt's wait for a slot: it gets one freed within the wait, gives up after
/// it (leaving nothing counted as waiting), and never waits for a rate's turn.
#[tokio::test(start_paused = true)]
async fn acquire_within_waits_for_a_slot_only_so_long() {
    let cfg = TWO_ENDPOINTS
        .replace("rate_per_sec = 2.0\n", "")
        .replace("rate_per_sec = 1.0\n", "concurrency = 1\n");
    let l = Arc::new(Limits::new(Arc::new(
        Config::from_toml(&cfg).expect("config"),
    )));
    let held = l.acquire_within("acme", "slow", ms(0)).await;
    assert!(held.is_some(), "a free slot is taken at once");
    let start = Instant::now();
    assert!(l.acquire_within("acme", "slow", ms(50)).await.is_none());
    assert_eq!(start.elapsed(), ms(50), "gave up after the wait");
    assert_eq!(
        l.endpoint("acme", "slow").waiting(),
        0,
        "nothing left counted"
    );
    let l2 = l.clone();
    let waiter =
        tokio::spawn(async move { l2.acquire_within("acme", "slow", ms(50)).await.is_some() });
    tokio::time::sleep(ms(20)).await;
    drop(held);
    assert!(
        waiter.await.expect("joined"),
        "a slot freed within the wait is taken"
    );
    // A rate's turn is not waited for.
    let paced = limits();
    assert!(paced.acquire_within("acme", "slow", ms(0)).await.is_some());
    let start = Instant::now();
    assert!(
        paced
            .acquire_within("acme", "slow", ms(5_000))
            .await
            .is_none()
    );
    assert_eq!(start.elapsed(), ms(0));
}
