//! Amazon SES intake over SNS HTTP(S) subscriptions. A `Received` notification enters the
//! same raw-mail path as SMTP (same publisher, mail ids, claim check and routing), with the
//! content inline (UTF-8 or Base64) or, for the S3 receipt action, read from the bucket.
//! SES's own verdicts travel in `envelope.ses`.

pub mod sns;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use base64::Engine as _;
use object_store::ObjectStoreExt as _;
use postwire_core::config::SesConfig;
use postwire_core::live::LiveConfig;
use serde_json::{Value, json};

use self::sns::{SnsError, SnsMessage, SnsVerifier};
use crate::publish::{PublishFailure, Publisher};
use crate::smtp::Transaction;
use crate::smtp::command::MailParams;

/// What the HTTP layer answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200: stored (or a duplicate, or nothing to do).
    Ok(String),
    /// 403: refused, nothing enqueued.
    Forbidden(String),
    /// 400: not an SNS message.
    BadRequest(String),
    /// 503: try again (SNS retries).
    Unavailable(String),
}

/// Why the SES intake could not be set up (a configuration problem: nothing starts).
#[derive(Debug, thiserror::Error)]
pub enum SesSetupError {
    #[error("ses.ca_file {path}: {source}")]
    CaFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ses.ca_file {path}: {source}")]
    Certificates {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("building the HTTPS client: {0}")]
    Client(#[source] reqwest::Error),
}

pub struct SesIntake<P> {
    cfg: SesConfig,
    verifier: SnsVerifier,
    client: reqwest::Client,
    /// Routing as it is now, read per notification: a domain added through the admin API
    /// is routed from the next one.
    live: Arc<LiveConfig>,
    publisher: Arc<P>,
}

impl<P: Publisher> SesIntake<P> {
    pub fn new(
        cfg: &SesConfig,
        live: Arc<LiveConfig>,
        publisher: Arc<P>,
    ) -> Result<Self, SesSetupError> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .https_only(true);
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path).map_err(|source| SesSetupError::CaFile {
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                SesSetupError::Certificates {
                    path: path.clone(),
                    source,
                }
            })?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let client = b.build().map_err(SesSetupError::Client)?;
        Ok(SesIntake {
            verifier: SnsVerifier::new(cfg.cert_hosts.clone(), client.clone()),
            cfg: cfg.clone(),
            client,
            live,
            publisher,
        })
    }

    pub async fn handle(&self, body: &[u8]) -> Answer {
        let msg: SnsMessage = match serde_json::from_slice(body) {
            Ok(m) => m,
            Err(e) => return Answer::BadRequest(format!("not an SNS message: {e}")),
        };
        if !self.cfg.topic_arns.contains(&msg.topic_arn) {
            return refused(SnsError::Topic(msg.topic_arn.clone()));
        }
        if let Err(e) = self.verifier.verify(&msg).await {
            return refused(e);
        }
        // The Timestamp is signed: an old notification replayed after NATS's duplicate
        // window would be stored again.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if msg.kind == "Notification"
            && let Err(e) = sns::check_fresh(&msg.timestamp, now, self.cfg.max_age_secs)
        {
            return refused(e);
        }
        match msg.kind.as_str() {
            "SubscriptionConfirmation" => self.confirm(&msg).await,
            "Notification" => self.notification(&msg).await,
            _ => Answer::Ok("ignored".into()),
        }
    }

    async fn confirm(&self, msg: &SnsMessage) -> Answer {
        let Some(raw) = &msg.subscribe_url else {
            return Answer::BadRequest("no SubscribeURL".into());
        };
        let url = match sns::vetted_url(raw, &self.cfg.cert_hosts) {
            Ok(u) => u,
            Err(e) => return refused(e),
        };
        match self.client.get(url).send().await {
            Ok(r) if r.status().is_success() => {
                tracing::info!(topic = %msg.topic_arn, "Confirmed the SNS subscription.");
                Answer::Ok("subscription confirmed".into())
            }
            Ok(r) => Answer::Unavailable(format!("confirming answered HTTP {}", r.status())),
            Err(e) => Answer::Unavailable(format!("confirming failed: {e}")),
        }
    }

    async fn notification(&self, msg: &SnsMessage) -> Answer {
        let n: Value = match serde_json::from_str(&msg.message) {
            Ok(v) => v,
            Err(e) => return Answer::BadRequest(format!("the Message is not JSON: {e}")),
        };
        if n["notificationType"] != "Received" {
            return Answer::Ok("not a Received notification; ignored".into());
        }
        let raw = match self.content(&n).await {
            Ok(r) => r,
            Err(a) => return a,
        };
        let mail = &n["mail"];
        let router = self.live.get().router.clone();
        let rcpts: Vec<_> = n["receipt"]["recipients"]
            .as_array()
            .or(mail["destination"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str())
            .filter_map(|r| match router.resolve(r) {
                Ok(dest) => Some((r.to_string(), dest)),
                Err(_) => {
                    tracing::info!("An SES recipient matches no route here; skipping it.");
                    None
                }
            })
            .collect();
        if rcpts.is_empty() {
            return Answer::Ok("no recipient routed here".into());
        }
        let verdict = |k: &str| n["receipt"][k]["status"].clone();
        let ses = json!({
            "message_id": mail["messageId"], "spf": verdict("spfVerdict"), "dkim": verdict("dkimVerdict"),
            "dmarc": verdict("dmarcVerdict"), "spam": verdict("spamVerdict"), "virus": verdict("virusVerdict"),
        });
        let tx = Transaction {
            helo: "amazonses.com".into(),
            client_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            mail_from: mail["source"].as_str().unwrap_or_default().to_string(),
            params: MailParams {
                size: None,
                body: Some("8BITMIME".into()),
                smtputf8: false,
            },
            rcpts,
            body: raw,
            auth: None,
            spam: None,
            tls: None,
            ses: Some(ses),
            spooled: None,
        };
        match self.publisher.publish(tx).await {
            Ok(ids) => Answer::Ok(format!("queued as {}", ids.join(","))),
            Err(PublishFailure::Unavailable | PublishFailure::Full) => {
                Answer::Unavailable("the bus is unavailable".into())
            }
        }
    }

    /// The raw message: inline (UTF-8 or Base64), or from S3 for the S3 action.
    async fn content(&self, n: &Value) -> Result<Vec<u8>, Answer> {
        let action = &n["receipt"]["action"];
        if let Some(content) = n["content"].as_str() {
            return match action["encoding"].as_str() {
                Some("BASE64") => base64::engine::general_purpose::STANDARD
                    .decode(content.trim())
                    .map_err(|e| Answer::BadRequest(format!("bad Base64 content: {e}"))),
                _ => Ok(content.as_bytes().to_vec()),
            };
        }
        if action["type"] == "S3" {
            let (Some(bucket), Some(key)) =
                (action["bucketName"].as_str(), action["objectKey"].as_str())
            else {
                return Err(Answer::BadRequest(
                    "S3 action without bucketName/objectKey".into(),
                ));
            };
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_region(&self.cfg.s3_region)
                .with_virtual_hosted_style_request(!self.cfg.s3_path_style);
            if let Some(ep) = &self.cfg.s3_endpoint {
                b = b
                    .with_endpoint(ep)
                    .with_allow_http(ep.starts_with("http://"));
            }
            let store = b
                .build()
                .map_err(|e| Answer::Unavailable(format!("S3: {e}")))?;
            let got = store.get(&object_store::path::Path::from(key)).await;
            return match got {
                Ok(r) => r
                    .bytes()
                    .await
                    .map(|b| b.to_vec())
                    .map_err(|e| Answer::Unavailable(format!("S3: {e}"))),
                Err(e) => Err(Answer::Unavailable(format!(
                    "S3 object {bucket}/{key}: {e}"
                ))),
            };
        }
        Err(Answer::BadRequest(
            "the notification has no content and no S3 action".into(),
        ))
    }
}

fn refused(e: SnsError) -> Answer {
    tracing::warn!(error = %e, "Refused an SNS request.");
    Answer::Forbidden(e.to_string())
}
