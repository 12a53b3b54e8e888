//! Verifying postwire webhooks in Rust with the `postwire-sign` crate (feature `dns` for keys
//! from DNS): Standard Webhooks v1 and v1a, RFC 9421 with Content-Digest, draft-cavage.
//! Run as a program it reads a test case as JSON on stdin (docs/verifying.md):
//! `cargo run -p postwire-sign --features dns --example verify_webhook < case.json`.

use postwire_sign::capture::Captured;
use postwire_sign::dns::DnsKeys;
use postwire_sign::keyring::KeyRing;
use postwire_sign::keys::{PublicKey, Secret};
use postwire_sign::{Scheme, Verified, Verifier, VerifyError};

/// Standard Webhooks: `v1` with a `whsec_` secret, `v1a` with a `whpk_` public key.
fn verify_standard(
    req: &Captured,
    secret: Option<&str>,
    public_key: Option<&str>,
    now: i64,
) -> Result<Verified, Box<dyn std::error::Error>> {
    let mut keys = KeyRing::new();
    if let Some(secret) = secret {
        keys.add_secret(None, Secret::parse(secret)?);
    }
    let mut verifier = Verifier::new(KeyRing::new());
    if let Some(public_key) = public_key {
        // v1a carries no keyid: name the key and tell the verifier it is for v1a.
        keys.add_public(Some("endpoint".into()), PublicKey::parse(public_key)?);
        verifier.standard_webhooks_keyids = vec!["endpoint".into()];
    }
    verifier.keys = keys;
    verifier.scheme = Some(Scheme::StandardWebhooks);
    Ok(verifier.verify(req, now)?)
}

/// RFC 9421 or draft-cavage, the key fetched from DNS by keyid (only under `domain`); the
/// algorithm comes from the record's `k=`. `dns`: `DnsKeys::system(&[domain])` in production.
async fn verify_with_dns(
    req: &Captured,
    scheme: Scheme,
    dns: &DnsKeys,
    now: i64,
) -> Result<Verified, VerifyError> {
    let mut verifier = Verifier::new(KeyRing::new()); // 5 min tolerance, replay cache
    verifier.scheme = Some(scheme);
    dns.verify(&verifier, req, now).await
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let case: serde_json::Value = serde_json::from_reader(std::io::stdin())?;
    let field = |name: &str| case[name].as_str().map(str::to_owned);
    let req = Captured::from_json(case["request"].to_string().as_bytes())?;
    let now = case["now"].as_i64().ok_or("now is missing")?;
    let result = match field("scheme").as_deref() {
        Some("v1") => verify_standard(&req, field("secret").as_deref(), None, now),
        Some("v1a") => verify_standard(&req, None, field("public_key").as_deref(), now),
        Some(scheme) => {
            let scheme = if scheme == "rfc9421" {
                Scheme::Rfc9421
            } else {
                Scheme::Cavage
            };
            let server = field("dns_server")
                .ok_or("dns_server is missing")?
                .parse()?;
            let dns = DnsKeys::with_server(server, &[field("domain").unwrap_or_default()])?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(verify_with_dns(&req, scheme, &dns, now))
                .map_err(Into::into)
        }
        None => Err("scheme is missing".into()),
    };
    match result {
        Ok(_) => println!("verified"),
        Err(e) => {
            println!("refused: {e}");
            std::process::exit(1);
        }
    }
    Ok(())
}
