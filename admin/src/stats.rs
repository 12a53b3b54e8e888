//! The counts over time the dashboard charts (`GET /api/v1/stats`): buckets aligned to whole
//! minutes or hours, the last one ending now; with no period asked, the shortest one that
//! holds the tenant's oldest record of the last week (a fresh instance sees its data, not a
//! sliver at the right edge).

use axum::Extension;
use axum::Json;
use axum::extract::State;
use postwire_core::bus;
use postwire_stages::deliver::audit;
use postwire_stages::deliver::scan;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::problem::{ApiResult, Q};
use crate::{Api, Caller, Problem};

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
    /// The period shown (the one asked for, or the one chosen).
    hours: u32,
    bucket_secs: u64,
    /// The first bucket's start.
    start: String,
    /// Now: the last bucket ends here.
    end: String,
    /// Nothing was received or attempted in the period.
    empty: bool,
    buckets: Vec<Bucket>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    tenant: Option<String>,
    /// How far back, 1 to 168; without it, the shortest of 1, 6, 24, 72 and 168 that holds
    /// the oldest record of the last 168 hours.
    hours: Option<u32>,
}

/// The periods the dashboard offers, shortest first.
pub const PERIODS: [u32; 5] = [1, 6, 24, 72, 168];

/// The bucket width of a period: minutes for short ones, hours for longer ones.
pub fn bucket_secs(hours: u32) -> u64 {
    match hours {
        0..=1 => 60,
        2..=6 => 300,
        7..=72 => 3600,
        _ => 3 * 3600,
    }
}

/// The bucket starts of `hours` ending at `now`: aligned to the width, the last one holds
/// `now`.
pub fn bucket_starts(hours: u32, now: i64) -> (u64, Vec<i64>) {
    let width = bucket_secs(hours);
    let w = width as i64;
    let last = now.div_euclid(w) * w;
    let n = (u64::from(hours) * 3600).div_ceil(width) as i64;
    (width, (0..n).map(|i| last - (n - 1 - i) * w).collect())
}

/// The shortest period holding `oldest` (seconds ago), or a day when there is nothing.
pub fn period_for(age_secs: Option<i64>) -> u32 {
    match age_secs {
        None => 24,
        Some(age) => PERIODS
            .into_iter()
            .find(|h| i64::from(*h) * 3600 > age)
            .unwrap_or(168),
    }
}

fn fmt(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Counts over time for the dashboard's charts.
#[utoipa::path(get, path = "/api/v1/stats", tag = "deliveries", params(StatsQuery),
    responses((status = 200, body = Stats), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn stats(
    State(a): State<Api>,
    Extension(c): Extension<Caller>,
    Q(q): Q<StatsQuery>,
) -> ApiResult<Json<Stats>> {
    let scope = c.scope(q.tenant.as_deref())?;
    // The automatic period and the counts come from two reads: a first mail that arrives
    // between them would show in a day's buckets although the period was picked without it,
    // so a period picked from nothing is picked again once the counts hold something.
    let mut again = q.hours.is_none();
    loop {
        let (stats, picked_from_nothing) = stats_once(&a, &scope, q.hours).await?;
        if again && picked_from_nothing && !stats.empty {
            again = false;
            continue;
        }
        return Ok(Json(stats));
    }
}

/// One reading of the charts; also says whether an automatic period found no record.
async fn stats_once(a: &Api, scope: &crate::Scope, asked: Option<u32>) -> ApiResult<(Stats, bool)> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let tenant = scope.single().unwrap_or("*");
    let filter = format!("audit.{tenant}.>");
    let mut from_nothing = false;
    let hours = match asked {
        Some(h) => h.clamp(1, 168),
        None => {
            let week = OffsetDateTime::now_utc() - time::Duration::hours(168);
            // The oldest mail or attempt (configuration records do not count).
            let first = scan::first(&a.js, bus::STREAM_AUDIT, &filter, week, |s| {
                let mut parts = s.subject.split('.').skip(1);
                let (t, kind) = (parts.next().unwrap_or_default(), parts.next());
                scope.has(t) && matches!(kind, Some("received" | "attempt"))
            })
            .await
            .map_err(Problem::unavailable)?;
            from_nothing = first.is_none();
            period_for(first.map(|s| now - s.time.unix_timestamp()))
        }
    };
    let (width, starts) = bucket_starts(hours, now);
    let start = starts.first().copied().unwrap_or(now);
    let since = OffsetDateTime::from_unix_timestamp(start).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut buckets: Vec<Bucket> = starts
        .iter()
        .map(|s| Bucket {
            t: fmt(*s),
            ..Default::default()
        })
        .collect();
    let n = buckets.len();
    let index = |t: OffsetDateTime| -> Option<usize> {
        let off = t.unix_timestamp() - start;
        (off >= 0).then(|| ((off as u64 / width) as usize).min(n - 1))
    };
    let records = scan::read(&a.js, bus::STREAM_AUDIT, &filter, Some(since))
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
        if kind == "received" {
            buckets[i].received += 1;
        }
        // Attempt records, and the first attempts a `received` record carries.
        for r in audit::attempts_in(&s.subject, &s.payload) {
            match r.result.as_str() {
                "delivered" => buckets[i].delivered += 1,
                "failed" | "refused" => buckets[i].failed += 1,
                _ => {}
            }
        }
    }
    let dead = crate::deliveries::held(a, scope).await?;
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
    let empty = buckets
        .iter()
        .all(|b| b.received + b.delivered + b.failed + b.dlq_depth == 0);
    let stats = Stats {
        hours,
        bucket_secs: width,
        start: fmt(start),
        end: fmt(now),
        empty,
        buckets,
    };
    Ok((stats, from_nothing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_bucket_holds_now_and_buckets_are_aligned() {
        let now = 1_765_000_000 + 1234; // not on a boundary
        for h in PERIODS {
            let (w, starts) = bucket_starts(h, now);
            let last = *starts.last().unwrap();
            assert!(last <= now && now < last + w as i64, "{h}h");
            assert!(starts.iter().all(|s| s % w as i64 == 0), "{h}h aligned");
            assert!(
                (starts.len() as u64) * w >= u64::from(h) * 3600,
                "{h}h covered"
            );
        }
        assert_eq!(bucket_secs(1), 60);
        assert_eq!(bucket_secs(24), 3600);
    }

    #[test]
    fn a_fresh_instance_gets_the_shortest_period_holding_its_data() {
        assert_eq!(period_for(Some(120)), 1);
        assert_eq!(period_for(Some(2 * 3600)), 6);
        assert_eq!(period_for(Some(30 * 3600)), 72);
        assert_eq!(period_for(Some(100 * 3600)), 168);
        assert_eq!(period_for(None), 24);
    }
}
