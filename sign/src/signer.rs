//! [`Signer`]: an endpoint's signing configuration, loaded once, applied at every attempt.
//!
//! ```no_run
//! # use postwire_sign::{Signer, SigningConfig, ContentDigest, RequestParts};
//! let signer = Signer::from_config(&[SigningConfig::standard_webhooks_secret(
//!     "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
//! )])?;
//! let body = br#"{"schema":"postwire.email.v1"}"#;
//! let digest = ContentDigest::of(body); // once per delivery
//! let req = RequestParts {
//!     method: "POST", url: "https://hooks.example.com/in", content_type: "application/json",
//!     webhook_id: "msg_1", body, content_digest: &digest,
//! };
//! let headers = signer.sign(&req, 1_763_900_000)?; // at each attempt
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::cavage::CavageSigner;
use crate::config::{ConfigError, SigningConfig, key_text, keydir_keys};
use crate::error::SignError;
use crate::keys::{PrivateKey, Secret};
use crate::request::RequestParts;
use crate::rfc9421::{Algorithm, Rfc9421Signer, SigningMaterial};
use crate::{auth, rfc9421, standard_webhooks as sw};

/// A key that signs only until `retire_at` (keys from a key directory during a rotation).
#[derive(Debug, Clone)]
struct Timed<T> {
    inner: T,
    retire_at: Option<i64>,
}

impl<T> Timed<T> {
    fn forever(inner: T) -> Self {
        Timed {
            inner,
            retire_at: None,
        }
    }
    fn active(&self, now: i64) -> bool {
        self.retire_at.is_none_or(|t| now < t)
    }
}

#[derive(Debug, Clone)]
enum SwKey {
    V1(Secret),
    V1a(ed25519_dalek::SigningKey),
}

/// Signs requests for one endpoint with every configured scheme. Its `Debug` output names
/// the schemes only (keys, secrets and tokens stay out of logs).
#[derive(Clone, Default)]
pub struct Signer {
    standard_webhooks: Vec<Timed<SwKey>>,
    rfc9421: Vec<Timed<Rfc9421Signer>>,
    cavage: Vec<Timed<CavageSigner>>,
    auth: Vec<(String, String)>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("standard_webhooks", &self.standard_webhooks.len())
            .field("rfc9421", &self.rfc9421.len())
            .field("cavage", &self.cavage.len())
            .field("auth", &self.auth.len())
            .finish()
    }
}

impl Signer {
    /// Loads every key the configuration names (files, environment, key directories).
    pub fn from_config(configs: &[SigningConfig]) -> Result<Self, ConfigError> {
        let mut signer = Signer::default();
        for (index, config) in configs.iter().enumerate() {
            let scheme = config.scheme();
            let invalid = |message: &str| ConfigError::Invalid {
                index,
                scheme,
                message: message.to_owned(),
            };
            let key_err = |source| ConfigError::Key {
                index,
                scheme,
                source,
            };
            if config.key_sources() != 1 {
                return Err(invalid("give exactly one key source"));
            }
            match config {
                SigningConfig::StandardWebhooks {
                    secret,
                    secret_env,
                    key_file,
                    key_env,
                    keyring,
                } => {
                    if let Some(dir) = keyring {
                        for (key, retire_at) in keydir_keys(dir).map_err(key_err)? {
                            let PrivateKey::Ed25519(k) = key.0 else {
                                return Err(invalid("v1a needs Ed25519 keys"));
                            };
                            signer.standard_webhooks.push(Timed {
                                inner: SwKey::V1a(k),
                                retire_at,
                            });
                        }
                    } else if let Some(text) =
                        key_text(&None, secret_env, secret).map_err(key_err)?
                    {
                        signer.standard_webhooks.push(Timed::forever(SwKey::V1(
                            Secret::parse(&text).map_err(key_err)?,
                        )));
                    } else if let Some(text) =
                        key_text(key_file, key_env, &None).map_err(key_err)?
                    {
                        let PrivateKey::Ed25519(k) = PrivateKey::parse(&text).map_err(key_err)?
                        else {
                            return Err(invalid("v1a needs an Ed25519 key"));
                        };
                        signer.standard_webhooks.push(Timed::forever(SwKey::V1a(k)));
                    }
                }
                SigningConfig::Rfc9421 {
                    alg,
                    keyid,
                    key_file,
                    key_env,
                    secret,
                    secret_env,
                    keyring,
                    label,
                    tag,
                    expires_secs,
                } => {
                    let default_label = format!("sig{}", signer.rfc9421.len() + 1);
                    let mut push = |label: String,
                                    material,
                                    keyid: &str,
                                    retire_at|
                     -> Result<(), ConfigError> {
                        let s = Rfc9421Signer::new(
                            &label,
                            *alg,
                            material,
                            keyid,
                            tag.as_deref(),
                            *expires_secs,
                        )
                        .map_err(key_err)?;
                        signer.rfc9421.push(Timed {
                            inner: s,
                            retire_at,
                        });
                        Ok(())
                    };
                    if let Some(dir) = keyring {
                        for ((key, keyid, selector), retire_at) in
                            keydir_keys(dir).map_err(key_err)?
                        {
                            push(
                                // One label per selector: `<selector>` or `<label>-<selector>`.
                                label
                                    .as_ref()
                                    .map_or(selector.clone(), |l| format!("{l}-{selector}")),
                                SigningMaterial::Private(key),
                                &keyid,
                                retire_at,
                            )?;
                        }
                    } else {
                        let keyid = keyid
                            .as_deref()
                            .ok_or_else(|| invalid("keyid is required"))?;
                        let label = label.clone().unwrap_or(default_label);
                        let material = if *alg == Algorithm::HmacSha256 {
                            let text = key_text(&None, secret_env, secret)
                                .map_err(key_err)?
                                .ok_or_else(|| invalid("hmac-sha256 needs secret or secret_env"))?;
                            SigningMaterial::Secret(Secret::parse(&text).map_err(key_err)?)
                        } else {
                            let text = key_text(key_file, key_env, &None)
                                .map_err(key_err)?
                                .ok_or_else(|| invalid("needs key_file or key_env"))?;
                            SigningMaterial::Private(PrivateKey::parse(&text).map_err(key_err)?)
                        };
                        push(label, material, keyid, None)?;
                    }
                }
                SigningConfig::Cavage {
                    keyid,
                    key_file,
                    key_env,
                    keyring,
                    account_id,
                    account_header,
                    profile,
                } => {
                    let header = account_header
                        .clone()
                        .unwrap_or_else(|| profile.default_account_header().to_owned());
                    let account = account_id.clone().map(|id| (header, id));
                    if *profile == crate::cavage::Profile::Smtpeter {
                        if account.is_none() {
                            return Err(invalid(
                                "profile \"smtpeter\" needs account_id (sent as x-copernica-id, which SMTPeter receivers require)",
                            ));
                        }
                    }
                    let profile = *profile;
                    if let Some(dir) = keyring {
                        for ((key, keyid, _), retire_at) in keydir_keys(dir).map_err(key_err)? {
                            let PrivateKey::Rsa(k) = key else {
                                return Err(invalid("cavage needs RSA keys"));
                            };
                            crate::smtpeter::check_key(profile, &k)
                                .map_err(|e| invalid(&e.to_string()))?;
                            signer.cavage.push(Timed {
                                inner: CavageSigner::new(k, &keyid, account.clone())
                                    .with_profile(profile),
                                retire_at,
                            });
                        }
                    } else {
                        let keyid = keyid
                            .as_deref()
                            .ok_or_else(|| invalid("keyid is required"))?;
                        let text = key_text(key_file, key_env, &None)
                            .map_err(key_err)?
                            .ok_or_else(|| invalid("needs key_file or key_env"))?;
                        let PrivateKey::Rsa(k) = PrivateKey::parse(&text).map_err(key_err)? else {
                            return Err(invalid("cavage needs an RSA key"));
                        };
                        crate::smtpeter::check_key(profile, &k)
                            .map_err(|e| invalid(&e.to_string()))?;
                        signer.cavage.push(Timed::forever(
                            CavageSigner::new(k, keyid, account).with_profile(profile),
                        ));
                    }
                }
                SigningConfig::Bearer { token, token_env } => {
                    let token = key_text(&None, token_env, token)
                        .map_err(key_err)?
                        .unwrap_or_default();
                    signer.auth.push(auth::bearer_header(token.trim()));
                }
                SigningConfig::Basic {
                    username,
                    password,
                    password_env,
                } => {
                    let password = key_text(&None, password_env, password)
                        .map_err(key_err)?
                        .unwrap_or_default();
                    signer.auth.push(auth::basic_header(
                        username,
                        password.trim_end_matches('\n'),
                    ));
                }
            }
        }
        let mut labels: Vec<&str> = signer.rfc9421.iter().map(|s| s.inner.label()).collect();
        labels.sort_unstable();
        if labels.windows(2).any(|w| w[0] == w[1]) {
            return Err(ConfigError::Invalid {
                index: configs.len().saturating_sub(1),
                scheme: "rfc9421",
                message: "two RFC 9421 signatures share a label: set distinct `label`s".into(),
            });
        }
        if !signer.rfc9421.is_empty() && !signer.cavage.is_empty() {
            return Err(ConfigError::Invalid {
                index: configs.len().saturating_sub(1),
                scheme: "cavage",
                message: "rfc9421 and cavage both need the Signature header: use one per endpoint"
                    .into(),
            });
        }
        if signer.auth.len() > 1 {
            return Err(ConfigError::Invalid {
                index: 0,
                scheme: "bearer",
                message: "only one of bearer/basic per endpoint".into(),
            });
        }
        Ok(signer)
    }

    /// The headers to add to the request at `now` (unix seconds): `webhook-id` always, then
    /// `webhook-timestamp`/`webhook-signature`, `content-digest`/`signature-input`/`signature`,
    /// the cavage headers, `authorization`, as configured. The caller sets `content-type`.
    pub fn sign(
        &self,
        req: &RequestParts<'_>,
        now: i64,
    ) -> Result<Vec<(String, String)>, SignError> {
        let mut out = vec![(sw::HEADER_ID.to_owned(), req.webhook_id.to_owned())];
        let sigs: Vec<String> = self
            .standard_webhooks
            .iter()
            .filter(|k| k.active(now))
            .map(|k| match &k.inner {
                SwKey::V1(s) => sw::sign_v1(s.as_bytes(), req.webhook_id, now, req.body),
                SwKey::V1a(k) => sw::sign_v1a(k, req.webhook_id, now, req.body),
            })
            .collect();
        if !sigs.is_empty() {
            out.push((sw::HEADER_TIMESTAMP.into(), now.to_string()));
            out.push((sw::HEADER_SIGNATURE.into(), sigs.join(" ")));
        }
        let mut inputs = Vec::new();
        let mut signatures = Vec::new();
        for s in self.rfc9421.iter().filter(|s| s.active(now)) {
            let (input, sig) = s.inner.sign(req, now)?;
            inputs.push(input);
            signatures.push(sig);
        }
        if !inputs.is_empty() {
            out.push((
                rfc9421::HEADER_CONTENT_DIGEST.into(),
                req.content_digest.header_value(),
            ));
            out.push((rfc9421::HEADER_SIGNATURE_INPUT.into(), inputs.join(", ")));
            out.push((rfc9421::HEADER_SIGNATURE.into(), signatures.join(", ")));
        }
        // A cavage receiver takes one signature: the newest active key.
        if let Some(c) = self.cavage.iter().rev().find(|c| c.active(now)) {
            out.extend(c.inner.sign(req, now)?);
        }
        out.extend(self.auth.iter().cloned());
        Ok(out)
    }

    /// True when nothing is configured (the request would carry no proof of origin).
    pub fn is_empty(&self) -> bool {
        self.standard_webhooks.is_empty()
            && self.rfc9421.is_empty()
            && self.cavage.is_empty()
            && self.auth.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The deliver worker shares one Signer per endpoint across tasks.
    #[test]
    fn signer_and_verifier_are_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Signer>();
        check::<crate::Verifier>();
    }

    #[test]
    fn debug_output_has_no_credentials() {
        let signer = Signer::from_config(&[
            SigningConfig::Bearer {
                token: Some("t0ps3cret".into()),
                token_env: None,
            },
            SigningConfig::standard_webhooks_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ])
        .unwrap();
        let text = format!("{signer:?}");
        assert!(
            !text.contains("t0ps3cret") && !text.contains("MfKQ9r8G"),
            "{text}"
        );
    }

    #[test]
    fn webhook_id_is_always_sent_and_nothing_else_without_config() {
        let digest = crate::ContentDigest::of(b"{}");
        let req = RequestParts {
            method: "POST",
            url: "https://example.com/",
            content_type: "application/json",
            webhook_id: "msg_9",
            body: b"{}",
            content_digest: &digest,
        };
        let signer = Signer::default();
        assert!(signer.is_empty());
        assert_eq!(
            signer.sign(&req, 1).unwrap(),
            vec![("webhook-id".to_owned(), "msg_9".to_owned())]
        );
    }
}
