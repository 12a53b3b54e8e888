//! Recipient routing: which tenant and route a recipient address belongs to.
//!
//! Patterns: `user@domain` (case-insensitive, and `user+tag@domain` matches it too),
//! `*@domain`, and `*` for any address in the tenant's domains. Routes are tried in order.

use std::collections::HashMap;

use crate::Config;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact { local: String, domain: String },
    AnyLocal { domain: String },
    Any,
}

/// Why a recipient pattern does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("{0:?} has no @")]
    NoAt(String),
    #[error("{0:?} needs a literal domain")]
    Domain(String),
    #[error("{0:?} has an empty local part")]
    EmptyLocal(String),
    #[error("{0:?}: only a whole local part may be *")]
    PartialWildcard(String),
}

impl Pattern {
    pub fn parse(p: &str) -> Result<Pattern, PatternError> {
        let p = p.trim();
        if p == "*" {
            return Ok(Pattern::Any);
        }
        let (local, domain) = p
            .rsplit_once('@')
            .ok_or_else(|| PatternError::NoAt(p.to_string()))?;
        if domain.is_empty() || domain.contains('*') {
            return Err(PatternError::Domain(p.to_string()));
        }
        let domain = domain.to_ascii_lowercase();
        match local {
            "*" => Ok(Pattern::AnyLocal { domain }),
            "" => Err(PatternError::EmptyLocal(p.to_string())),
            l if l.contains('*') => Err(PatternError::PartialWildcard(p.to_string())),
            l => Ok(Pattern::Exact {
                local: l.to_ascii_lowercase(),
                domain,
            }),
        }
    }

    /// Whether the pattern stays inside the given domains.
    pub fn within(&self, domains: &[String]) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact { domain, .. } | Pattern::AnyLocal { domain } => {
                domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
            }
        }
    }

    fn matches(&self, local: &str, domain: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::AnyLocal { domain: d } => d == domain,
            Pattern::Exact {
                local: l,
                domain: d,
            } => {
                d == domain
                    && (l == local
                        || (!l.contains('+')
                            && local.split_once('+').is_some_and(|(base, _)| base == l)))
            }
        }
    }
}

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

/// Where a recipient goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub tenant: String,
    pub route: String,
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    by_domain: HashMap<String, String>,
    routes: HashMap<String, Vec<(String, Vec<Pattern>)>>,
}

impl Router {
    pub fn new(cfg: &Config) -> Router {
        let mut r = Router::default();
        for (tname, t) in &cfg.tenants {
            for d in &t.domains {
                r.by_domain.insert(d.to_ascii_lowercase(), tname.clone());
            }
            let routes = t
                .routes
                .iter()
                .map(|rc| {
                    let pats = rc
                        .recipients
                        .iter()
                        .filter_map(|p| Pattern::parse(p).ok())
                        .collect();
                    (rc.name.clone(), pats)
                })
                .collect();
            r.routes.insert(tname.clone(), routes);
        }
        r
    }

    /// The tenant and route of a recipient address (`local@domain`, no angle brackets).
    pub fn resolve(&self, address: &str) -> Result<Destination, Refusal> {
        let (local, domain) = address.rsplit_once('@').ok_or(Refusal::BadAddress)?;
        if local.is_empty() || domain.is_empty() {
            return Err(Refusal::BadAddress);
        }
        let domain = domain.trim_end_matches('.').to_lowercase();
        let local = local.to_lowercase();
        let tenant = self.by_domain.get(&domain).ok_or(Refusal::NotOurDomain)?;
        let routes = self
            .routes
            .get(tenant)
            .map(Vec::as_slice)
            .unwrap_or_default();
        routes
            .iter()
            .find(|(_, pats)| pats.iter().any(|p| p.matches(&local, &domain)))
            .map(|(route, _)| Destination {
                tenant: tenant.clone(),
                route: route.clone(),
            })
            .ok_or(Refusal::NoSuchUser)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let cfg = Config::from_toml(
            r#"
[tenants.acme]
domains = ["acme.test", "Acme.example"]
[[tenants.acme.routes]]
name = "support"
recipients = ["Support@acme.test"]
endpoints = ["e"]
[[tenants.acme.routes]]
name = "catchall"
recipients = ["*@acme.example"]
endpoints = ["e"]
[tenants.acme.endpoints.e]
url = "https://example.com/"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"#,
        )
        .unwrap();
        cfg.validate().unwrap();
        cfg.router()
    }

    #[test]
    fn exact_plus_and_case() {
        let r = router();
        for a in [
            "support@acme.test",
            "SUPPORT@ACME.TEST",
            "support+x@acme.test",
        ] {
            assert_eq!(r.resolve(a).unwrap().route, "support", "{a}");
        }
        assert_eq!(r.resolve("sales@acme.test"), Err(Refusal::NoSuchUser));
        assert_eq!(r.resolve("supportx@acme.test"), Err(Refusal::NoSuchUser));
    }

    #[test]
    fn wildcard_and_foreign_domains() {
        let r = router();
        assert_eq!(r.resolve("anyone@acme.example").unwrap().route, "catchall");
        assert_eq!(r.resolve("x@evil.test"), Err(Refusal::NotOurDomain));
        assert_eq!(r.resolve("nodomain"), Err(Refusal::BadAddress));
    }

    #[test]
    fn bad_patterns() {
        assert!(Pattern::parse("a*b@x.test").is_err());
        assert!(Pattern::parse("a@*.test").is_err());
        assert!(Pattern::parse("@x.test").is_err());
        assert_eq!(Pattern::parse("*").unwrap(), Pattern::Any);
    }
}
