//! STARTTLS: a rustls server config whose certificate is read from files and re-read when
//! they change (ACME renewals need no restart). TLS 1.2 and 1.3 only.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// Why the STARTTLS certificate cannot be used (a configuration problem at start; at a
/// reload, the old certificate is kept).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Pem {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path}: no certificate found")]
    NoCertificate { path: String },
    #[error("{path}: {source}")]
    Key {
        path: String,
        #[source]
        source: rustls::Error,
    },
    #[error("{0}")]
    Config(#[source] rustls::Error),
}

/// How often the certificate files are checked for changes.
const RECHECK: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    stamp: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

/// Serves the certificate from `cert_file`/`key_file`, reloading them when they change.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Loaded>,
}

fn mtime(p: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn load(cert_file: &PathBuf, key_file: &PathBuf) -> Result<Arc<CertifiedKey>, TlsError> {
    let pem = |path: &PathBuf| {
        let path = path.display().to_string();
        move |source| TlsError::Pem { path, source }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(pem(cert_file))?
        .collect::<Result<_, _>>()
        .map_err(pem(cert_file))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_file.display().to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(pem(key_file))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::Key {
            path: key_file.display().to_string(),
            source,
        })?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

impl ReloadingCert {
    pub fn new(cert_file: PathBuf, key_file: PathBuf) -> Result<ReloadingCert, TlsError> {
        let key = load(&cert_file, &key_file)?;
        let stamp = (mtime(&cert_file), mtime(&key_file));
        Ok(ReloadingCert {
            current: RwLock::new(Loaded {
                key,
                stamp,
                checked: Instant::now(),
            }),
            cert_file,
            key_file,
        })
    }

    fn refresh(&self) {
        let due = self
            .current
            .read()
            .map(|c| c.checked.elapsed() >= RECHECK)
            .unwrap_or(false);
        if !due {
            return;
        }
        let Ok(mut cur) = self.current.write() else {
            return;
        };
        cur.checked = Instant::now();
        let stamp = (mtime(&self.cert_file), mtime(&self.key_file));
        if stamp == cur.stamp {
            return;
        }
        match load(&self.cert_file, &self.key_file) {
            Ok(key) => {
                cur.key = key;
                cur.stamp = stamp;
                tracing::info!("Reloaded the TLS certificate.");
            }
            // A half-written renewal: keep serving the old certificate, try again later.
            Err(e) => {
                tracing::warn!(error = %e, "The TLS certificate changed but cannot be loaded yet.")
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh();
        self.current.read().ok().map(|c| c.key.clone())
    }
}

/// A TLS acceptor for STARTTLS from certificate and key files.
pub fn acceptor(cert_file: &str, key_file: &str) -> Result<TlsAcceptor, TlsError> {
    let resolver = ReloadingCert::new(cert_file.into(), key_file.into())?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .map_err(TlsError::Config)?
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(resolver));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The STARTTLS acceptor the config asks for, if any.
pub fn from_config(
    cfg: &postwire_core::config::SmtpConfig,
) -> Result<Option<TlsAcceptor>, TlsError> {
    match (&cfg.tls_cert_file, &cfg.tls_key_file) {
        (Some(c), Some(k)) => acceptor(c, k).map(Some),
        _ => Ok(None),
    }
}

/// The protocol version and cipher suite a handshake settled on, for `envelope.tls`.
pub fn info(conn: &rustls::ServerConnection) -> postwire_core::envelope::TlsInfo {
    postwire_core::envelope::TlsInfo {
        version: match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
            other => format!("{other:?}"),
        },
        cipher: conn
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_default(),
    }
}
