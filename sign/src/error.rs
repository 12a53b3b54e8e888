//! Typed errors. Signing and key loading fail on configuration or infrastructure; verification
//! failures are verdicts that name the rule the request broke.

/// A key or secret could not be loaded, parsed or generated.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("environment variable {0} is not set")]
    Env(String),
    #[error("not a PEM-encoded Ed25519 or RSA key")]
    Pem,
    #[error("bad base64 in {0}")]
    Base64(&'static str),
    #[error("{0} has the wrong length")]
    Length(&'static str),
    #[error("unknown key type {0:?} (expected ed25519 or rsa)")]
    UnknownType(String),
    #[error("bad key record: {0}")]
    Record(String),
    #[error("the key record is revoked (empty p=)")]
    Revoked,
    #[error("cannot encode the key: {0}")]
    Encode(String),
    #[error("key generation failed: {0}")]
    Generate(String),
}

/// A request could not be signed. Never retryable by waiting: the key or the URL is wrong.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the target URL {0:?} is not an absolute http(s) URL")]
    Url(String),
    #[error("signing with {alg} failed: {reason}")]
    Crypto { alg: &'static str, reason: String },
    #[error("no randomness for a nonce: {0}")]
    Random(String),
}

impl SignError {
    /// Signing errors come from the configuration or the key, never from a passing condition.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SignError::Random(_))
    }
}

/// Why a request was refused. Every variant but [`VerifyError::KeyLookup`] is a verdict on the
/// request; `KeyLookup` means "could not decide" (DNS unreachable) and is worth retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the request carries no signature of an accepted scheme")]
    NoSignature,
    #[error("missing {0} header")]
    MissingHeader(String),
    #[error("malformed {0}")]
    Malformed(String),
    #[error("the signature does not cover the required component {0}")]
    MissingComponent(String),
    #[error("no key is known for keyid {0:?}")]
    UnknownKey(String),
    #[error("keyid {0:?} is outside the allowed key domains")]
    KeyIdNotAllowed(String),
    #[error("the request claims algorithm {claimed:?} but the key is for {key:?}")]
    AlgorithmMismatch { claimed: String, key: String },
    #[error("the key for {keyid:?} is of type {key_type}, which this scheme cannot use")]
    WrongKeyType { keyid: String, key_type: String },
    #[error("the signature was created too long ago")]
    Stale,
    #[error("the signature was created in the future")]
    FromFuture,
    #[error("the signature has expired")]
    Expired,
    #[error("the body does not match its digest")]
    DigestMismatch,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the request was already seen (replayed {0})")]
    Replayed(String),
    #[error("the credentials do not match")]
    BadCredentials,
    #[error("cannot look up the key: {0}")]
    KeyLookup(String),
}

impl VerifyError {
    /// True only for infrastructure failures (key lookup); a receiver answers those with a 5xx
    /// so the sender retries, and every other error with a 401.
    pub fn is_retryable(&self) -> bool {
        matches!(self, VerifyError::KeyLookup(_))
    }
}
