//! [`Verifier`]: checks a received request under any scheme postwire signs with, against the
//! keys a receiver trusts, with a timestamp tolerance and replay detection.
//!
//! Key lookup is separate (sans-IO): [`Verifier::keyids`] names the keys a request needs that
//! the verifier does not hold; fetch them (see the `dns` feature) and pass them to
//! [`Verifier::verify_with`].

use crate::capture::Captured;
use crate::error::VerifyError;
use crate::keyring::KeyRing;
use crate::replay::ReplayCache;
use crate::{auth, cavage, rfc9421, standard_webhooks as sw};

/// A signing scheme, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    StandardWebhooks,
    Rfc9421,
    Cavage,
    Bearer,
    Basic,
}

impl Scheme {
    pub const ALL: [Scheme; 5] = [
        Scheme::Rfc9421,
        Scheme::Cavage,
        Scheme::StandardWebhooks,
        Scheme::Bearer,
        Scheme::Basic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Rfc9421 => "rfc9421",
            Scheme::Cavage => "cavage",
            Scheme::Bearer => "bearer",
            Scheme::Basic => "basic",
        }
    }

    /// Whether `req` carries this scheme's headers.
    pub fn present_in(self, req: &Captured) -> bool {
        let auth_is = |p: &str| {
            req.header(auth::HEADER_AUTHORIZATION)
                .is_some_and(|a| a.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p)))
        };
        match self {
            Scheme::StandardWebhooks => req.header(sw::HEADER_SIGNATURE).is_some(),
            Scheme::Rfc9421 => req.header(rfc9421::HEADER_SIGNATURE_INPUT).is_some(),
            Scheme::Cavage => {
                req.header(rfc9421::HEADER_SIGNATURE_INPUT).is_none()
                    && (req.header(cavage::HEADER_SIGNATURE).is_some() || auth_is("Signature "))
            }
            Scheme::Bearer => auth_is("Bearer "),
            Scheme::Basic => auth_is("Basic "),
        }
    }
}

impl std::str::FromStr for Scheme {
    type Err = UnknownScheme;
    fn from_str(s: &str) -> Result<Self, UnknownScheme> {
        Scheme::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownScheme(s.to_string()))
    }
}

/// A scheme name that is none of [`Scheme::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scheme {0:?}")]
pub struct UnknownScheme(pub String);

/// What a verified request proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub scheme: Scheme,
    pub keyid: Option<String>,
    pub webhook_id: Option<String>,
}

/// Verification policy and trusted keys. Defaults: 5 minutes tolerance both ways, the scheme
/// detected from the headers (strongest first), RFC 9421 must cover all of
/// [`rfc9421::COMPONENTS`], replays rejected from an in-memory cache.
#[derive(Debug)]
pub struct Verifier {
    pub keys: KeyRing,
    pub tolerance_secs: i64,
    /// Only this scheme is accepted (none: the strongest one present).
    pub scheme: Option<Scheme>,
    pub rfc9421: rfc9421::Policy,
    pub bearer_tokens: Vec<String>,
    pub basic_credentials: Vec<(String, String)>,
    /// keyids whose Ed25519 keys verify Standard Webhooks `v1a` (which carries no keyid).
    pub standard_webhooks_keyids: Vec<String>,
    /// Replay detection; `None` turns it off.
    pub replay: Option<ReplayCache>,
}

impl Verifier {
    pub fn new(keys: KeyRing) -> Self {
        Verifier {
            keys,
            tolerance_secs: 300,
            scheme: None,
            rfc9421: rfc9421::Policy::default(),
            bearer_tokens: Vec::new(),
            basic_credentials: Vec::new(),
            standard_webhooks_keyids: Vec::new(),
            replay: Some(ReplayCache::new()),
        }
    }

    /// The schemes that will be checked for `req`, strongest first: the configured one, or
    /// every scheme whose headers are present.
    pub fn schemes_of(&self, req: &Captured) -> Vec<Scheme> {
        match self.scheme {
            Some(s) => s.present_in(req).then_some(s).into_iter().collect(),
            None => Scheme::ALL
                .into_iter()
                .filter(|s| s.present_in(req))
                .collect(),
        }
    }

    /// keyids the request needs that [`Verifier::keys`] does not hold.
    pub fn keyids(&self, req: &Captured) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for scheme in self.schemes_of(req) {
            let wanted = match scheme {
                Scheme::Rfc9421 => rfc9421::keyids(req),
                Scheme::Cavage => cavage::keyid(req).into_iter().collect(),
                Scheme::StandardWebhooks => self.standard_webhooks_keyids.clone(),
                Scheme::Bearer | Scheme::Basic => Vec::new(),
            };
            for id in wanted {
                if !self.keys.contains(&id) && !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        out
    }

    /// Verifies with the configured keys only.
    pub fn verify(&self, req: &Captured, now: i64) -> Result<Verified, VerifyError> {
        self.verify_with(req, &KeyRing::new(), now)
    }

    /// Verifies with the configured keys plus `fetched` (e.g. keys looked up in DNS).
    pub fn verify_with(
        &self,
        req: &Captured,
        fetched: &KeyRing,
        now: i64,
    ) -> Result<Verified, VerifyError> {
        let mut keys = self.keys.clone();
        keys.extend(fetched);
        // A request may carry several schemes (say Standard Webhooks and RFC 9421): it is
        // accepted when one of them verifies with a key the receiver holds.
        let mut first_error = None;
        for scheme in self.schemes_of(req) {
            match self.verify_scheme(scheme, req, &keys, now) {
                Ok(v) => return Ok(v),
                // "no key for it" is the least informative failure: report another if any.
                Err(e @ VerifyError::UnknownKey(_)) if first_error.is_none() => {
                    first_error = Some((true, e));
                }
                Err(e) => match &first_error {
                    None | Some((true, _)) => first_error = Some((false, e)),
                    Some((false, _)) => {}
                },
            }
        }
        Err(first_error.map_or(VerifyError::NoSignature, |(_, e)| e))
    }

    fn verify_scheme(
        &self,
        scheme: Scheme,
        req: &Captured,
        keys: &KeyRing,
        now: i64,
    ) -> Result<Verified, VerifyError> {
        let tol = self.tolerance_secs;
        let webhook_id = req.header(sw::HEADER_ID);
        let (keyid, replay_key) = match scheme {
            Scheme::StandardWebhooks => {
                // Repeated headers with different values are refused, never joined or picked.
                let id = req.single_header(sw::HEADER_ID)?;
                let v = sw::verify(
                    keys,
                    id.as_deref(),
                    req.single_header(sw::HEADER_TIMESTAMP)?.as_deref(),
                    req.single_header(sw::HEADER_SIGNATURE)?.as_deref(),
                    &req.body,
                    now,
                    tol,
                )?;
                (None, Some(format!("webhook-id:{}:{}", v.id, v.timestamp)))
            }
            Scheme::Rfc9421 => {
                let policy = rfc9421::Policy {
                    tolerance_secs: tol,
                    ..self.rfc9421.clone()
                };
                let v = rfc9421::verify(req, keys, &policy, now)?;
                let key = match &v.nonce {
                    Some(n) => format!("nonce:{n}"),
                    None => format!(
                        "webhook-id:{}:{}",
                        webhook_id.clone().unwrap_or_default(),
                        v.created
                    ),
                };
                (Some(v.keyid), Some(key))
            }
            Scheme::Cavage => {
                let v = cavage::verify(req, keys, now, tol)?;
                let key = match &v.nonce {
                    Some(n) => format!("nonce:{n}"),
                    None => format!(
                        "cavage:{}:{}:{}",
                        v.keyid,
                        v.date,
                        req.header(cavage::HEADER_SIGNATURE).unwrap_or_default()
                    ),
                };
                (Some(v.keyid), Some(key))
            }
            Scheme::Bearer => {
                auth::verify_bearer(req, &self.bearer_tokens)?;
                (None, None)
            }
            Scheme::Basic => {
                auth::verify_basic(req, &self.basic_credentials)?;
                (None, None)
            }
        };
        if let (Some(cache), Some(key)) = (&self.replay, replay_key)
            && !cache.check_and_remember(&key, now + 2 * tol + 1, now)
        {
            return Err(VerifyError::Replayed(key));
        }
        Ok(Verified {
            scheme,
            keyid,
            webhook_id,
        })
    }
}
