//! Recipient patterns: `user@domain` (case-insensitive; `user+tag@domain` matches it too),
//! globs in the local part (`sales-*@domain`, `?` for one character), `*@domain`, `*` (any
//! address of the tenant's domains) and regular expressions (`/^…$/`, matched against the
//! whole lower-cased address, case-insensitive).

/// Largest compiled size of one regular expression (patterns come from tenants).
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub enum Pattern {
    Exact {
        local: String,
        domain: String,
    },
    /// A local part with `*` or `?` in it, at a literal domain.
    Glob {
        local: String,
        domain: String,
    },
    AnyLocal {
        domain: String,
    },
    Any,
    /// `/…/`: a regular expression over `local@domain`.
    Regex(regex::Regex),
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        match (self, other) {
            (Pattern::Regex(a), Pattern::Regex(b)) => a.as_str() == b.as_str(),
            (
                Pattern::Exact {
                    local: a,
                    domain: b,
                },
                Pattern::Exact {
                    local: c,
                    domain: d,
                },
            )
            | (
                Pattern::Glob {
                    local: a,
                    domain: b,
                },
                Pattern::Glob {
                    local: c,
                    domain: d,
                },
            ) => a == c && b == d,
            (Pattern::AnyLocal { domain: a }, Pattern::AnyLocal { domain: b }) => a == b,
            (Pattern::Any, Pattern::Any) => true,
            _ => false,
        }
    }
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
    #[error("{0:?} is not a regular expression: {1}")]
    Regex(String, String),
}

/// A regular expression from configuration, with the size limit postwire applies to all.
pub fn compile(source: &str, case_insensitive: bool) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(source)
        .case_insensitive(case_insensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

impl Pattern {
    pub fn parse(p: &str) -> Result<Pattern, PatternError> {
        let p = p.trim();
        if p == "*" {
            return Ok(Pattern::Any);
        }
        if let Some(re) = p
            .strip_prefix('/')
            .and_then(|r| r.strip_suffix('/'))
            .filter(|r| !r.is_empty())
        {
            return compile(re, true)
                .map(Pattern::Regex)
                .map_err(|e| PatternError::Regex(p.to_string(), e));
        }
        let (local, domain) = p
            .rsplit_once('@')
            .ok_or_else(|| PatternError::NoAt(p.to_string()))?;
        if domain.is_empty() || domain.contains(['*', '?']) {
            return Err(PatternError::Domain(p.to_string()));
        }
        let domain = domain.to_ascii_lowercase();
        match local {
            "*" => Ok(Pattern::AnyLocal { domain }),
            "" => Err(PatternError::EmptyLocal(p.to_string())),
            l if l.contains(['*', '?']) => Ok(Pattern::Glob {
                local: l.to_lowercase(),
                domain,
            }),
            l => Ok(Pattern::Exact {
                local: l.to_lowercase(),
                domain,
            }),
        }
    }

    /// Whether the pattern stays inside the given domains (a regular expression is checked
    /// against the tenant's domains when a recipient arrives: only their addresses reach it).
    pub fn within(&self, domains: &[String]) -> bool {
        match self {
            Pattern::Any | Pattern::Regex(_) => true,
            Pattern::Exact { domain, .. }
            | Pattern::Glob { domain, .. }
            | Pattern::AnyLocal { domain } => {
                domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
            }
        }
    }

    /// `local` and `domain` are lower case.
    pub fn matches(&self, local: &str, domain: &str) -> bool {
        let base = local.split_once('+').map(|(b, _)| b);
        match self {
            Pattern::Any => true,
            Pattern::AnyLocal { domain: d } => d == domain,
            Pattern::Exact {
                local: l,
                domain: d,
            } => d == domain && (l == local || (!l.contains('+') && base == Some(l.as_str()))),
            Pattern::Glob {
                local: l,
                domain: d,
            } => d == domain && (glob(l, local) || base.is_some_and(|b| glob(l, b))),
            Pattern::Regex(re) => re.is_match(&format!("{local}@{domain}")),
        }
    }

    /// Whether every address this pattern matches is also matched by `self`, as far as can
    /// be told without enumerating addresses (false when unsure). `domains` are the tenant's.
    pub fn covers(&self, other: &Pattern, domains: &[String]) -> bool {
        let single = |d: &str| domains.len() == 1 && domains[0].eq_ignore_ascii_case(d);
        match (self, other) {
            (Pattern::Any, _) => true,
            (Pattern::AnyLocal { domain }, Pattern::Any | Pattern::Regex(_)) => single(domain),
            (Pattern::AnyLocal { domain: a }, Pattern::AnyLocal { domain: b })
            | (Pattern::AnyLocal { domain: a }, Pattern::Exact { domain: b, .. })
            | (Pattern::AnyLocal { domain: a }, Pattern::Glob { domain: b, .. }) => a == b,
            (
                Pattern::Glob { local, domain },
                Pattern::Exact {
                    local: l,
                    domain: d,
                },
            ) => domain == d && glob(local, l),
            (
                Pattern::Glob { local, domain },
                Pattern::Glob {
                    local: l,
                    domain: d,
                },
            ) => domain == d && (local == l || local == "*"),
            (
                Pattern::Exact { local, domain },
                Pattern::Exact {
                    local: l,
                    domain: d,
                },
            ) => {
                domain == d
                    && (local == l
                        || (!local.contains('+')
                            && l.split_once('+').is_some_and(|(b, _)| b == local)))
            }
            (Pattern::Regex(a), Pattern::Regex(b)) => a.as_str() == b.as_str(),
            (Pattern::Regex(re), Pattern::Exact { local, domain }) => {
                re.is_match(&format!("{local}@{domain}"))
                    && (local.contains('+') || takes_tagged(re, local, domain))
            }
            _ => false,
        }
    }
}

/// An exact pattern also takes `local+anything`; a regular expression covers it only if it
/// takes a tagged address too (checked with one sample tag).
fn takes_tagged(re: &regex::Regex, local: &str, domain: &str) -> bool {
    re.is_match(&format!("{local}+postwire-tag@{domain}"))
}

/// `*` any run of characters, `?` one character; no escapes (neither is valid in an address
/// without quoting).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("sales-*", "sales-eu"));
        assert!(glob("sales-*", "sales-"));
        assert!(!glob("sales-*", "sales"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*x*y", "axbxy"));
        assert!(!glob("*x*y", "axbx"));
    }

    #[test]
    fn parses_each_form() {
        assert_eq!(Pattern::parse("*").unwrap(), Pattern::Any);
        assert!(matches!(
            Pattern::parse("Sales-*@Acme.test").unwrap(),
            Pattern::Glob { ref local, ref domain } if local == "sales-*" && domain == "acme.test"
        ));
        assert!(matches!(
            Pattern::parse("/^inv-[0-9]+@acme\\.test$/").unwrap(),
            Pattern::Regex(_)
        ));
        assert!(Pattern::parse("/(unclosed/").is_err());
        assert!(Pattern::parse("a@*.test").is_err());
        assert!(Pattern::parse("@x.test").is_err());
        assert!(Pattern::parse("nodomain").is_err());
    }

    #[test]
    fn matching() {
        let g = Pattern::parse("sales-*@acme.test").unwrap();
        assert!(g.matches("sales-eu", "acme.test"));
        assert!(g.matches("sales-eu+x", "acme.test"));
        assert!(!g.matches("sales", "acme.test"));
        assert!(!g.matches("sales-eu", "other.test"));
        let r = Pattern::parse("/^INV-[0-9]+@acme\\.test$/").unwrap();
        assert!(r.matches("inv-42", "acme.test"));
        assert!(!r.matches("inv-x", "acme.test"));
    }

    #[test]
    fn coverage() {
        let d = vec!["acme.test".to_string()];
        let p = |s: &str| Pattern::parse(s).unwrap();
        assert!(p("*@acme.test").covers(&p("sales@acme.test"), &d));
        assert!(p("*@acme.test").covers(&p("/^x/"), &d));
        assert!(p("*").covers(&p("/^x/"), &d));
        assert!(p("sales-*@acme.test").covers(&p("sales-eu@acme.test"), &d));
        assert!(p("sales@acme.test").covers(&p("sales+x@acme.test"), &d));
        assert!(!p("sales+x@acme.test").covers(&p("sales@acme.test"), &d));
        assert!(!p("sales@acme.test").covers(&p("*@acme.test"), &d));
        assert!(!p("/^sales@/").covers(&p("sales@acme.test"), &d));
        assert!(p("/^sales/").covers(&p("sales@acme.test"), &d));
        let two = vec!["acme.test".to_string(), "acme.example".to_string()];
        assert!(!p("*@acme.test").covers(&p("*"), &two));
    }
}
