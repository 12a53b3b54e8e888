//! Routing: which tenant and routes a recipient belongs to.
//!
//! A tenant's routes are tried in order of `priority` (lower first), ties in the order they
//! are listed. A route matches a mail's recipient when one of its recipient patterns
//! ([`pattern`]) takes the address and all its conditions ([`conditions`]: headers,
//! verdicts) hold. Every matching route gets the mail (fan-out) until a matching route with
//! `stop` ends the search. At RCPT time only the recipient is known: it is accepted when some
//! route's patterns take it ([`Router::resolve`]); the worker applies the conditions
//! ([`Router::routes_for`]). [`shadowed`] finds routes that can never match.

pub mod conditions;
pub mod pattern;

use std::collections::HashMap;

pub use conditions::{Facts, HeaderCondition, HeaderRule, VerdictCondition};
pub use pattern::{Pattern, PatternError};

use crate::Config;
use crate::tenant_config::RouteConfig;

/// Why a recipient is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No tenant owns the domain (we are not an open relay).
    NotOurDomain,
    /// The domain is ours but no route takes this address.
    NoSuchUser,
    /// Not a usable address.
    BadAddress,
}

/// Where a recipient goes: its tenant, and the first route whose patterns take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub tenant: String,
    pub route: String,
}

/// One route, compiled.
#[derive(Debug, Clone)]
struct Compiled {
    name: String,
    patterns: Vec<Pattern>,
    headers: Vec<HeaderRule>,
    verdicts: VerdictCondition,
    stop: bool,
}

impl Compiled {
    fn new(rc: &RouteConfig) -> Compiled {
        Compiled {
            name: rc.name.clone(),
            patterns: rc
                .recipients
                .iter()
                .filter_map(|p| Pattern::parse(p).ok())
                .collect(),
            headers: rc
                .headers
                .iter()
                .filter_map(|h| HeaderRule::compile(h).ok())
                .collect(),
            verdicts: rc.verdicts.clone(),
            stop: rc.stop,
        }
    }

    fn takes(&self, local: &str, domain: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(local, domain))
    }
}

/// A tenant's routes in the order they are tried: by `priority`, then as listed.
pub fn ordered(routes: &[RouteConfig]) -> Vec<(usize, &RouteConfig)> {
    let mut v: Vec<_> = routes.iter().enumerate().collect();
    v.sort_by_key(|(i, r)| (r.priority, *i));
    v
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    by_domain: HashMap<String, String>,
    routes: HashMap<String, Vec<Compiled>>,
}

/// `local@domain` lower-cased and split; the trailing dot of a domain dropped.
fn split(address: &str) -> Result<(String, String), Refusal> {
    let (local, domain) = address.rsplit_once('@').ok_or(Refusal::BadAddress)?;
    if local.is_empty() || domain.is_empty() {
        return Err(Refusal::BadAddress);
    }
    Ok((
        local.to_lowercase(),
        domain.trim_end_matches('.').to_lowercase(),
    ))
}

impl Router {
    pub fn new(cfg: &Config) -> Router {
        let mut r = Router::default();
        for (tname, t) in &cfg.tenants {
            for d in &t.domains {
                r.by_domain.insert(d.to_ascii_lowercase(), tname.clone());
            }
            let routes = ordered(&t.routes)
                .into_iter()
                .map(|(_, rc)| Compiled::new(rc))
                .collect();
            r.routes.insert(tname.clone(), routes);
        }
        r
    }

    fn tenant_of(&self, domain: &str) -> Result<(&String, &[Compiled]), Refusal> {
        let tenant = self.by_domain.get(domain).ok_or(Refusal::NotOurDomain)?;
        let routes = self
            .routes
            .get(tenant)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok((tenant, routes))
    }

    /// The tenant and the first route whose recipient patterns take `address` (`local@domain`,
    /// no angle brackets): what RCPT TO decides on. Headers and verdicts are not known yet.
    pub fn resolve(&self, address: &str) -> Result<Destination, Refusal> {
        let (local, domain) = split(address)?;
        let (tenant, routes) = self.tenant_of(&domain)?;
        routes
            .iter()
            .find(|r| r.takes(&local, &domain))
            .map(|r| Destination {
                tenant: tenant.clone(),
                route: r.name.clone(),
            })
            .ok_or(Refusal::NoSuchUser)
    }

    /// Every route of `tenant` that takes `address` for a mail with these `facts`, in the
    /// order tried, up to and including the first matching `stop` route. Empty when none
    /// does (or the address belongs to another tenant).
    pub fn routes_for(&self, tenant: &str, address: &str, facts: &Facts<'_>) -> Vec<String> {
        let Ok((local, domain)) = split(address) else {
            return Vec::new();
        };
        let Ok((owner, routes)) = self.tenant_of(&domain) else {
            return Vec::new();
        };
        if owner != tenant {
            return Vec::new();
        }
        let mut out = Vec::new();
        for r in routes {
            if r.takes(&local, &domain)
                && r.headers.iter().all(|h| h.holds(facts.headers))
                && r.verdicts.holds(facts.auth)
            {
                out.push(r.name.clone());
                if r.stop {
                    break;
                }
            }
        }
        out
    }
}

/// A route that can never match: every address its patterns take is taken first by earlier
/// `stop` routes without conditions (which then end the search).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadowed {
    /// Index of the shadowed route in the tenant's list.
    pub index: usize,
    pub route: String,
    /// The routes that take its recipients first, in the order tried.
    pub by: Vec<String>,
}

/// The shadowed routes of a tenant with these `domains` and `routes`.
pub fn shadowed(domains: &[String], routes: &[RouteConfig]) -> Vec<Shadowed> {
    let order = ordered(routes);
    let mut out = Vec::new();
    for (k, (index, b)) in order.iter().enumerate() {
        let stoppers: Vec<_> = order[..k]
            .iter()
            .map(|(_, a)| a)
            .filter(|a| a.stop && a.headers.is_empty() && a.verdicts.is_empty())
            .collect();
        let pats: Vec<Pattern> = b
            .recipients
            .iter()
            .filter_map(|p| Pattern::parse(p).ok())
            .collect();
        if pats.is_empty() || stoppers.is_empty() {
            continue;
        }
        let mut by: Vec<String> = Vec::new();
        let all_covered = pats.iter().all(|p| {
            let cover = stoppers.iter().find(|a| {
                a.recipients
                    .iter()
                    .filter_map(|s| Pattern::parse(s).ok())
                    .any(|q| q.covers(p, domains))
            });
            if let Some(a) = cover
                && !by.contains(&a.name)
            {
                by.push(a.name.clone());
            }
            cover.is_some()
        });
        if all_covered {
            out.push(Shadowed {
                index: *index,
                route: b.name.clone(),
                by,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
