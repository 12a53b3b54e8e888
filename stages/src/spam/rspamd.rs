//! rspamd's HTTP protocol (`/checkv2`): the raw message as the body, the envelope in request
//! headers (`IP`, `Helo`, `From`, `Rcpt`, `Queue-Id`), a JSON answer with the score, the
//! required score, the action and the symbols.

use std::time::Duration;

use postwire_core::envelope::Envelope;
use postwire_core::event::{Spam, SpamSymbol};
use postwire_core::metrics;
use postwire_core::spam_config::SpamConfig;
use serde::Deserialize;

const CHECKS: &str = "postwire_spam_checks_total";
const CHECKS_HELP: &str = "Mails scored by rspamd, by where (smtp, worker) and result (ok, error).";

/// Why rspamd gave no verdict. Always temporary: the mail is tried again later.
#[derive(Debug, thiserror::Error)]
pub enum SpamError {
    #[error("rspamd did not answer: {0}")]
    Unreachable(String),
    #[error("rspamd answered HTTP {0}")]
    Status(u16),
    #[error("rspamd's answer is not a verdict: {0}")]
    Answer(String),
}

impl SpamError {
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// A client of one rspamd worker.
#[derive(Clone)]
pub struct Rspamd {
    url: url::Url,
    http: reqwest::Client,
    password: Option<String>,
    pub retry_delay: Duration,
}

#[derive(Deserialize)]
struct Answer {
    score: f64,
    required_score: f64,
    action: String,
    #[serde(default)]
    symbols: std::collections::BTreeMap<String, Symbol>,
}

#[derive(Deserialize)]
struct Symbol {
    #[serde(default)]
    score: f64,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    options: Vec<String>,
}

impl Rspamd {
    /// The client, when `[spam] rspamd_url` is set.
    pub fn from_config(cfg: &SpamConfig) -> Option<Rspamd> {
        let url = cfg.check_url()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .ok()?;
        Some(Rspamd {
            url,
            http,
            password: cfg
                .password_env
                .as_ref()
                .and_then(|v| std::env::var(v).ok()),
            retry_delay: Duration::from_millis(cfg.retry_delay_ms),
        })
    }

    /// Scores `raw`, received with `envelope`; `at` names the caller in the metrics.
    pub async fn check(
        &self,
        raw: &[u8],
        envelope: &Envelope,
        queue_id: &str,
        at: &str,
    ) -> Result<Spam, SpamError> {
        let r = self.request(raw, envelope, queue_id).await;
        let result = if r.is_ok() { "ok" } else { "error" };
        metrics::inc(CHECKS, CHECKS_HELP, &[("at", at), ("result", result)]);
        r
    }

    async fn request(
        &self,
        raw: &[u8],
        envelope: &Envelope,
        queue_id: &str,
    ) -> Result<Spam, SpamError> {
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
        let mut headers = HeaderMap::new();
        // A value that cannot be a header (an SMTPUTF8 address) is left out, never an error.
        let mut add = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.append(HeaderName::from_static(name), v);
            }
        };
        add("ip", &envelope.client_ip);
        add("helo", &envelope.helo);
        add("from", &envelope.mail_from);
        add("queue-id", queue_id);
        for r in &envelope.rcpt_to {
            add("rcpt", r);
        }
        if let Some(p) = &self.password {
            add("password", p);
        }
        let req = self
            .http
            .post(self.url.clone())
            .headers(headers)
            .body(raw.to_vec());
        let resp = req
            .send()
            .await
            .map_err(|e| SpamError::Unreachable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(SpamError::Status(resp.status().as_u16()));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| SpamError::Unreachable(e.to_string()))?;
        verdict(&body)
    }
}

/// rspamd's JSON answer as the payload's `spam` (symbols by score, highest first).
pub fn verdict(body: &[u8]) -> Result<Spam, SpamError> {
    let a: Answer = serde_json::from_slice(body).map_err(|e| SpamError::Answer(e.to_string()))?;
    if !a.score.is_finite() || !a.required_score.is_finite() {
        return Err(SpamError::Answer("score is not a number".into()));
    }
    let mut symbols: Vec<SpamSymbol> = a
        .symbols
        .into_iter()
        .map(|(name, s)| SpamSymbol {
            name,
            score: s.score,
            description: s.description,
            options: s.options,
        })
        .collect();
    symbols.sort_by(|x, y| y.score.total_cmp(&x.score).then(x.name.cmp(&y.name)));
    Ok(Spam {
        score: a.score,
        required_score: a.required_score,
        action: a.action,
        symbols,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rspamds_answer() {
        let body = br#"{"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject",
            "symbols":{"GTUBE":{"name":"GTUBE","score":0.0,"metric_score":0.0},
                       "R_SPF_NA":{"name":"R_SPF_NA","score":1.5,"options":["no SPF record"],"description":"Missing SPF"}},
            "messages":{"smtp_message":"Gtube pattern"}}"#;
        let s = verdict(body).unwrap();
        assert_eq!(s.score, 15.0);
        assert_eq!(s.action, "reject");
        assert_eq!(s.symbols[0].name, "R_SPF_NA");
        assert_eq!(s.symbols[0].options, ["no SPF record"]);
        assert_eq!(s.symbols[1].name, "GTUBE");
        assert!(verdict(b"<html>").is_err());
        assert!(verdict(br#"{"action":"x"}"#).is_err());
    }
}
