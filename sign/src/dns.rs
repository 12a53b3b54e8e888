//! Public keys from DNS (feature `dns`): the TXT record at the keyid
//! (`<selector>._postwire.<domain>`, `v=DKIM1; k=…; p=…`), looked up with hickory-resolver,
//! and only for keyids under an allowed domain. The key type comes from the record's `k=`.

use std::net::SocketAddr;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use crate::capture::Captured;
use crate::error::VerifyError;
use crate::keyring::KeyRing;
use crate::keys::{DNS_LABEL, PublicKey};
use crate::verify::{Verified, Verifier};

/// Looks keys up in DNS for keyids under `allowed_domains`.
pub struct DnsKeys {
    resolver: TokioResolver,
    allowed_domains: Vec<String>,
}

impl DnsKeys {
    /// With the system's resolver configuration (`/etc/resolv.conf`).
    pub fn system(allowed_domains: &[String]) -> Result<Self, VerifyError> {
        let resolver = TokioResolver::builder_tokio()
            .and_then(|b| b.build())
            .map_err(|e| VerifyError::KeyLookup(e.to_string()))?;
        Ok(Self::with_resolver(resolver, allowed_domains))
    }

    /// With one name server at `server` (UDP then TCP), e.g. a local test server.
    pub fn with_server(
        server: SocketAddr,
        allowed_domains: &[String],
    ) -> Result<Self, VerifyError> {
        let mut udp = ConnectionConfig::udp();
        udp.port = server.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = server.port();
        let ns = NameServerConfig::new(server.ip(), true, vec![udp, tcp]);
        let mut opts = ResolverOpts::default();
        opts.cache_size = 0;
        opts.attempts = 1;
        opts.timeout = std::time::Duration::from_secs(2);
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![ns]),
            TokioRuntimeProvider::default(),
        )
        .with_options(opts)
        .build()
        .map_err(|e| VerifyError::KeyLookup(e.to_string()))?;
        Ok(Self::with_resolver(resolver, allowed_domains))
    }

    pub fn with_resolver(resolver: TokioResolver, allowed_domains: &[String]) -> Self {
        DnsKeys {
            resolver,
            allowed_domains: allowed_domains
                .iter()
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether `keyid` is `<selector>._postwire.<domain>` with `<domain>` equal to or under an
    /// allowed domain.
    pub fn is_allowed(&self, keyid: &str) -> bool {
        let keyid = keyid.trim_end_matches('.').to_ascii_lowercase();
        let marker = format!(".{DNS_LABEL}.");
        let Some(at) = keyid.find(&marker) else {
            return false;
        };
        let domain = &keyid[at + marker.len()..];
        at > 0
            && self
                .allowed_domains
                .iter()
                .any(|d| domain == d || domain.ends_with(&format!(".{d}")))
    }

    /// The key published at `keyid`; `Ok(None)` when there is none (no record, revoked, or a
    /// record that is not a valid key). Err only for refused keyids and unreachable DNS.
    pub async fn fetch(&self, keyid: &str) -> Result<Option<PublicKey>, VerifyError> {
        if !self.is_allowed(keyid) {
            return Err(VerifyError::KeyIdNotAllowed(keyid.to_owned()));
        }
        let name = format!("{}.", keyid.trim_end_matches('.'));
        let lookup = match self.resolver.txt_lookup(name).await {
            Ok(l) => l,
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => return Ok(None),
            Err(e) => return Err(VerifyError::KeyLookup(e.to_string())),
        };
        for record in lookup.answers() {
            if let RData::TXT(txt) = &record.data {
                let text: String = txt
                    .txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                if let Ok(key) = PublicKey::from_dkim_txt(&text) {
                    return Ok(Some(key));
                }
            }
        }
        Ok(None)
    }

    /// Fetches every key `req` needs that `verifier` does not hold.
    pub async fn keys_for(
        &self,
        verifier: &Verifier,
        req: &Captured,
    ) -> Result<KeyRing, VerifyError> {
        let mut ring = KeyRing::new();
        for keyid in verifier.keyids(req) {
            if let Some(key) = self.fetch(&keyid).await? {
                ring.add_public(Some(keyid), key);
            }
        }
        Ok(ring)
    }

    /// Fetches the keys, then verifies.
    pub async fn verify(
        &self,
        verifier: &Verifier,
        req: &Captured,
        now: i64,
    ) -> Result<Verified, VerifyError> {
        let fetched = self.keys_for(verifier, req).await?;
        verifier.verify_with(req, &fetched, now)
    }
}
