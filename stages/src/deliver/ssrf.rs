//! SSRF guard (DESIGN §6): endpoints may only be reached on global addresses. Host names are
//! resolved by our own resolver, non-global answers are dropped, and the connection goes only
//! to the vetted addresses; IP literals (in every notation the URL parser accepts: decimal,
//! hex, octal, mapped IPv6) are checked before any request. `delivery.ssrf_allow` lists the
//! hosts and networks allowed anyway (development receivers, internal services).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use postwire_core::net::Cidr;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsrfError {
    #[error("refused by the SSRF guard: {0} is not a global address")]
    NonGlobal(IpAddr),
    #[error("refused by the SSRF guard: {0} resolves only to non-global addresses")]
    NonGlobalName(String),
    #[error("the URL has no host")]
    NoHost,
    /// DNS did not answer: worth another attempt.
    #[error("resolving {host}: {error}")]
    Resolve { host: String, error: String },
    #[error("system DNS configuration: {0}")]
    SystemDns(String),
    #[error("DNS resolver: {0}")]
    Resolver(String),
}

impl SsrfError {
    /// Whether the guard refused an address (permanent), rather than failing to resolve.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            SsrfError::NonGlobal(_) | SsrfError::NonGlobalName(_) | SsrfError::NoHost
        )
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, SsrfError::Resolve { .. })
    }
}

/// Whether an address is globally routable (not loopback, private, link-local, CGNAT,
/// unique-local, multicast, documentation, reserved, or a v4 address hidden in v6).
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_global_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local
                || (s[0] & 0xffc0) == 0xfe80 // fe80::/10 link local
                || (s[0] & 0xffc0) == 0xfec0 // fec0::/10 site local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard
                || (s[0] == 0x2001 && s[1] < 0x0200)) // IETF protocol assignments, Teredo
        }
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network", 0.0.0.0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 169 && b == 254) // link local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

/// The IPv4 address inside a mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), NAT64
/// (`64:ff9b::/96`) or 6to4 (`2002::/16`) IPv6 address.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1) {
        return Some(tail);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

#[derive(Debug, Clone, Default)]
struct AllowList {
    nets: Vec<Cidr>,
    hosts: Vec<String>,
}

impl AllowList {
    /// Entries are networks (`10.0.0.0/8`), addresses, or host names.
    fn parse(entries: &[String]) -> AllowList {
        let mut a = AllowList::default();
        for e in entries {
            match Cidr::parse(e) {
                Some(net) => a.nets.push(net),
                None => a
                    .hosts
                    .push(e.trim().trim_end_matches('.').to_ascii_lowercase()),
            }
        }
        a
    }

    fn ip(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    fn host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host)
    }
}

/// The guard: checks URLs and resolves host names for the HTTP client.
#[derive(Clone)]
pub struct Guard {
    allow: Arc<AllowList>,
    resolver: TokioResolver,
}

impl Guard {
    /// `dns_server`: resolve through this server (tests, split horizon); the system's
    /// resolver otherwise.
    pub fn new(allow: &[String], dns_server: Option<SocketAddr>) -> Result<Guard, SsrfError> {
        let resolver = match dns_server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
                .build()
            }
            None => TokioResolver::builder_tokio()
                .map_err(|e| SsrfError::SystemDns(e.to_string()))?
                .build(),
        }
        .map_err(|e| SsrfError::Resolver(e.to_string()))?;
        Ok(Guard {
            allow: Arc::new(AllowList::parse(allow)),
            resolver,
        })
    }

    /// Whether a connection to `ip` is allowed.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        is_global(ip) || self.allow.ip(ip)
    }

    /// Checks a URL before any request: IP literals must be allowed; names are checked when
    /// resolved (see [`Resolve`]).
    pub fn check_url(&self, url: &url::Url) -> Result<(), SsrfError> {
        match url.host().ok_or(SsrfError::NoHost)? {
            url::Host::Ipv4(ip) if !self.allows_ip(ip.into()) => {
                Err(SsrfError::NonGlobal(ip.into()))
            }
            url::Host::Ipv6(ip) if !self.allows_ip(ip.into()) => {
                Err(SsrfError::NonGlobal(ip.into()))
            }
            _ => Ok(()),
        }
    }

    /// Resolves a host name and keeps only the addresses delivery may connect to.
    pub async fn resolve_vetted(&self, host: &str) -> Result<Vec<IpAddr>, SsrfError> {
        let allowed_name = self.allow.host(host);
        let ips: Vec<IpAddr> = if host.eq_ignore_ascii_case("localhost") {
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]
        } else {
            self.resolver
                .lookup_ip(host)
                .await
                .map_err(|e| SsrfError::Resolve {
                    host: host.to_string(),
                    error: e.to_string(),
                })?
                .iter()
                .collect()
        };
        let vetted: Vec<IpAddr> = ips
            .into_iter()
            .filter(|ip| allowed_name || self.allows_ip(*ip))
            .collect();
        if vetted.is_empty() {
            return Err(SsrfError::NonGlobalName(host.to_string()));
        }
        Ok(vetted)
    }
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let ips = guard
                .resolve_vetted(name.as_str())
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?;
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ssrf_matrix_is_non_global() {
        for a in [
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "fc00::1",
            "fe80::1",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
            "::127.0.0.1",
        ] {
            assert!(!is_global(a.parse().unwrap()), "{a} must not be global");
        }
        for a in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "172.32.0.1",
            "100.128.0.1",
        ] {
            assert!(is_global(a.parse().unwrap()), "{a} is global");
        }
    }

    #[test]
    fn allow_list_networks_and_hosts() {
        let a = AllowList::parse(&[
            "10.0.0.0/8".into(),
            "127.0.0.1".into(),
            "Hooks.Internal.".into(),
        ]);
        assert!(a.ip("10.1.2.3".parse().unwrap()));
        assert!(!a.ip("11.0.0.1".parse().unwrap()));
        assert!(a.ip("127.0.0.1".parse().unwrap()));
        assert!(!a.ip("127.0.0.2".parse().unwrap()));
        assert!(a.host("hooks.internal"));
    }
}
