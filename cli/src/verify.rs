//! `postwire verify`: checks captured requests under any scheme postwire signs with, and the
//! hidden `postwire sign-request` that produces such captures (for tests and debugging).
//!
//! Capture files are JSON (`{"method", "url", "headers": [[name, value], …], "body" |
//! "body_base64"}`) or raw HTTP/1.1 text; see `postwire_sign::capture`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use postwire_sign::capture::Captured;
use postwire_sign::keyring::KeyRing;
use postwire_sign::keys::{PublicKey, Secret};
use postwire_sign::{ContentDigest, RequestParts, Scheme, Signer, SigningConfig, Verifier};

use crate::keys::{now, read_public};
use crate::tools::Failure;

#[derive(Args)]
pub struct VerifyArgs {
    /// Captured request files (JSON or raw HTTP/1.1); all must verify. Replays among them are
    /// detected.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Accept only this scheme: standard-webhooks, rfc9421, cavage, bearer, basic (default: the
    /// strongest one present).
    #[arg(long)]
    scheme: Option<Scheme>,
    /// A Standard Webhooks secret (`whsec_…`) for v1; repeatable.
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// A public key KEYID=FILE (PEM or whpk_ text in the file); repeatable.
    #[arg(long = "public-key", value_name = "KEYID=FILE")]
    public_keys: Vec<String>,
    /// An HMAC secret KEYID=whsec_… for RFC 9421 hmac-sha256; repeatable.
    #[arg(long = "hmac-secret", value_name = "KEYID=SECRET")]
    hmac_secrets: Vec<String>,
    /// Fetch keys from DNS for keyids under this domain; repeatable. Without it, no DNS.
    #[arg(long = "allow-domain")]
    allow_domains: Vec<String>,
    /// Name server for key lookups, IP:PORT (default: the system's resolver).
    #[arg(long)]
    dns_server: Option<SocketAddr>,
    /// keyid of an Ed25519 key in DNS for Standard Webhooks v1a; repeatable.
    #[arg(long = "v1a-keyid")]
    v1a_keyids: Vec<String>,
    /// A bearer token to accept; repeatable.
    #[arg(long = "bearer")]
    bearer: Vec<String>,
    /// USER:PASSWORD for basic auth; repeatable.
    #[arg(long = "basic")]
    basic: Vec<String>,
    /// Allowed clock difference, both ways.
    #[arg(long, default_value_t = 300)]
    tolerance_secs: i64,
    /// RFC 9421: require this tag.
    #[arg(long)]
    tag: Option<String>,
    /// RFC 9421: the components a signature must cover (default: @method @target-uri
    /// content-digest content-type webhook-id); repeatable.
    #[arg(long = "require-component")]
    require_components: Vec<String>,
    /// The current time as unix seconds (default: the clock).
    #[arg(long)]
    now: Option<i64>,
}

fn usage(e: impl std::fmt::Display) -> Failure {
    Failure::Usage(e.to_string())
}

fn pair(s: &str) -> Result<(&str, &str), Failure> {
    s.split_once('=')
        .ok_or_else(|| usage(format!("{s:?} is not KEYID=VALUE")))
}

fn verifier(args: &VerifyArgs) -> Result<Verifier, Failure> {
    let mut keys = KeyRing::new();
    for s in &args.secrets {
        keys.add_secret(None, Secret::parse(s).map_err(usage)?);
    }
    for s in &args.public_keys {
        let (id, file) = pair(s)?;
        let key: PublicKey = read_public(std::path::Path::new(file))?;
        keys.add_public(Some(id.to_owned()), key);
    }
    for s in &args.hmac_secrets {
        let (id, secret) = pair(s)?;
        keys.add_secret(Some(id.to_owned()), Secret::parse(secret).map_err(usage)?);
    }
    let mut v = Verifier::new(keys);
    v.scheme = args.scheme;
    v.tolerance_secs = args.tolerance_secs;
    v.rfc9421.expect_tag = args.tag.clone();
    if !args.require_components.is_empty() {
        v.rfc9421.required_components = args.require_components.clone();
    }
    v.bearer_tokens = args.bearer.clone();
    for b in &args.basic {
        let (u, p) = b
            .split_once(':')
            .ok_or_else(|| usage("--basic takes USER:PASSWORD"))?;
        v.basic_credentials.push((u.into(), p.into()));
    }
    v.standard_webhooks_keyids = args.v1a_keyids.clone();
    Ok(v)
}

pub async fn command(args: VerifyArgs) -> Result<(), Failure> {
    let verifier = verifier(&args)?;
    let dns = if args.allow_domains.is_empty() {
        None
    } else {
        Some(
            match args.dns_server {
                Some(addr) => postwire_sign::dns::DnsKeys::with_server(addr, &args.allow_domains),
                None => postwire_sign::dns::DnsKeys::system(&args.allow_domains),
            }
            .map_err(usage)?,
        )
    };
    let mut failures = 0;
    for file in &args.files {
        let bytes = std::fs::read(file)
            .map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
        let req = Captured::parse(&bytes).map_err(|e| usage(format!("{}: {e}", file.display())))?;
        let at = args.now.unwrap_or_else(now);
        let result = match &dns {
            Some(dns) => dns.verify(&verifier, &req, at).await,
            None => verifier.verify(&req, at),
        };
        match result {
            Ok(v) => println!(
                "{}: verified ({}{})",
                file.display(),
                v.scheme.as_str(),
                v.keyid.map(|k| format!(", keyid {k}")).unwrap_or_default()
            ),
            Err(e) => {
                failures += 1;
                println!("{}: REJECTED: {e}", file.display());
            }
        }
    }
    if failures > 0 {
        return Err(Failure::Failed(format!(
            "{failures} of {} request(s) failed verification",
            args.files.len()
        )));
    }
    Ok(())
}

#[derive(Args)]
pub struct SignRequestArgs {
    /// A TOML file with `[[signing]]` entries, as in an endpoint's configuration.
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    url: String,
    /// The body (default: empty).
    #[arg(long)]
    body_file: Option<PathBuf>,
    #[arg(long, default_value = "msg_test")]
    webhook_id: String,
    #[arg(long, default_value = "application/json")]
    content_type: String,
    /// The signing time as unix seconds (default: the clock).
    #[arg(long)]
    now: Option<i64>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SigningFile {
    signing: Vec<SigningConfig>,
}

/// Prints the signed request as a JSON capture (what `postwire verify` reads).
pub fn sign_request(args: SignRequestArgs) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| usage(format!("{}: {e}", args.config.display())))?;
    let file: SigningFile =
        toml::from_str(&text).map_err(|e| usage(format!("{}: {e}", args.config.display())))?;
    let signer = Signer::from_config(&file.signing).map_err(usage)?;
    let body = match &args.body_file {
        Some(p) => std::fs::read(p).map_err(|e| usage(format!("{}: {e}", p.display())))?,
        None => Vec::new(),
    };
    let digest = ContentDigest::of(&body);
    let parts = RequestParts {
        method: "POST",
        url: &args.url,
        content_type: &args.content_type,
        webhook_id: &args.webhook_id,
        body: &body,
        content_digest: &digest,
    };
    let mut headers = vec![("content-type".to_owned(), args.content_type.clone())];
    headers.extend(
        signer
            .sign(&parts, args.now.unwrap_or_else(now))
            .map_err(|e| Failure::Failed(e.to_string()))?,
    );
    use base64::Engine as _;
    let doc = serde_json::json!({
        "method": "POST",
        "url": args.url,
        "headers": headers,
        "body_base64": base64::engine::general_purpose::STANDARD.encode(&body),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).map_err(|e| Failure::Failed(e.to_string()))?
    );
    Ok(())
}
