//! `postwire keys …`: generate key pairs, print their DNS records and JWKS, rotate a key
//! directory. Private keys go to files (mode 0600) or standard output, never to the log.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use postwire_sign::keydir::{KeyDir, write_private};
use postwire_sign::keys::{KeyType, PrivateKey, PublicKey, dns_record};

use crate::tools::Failure;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Generates a key pair (PKCS#8 PEM).
    ///
    /// The private key goes to --out (created with mode 0600) or, without --out, to standard
    /// output; with --out the public key PEM is printed.
    ///
    /// Example: postwire keys generate --alg ed25519 --out /etc/postwire/keys/s1.pem
    ///
    /// Example: postwire keys generate --alg rsa --bits 2048 --out r1.pem   (SMTPeter receivers)
    Generate {
        /// ed25519 or rsa.
        #[arg(long, value_parser = parse_type, default_value = "ed25519")]
        alg: KeyType,
        /// RSA key size, 2048 to 8192 (default 3072). SMTPeter-style receivers read only
        /// 2048-bit keys from DNS (see docs/verifying.md).
        #[arg(long)]
        bits: Option<usize>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Prints the DNS TXT record(s) publishing public keys; the record's name is the keyid.
    ///
    /// Example: postwire keys dns-record --key s1.pem --selector s1 --domain acme.example
    ///
    /// Example: postwire keys dns-record --keyring /etc/postwire/keys/acme
    ///
    /// Example: postwire keys dns-record --key r1.pem --selector r1 --domain acme.example --form smtpeter
    DnsRecord {
        /// `dkim` (`v=DKIM1; k=…; p=…`) or `smtpeter` (`v=DKIM1;k=rsa;p=…`, no spaces, and
        /// refused for keys SMTPeter's parser cannot read: RSA 2048 only).
        #[arg(long, default_value = "dkim", value_parser = ["dkim", "smtpeter"])]
        form: String,
        /// A private or public key file.
        #[arg(long, conflicts_with = "keyring", requires_all = ["selector", "domain"])]
        key: Option<PathBuf>,
        #[arg(long)]
        selector: Option<String>,
        #[arg(long)]
        domain: Option<String>,
        /// A key directory (see `keys rotate`): one record per active selector.
        #[arg(long, required_unless_present = "key")]
        keyring: Option<PathBuf>,
        /// The current time as unix seconds (for tests; default: the clock).
        #[arg(long, hide = true)]
        now: Option<i64>,
    },
    /// Adds a selector to a key directory; the old keys keep signing for an overlap.
    ///
    /// Creates the directory with --domain when it is new. Keys active so far keep signing,
    /// and their DNS records must stay published, for --overlap-secs more.
    ///
    /// Prints the DNS record to publish before the new key is used.
    ///
    /// Example: postwire keys rotate --keyring /etc/postwire/keys/acme --domain acme.example --overlap-secs 604800
    Rotate {
        /// The key directory (keyring.json and one <selector>.pem per key).
        #[arg(long)]
        keyring: PathBuf,
        /// The domain, when the directory is new.
        #[arg(long)]
        domain: Option<String>,
        /// ed25519 or rsa.
        #[arg(long, value_parser = parse_type, default_value = "ed25519")]
        alg: KeyType,
        /// Default: `pw<unix time>`.
        #[arg(long)]
        selector: Option<String>,
        #[arg(long, default_value_t = 7 * 86_400)]
        overlap_secs: i64,
        /// The current time as unix seconds (for tests; default: the clock).
        #[arg(long, hide = true)]
        now: Option<i64>,
        /// The config file whose NATS server receives the rotation's audit record (as the
        /// admin API's rotation writes one). Without it the rotation is not audited, and
        /// `keys rotate` says so on standard error.
        #[arg(long, short, env = "POSTWIRE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Prints the public keys as a JWKS document (for /.well-known/postwire-keys.json).
    ///
    /// Example: postwire keys jwks --keyring /etc/postwire/keys/acme
    Jwks {
        #[arg(long, required_unless_present = "key")]
        keyring: Option<PathBuf>,
        #[arg(long, conflicts_with = "keyring", requires = "keyid")]
        key: Option<PathBuf>,
        #[arg(long)]
        keyid: Option<String>,
    },
}

fn parse_type(s: &str) -> Result<KeyType, postwire_sign::KeyError> {
    s.parse()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn failed(e: impl std::fmt::Display) -> Failure {
    Failure::Failed(e.to_string())
}

fn usage(e: impl std::fmt::Display) -> Failure {
    Failure::Usage(e.to_string())
}

/// A public key from a private or public key file.
pub fn read_public(path: &Path) -> Result<PublicKey, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    PrivateKey::parse(&text)
        .map(|k| k.public_key())
        .or_else(|_| PublicKey::parse(&text))
        .map_err(|e| usage(format!("{}: {e}", path.display())))
}

pub async fn command(cmd: KeysCommand) -> Result<(), Failure> {
    match cmd {
        KeysCommand::Generate { alg, bits, out } => {
            let key = match (alg, bits) {
                (_, None) => PrivateKey::generate(alg).map_err(failed)?,
                (KeyType::Rsa, Some(bits)) => PrivateKey::generate_rsa(bits).map_err(usage)?,
                (_, Some(_)) => return Err(usage("--bits is for --alg rsa")),
            };
            let pem = key.to_pem().map_err(failed)?;
            match out {
                Some(path) => {
                    write_private(&path, &pem).map_err(usage)?;
                    print!("{}", key.public_key().to_pem().map_err(failed)?);
                }
                None => print!("{pem}"),
            }
        }
        KeysCommand::DnsRecord {
            form,
            key,
            selector,
            domain,
            keyring,
            now: at,
        } => {
            let dns_record = |selector: &str, domain: &str, key: &PublicKey| match form.as_str() {
                "smtpeter" => postwire_sign::smtpeter::dns_record(selector, domain, key),
                _ => dns_record(selector, domain, key),
            };
            if let Some(path) = key {
                let (Some(selector), Some(domain)) = (selector, domain) else {
                    return Err(usage("--key needs --selector and --domain"));
                };
                println!(
                    "{}",
                    dns_record(&selector, &domain, &read_public(&path)?).map_err(usage)?
                );
            } else if let Some(dir) = keyring {
                let kd = KeyDir::load(&dir).map_err(usage)?;
                for entry in kd.active(at.unwrap_or_else(now)) {
                    let key = kd.load_key(entry).map_err(usage)?;
                    println!(
                        "{}",
                        dns_record(&entry.selector, &kd.domain, &key.public_key())
                            .map_err(usage)?
                    );
                }
            }
        }
        KeysCommand::Rotate {
            keyring,
            domain,
            alg,
            selector,
            overlap_secs,
            now: at,
            config,
        } => {
            let at = at.unwrap_or_else(now);
            let mut kd = match KeyDir::load(&keyring) {
                Ok(kd) => kd,
                Err(postwire_sign::KeyError::Io { .. }) => {
                    let domain =
                        domain.ok_or_else(|| usage("a new key directory needs --domain"))?;
                    KeyDir::create(&keyring, &domain)
                }
                Err(e) => return Err(usage(e)),
            };
            let selector = selector.unwrap_or_else(|| format!("pw{at}"));
            kd.rotate(&selector, alg, at, overlap_secs).map_err(usage)?;
            kd.save().map_err(failed)?;
            let entry = kd.keys.last().ok_or_else(|| failed("no key added"))?;
            let key = kd.load_key(entry).map_err(failed)?;
            println!(
                "{}",
                dns_record(&selector, &kd.domain, &key.public_key()).map_err(failed)?
            );
            for old in kd
                .keys
                .iter()
                .filter(|k| k.selector != selector && k.is_active(at))
            {
                eprintln!(
                    "keys: {} keeps signing until {} (unix); remove its DNS record after that",
                    kd.keyid(old),
                    old.retire_at.unwrap_or_default()
                );
            }
            let detail = serde_json::json!({
                "keyring": std::fs::canonicalize(&keyring).unwrap_or(keyring).display().to_string(),
                "selector": selector, "alg": alg.to_string(), "overlap_secs": overlap_secs,
            });
            audit_rotation(config.as_deref(), detail).await;
        }
        KeysCommand::Jwks {
            keyring,
            key,
            keyid: id,
        } => {
            let doc = match (key, keyring) {
                (Some(path), _) => {
                    let public = read_public(&path)?;
                    postwire_sign::jwks::jwks([(id.unwrap_or_default().as_str(), &public)])
                }
                (None, Some(dir)) => KeyDir::load(&dir)
                    .and_then(|kd| kd.jwks(now()))
                    .map_err(usage)?,
                (None, None) => return Err(usage("give --keyring or --key")),
            };
            println!("{}", serde_json::to_string_pretty(&doc).map_err(failed)?);
        }
    }
    Ok(())
}

/// Writes the rotation's audit record (`_global`, `keys.rotate`, by `cli:<user>`), the one the
/// admin API writes for its rotation. The keys are rotated by now whatever happens here, so a
/// missing record is a warning on standard error, never a failed command.
async fn audit_rotation(config: Option<&std::path::Path>, detail: serde_json::Value) {
    let Some(config) = config else {
        eprintln!(
            "keys: no audit record written: give --config (or POSTWIRE_CONFIG) to record the rotation on the NATS server"
        );
        return;
    };
    let written = async {
        let js = crate::ops::connect(config).await.map_err(|e| match e {
            Failure::Usage(m) | Failure::Failed(m) => m,
        })?;
        let by = postwire_admin::oplog::cli_user();
        postwire_admin::oplog::try_write(
            &js,
            &by,
            postwire_admin::oplog::NO_TENANT,
            "keys.rotate",
            detail,
        )
        .await
        .map_err(|e| e.to_string())
    };
    match written.await {
        Ok(()) => eprintln!("keys: the rotation is recorded in the audit trail"),
        Err(e) => eprintln!(
            "keys: the keys are rotated, but no audit record was written (NATS of {}): {e}",
            config.display()
        ),
    }
}
