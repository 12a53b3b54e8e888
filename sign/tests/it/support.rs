//! Shared fixtures: keys, a signed request as a receiver captures it, and a hand-made RFC 9421
//! signer for requests postwire itself would never produce.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::Signer as _;
use hmac::{KeyInit, Mac};
use postwire_sign::capture::Captured;
use postwire_sign::keys::{KeyType, PrivateKey};
use postwire_sign::{ContentDigest, RequestParts, Signer, SigningConfig};

pub const NOW: i64 = 1_763_900_000;
pub const URL: &str = "https://hooks.acme.example/in?src=postwire";
pub const BODY: &[u8] = br#"{"schema":"postwire.email.v1","id":"msg_1"}"#;
pub const KEYID: &str = "s1._postwire.acme.example";

pub fn ed25519() -> PrivateKey {
    PrivateKey::generate(KeyType::Ed25519).unwrap()
}

pub fn ed25519_inner(k: &PrivateKey) -> &ed25519_dalek::SigningKey {
    match k {
        PrivateKey::Ed25519(k) => k,
        PrivateKey::Rsa(_) => unreachable!(),
    }
}

/// An RSA key, generated once per test binary (generation takes a moment).
pub fn rsa() -> PrivateKey {
    static KEY: std::sync::OnceLock<PrivateKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(KeyType::Rsa).unwrap())
        .clone()
}

/// Writes `key` as PEM into a temporary file and returns its path (kept for the process).
pub fn key_file(key: &PrivateKey) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("postwire-sign-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "k{}.pem",
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    std::fs::write(&path, key.to_pem().unwrap()).unwrap();
    path
}

pub fn config(toml_text: &str) -> Vec<SigningConfig> {
    #[derive(serde::Deserialize)]
    struct F {
        signing: Vec<SigningConfig>,
    }
    toml::from_str::<F>(toml_text).unwrap().signing
}

/// What the receiver gets when `signer` signs a delivery of `BODY` to `URL` at `at`.
pub fn signed(signer: &Signer, at: i64) -> Captured {
    let digest = ContentDigest::of(BODY);
    let parts = RequestParts {
        method: "POST",
        url: URL,
        content_type: "application/json",
        webhook_id: "msg_1",
        body: BODY,
        content_digest: &digest,
    };
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    headers.extend(signer.sign(&parts, at).unwrap());
    headers.push(("Host".into(), "hooks.acme.example".into()));
    Captured {
        method: "POST".into(),
        url: URL.into(),
        headers,
        body: BODY.to_vec(),
    }
}

pub fn set_header(req: &mut Captured, name: &str, value: &str) {
    req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    req.headers.push((name.to_owned(), value.to_owned()));
}

/// How a hand-made RFC 9421 signature is computed.
pub enum Forge<'a> {
    Ed25519(&'a ed25519_dalek::SigningKey),
    Hmac(&'a [u8]),
}

/// Signs `req` like an RFC 9421 client would, covering `components` with `params` (already
/// serialised, e.g. `created=1;keyid="k"`), and sets the three headers.
pub fn forge(req: &mut Captured, components: &[&str], params: &str, with: Forge<'_>) {
    set_header(
        req,
        "content-digest",
        &ContentDigest::of(&req.body).header_value(),
    );
    let list: Vec<String> = components.iter().map(|c| format!("\"{c}\"")).collect();
    let sig_params = format!("({});{params}", list.join(" "));
    let mut base = String::new();
    for c in components {
        let value = match *c {
            "@method" => req.method.clone(),
            "@target-uri" => req.url.clone(),
            name => req.header(name).unwrap(),
        };
        base.push_str(&format!("\"{c}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {sig_params}"));
    let sig = match with {
        Forge::Ed25519(k) => k.sign(base.as_bytes()).to_bytes().to_vec(),
        Forge::Hmac(secret) => {
            let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).unwrap();
            m.update(base.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
    };
    set_header(req, "signature-input", &format!("sig1={sig_params}"));
    set_header(req, "signature", &format!("sig1=:{}:", B64.encode(sig)));
}

pub const ALL: [&str; 5] = [
    "@method",
    "@target-uri",
    "content-digest",
    "content-type",
    "webhook-id",
];
