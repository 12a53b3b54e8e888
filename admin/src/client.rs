//! A client of the admin API (what `postwire tenants …` and `postwire api …` use): bearer
//! token, JSON bodies, and RFC 9457 problems turned into a readable [`ClientError`].

use serde_json::Value;

/// Why an admin API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The call was asked for wrongly (bad address, method or body).
    #[error("{0}")]
    Usage(String),
    /// The API did not answer.
    #[error("cannot reach the admin API at {base}: {error}")]
    Unreachable { base: String, error: String },
    /// The API answered with a problem.
    #[error("{status} {title}: {detail}{}", field.as_ref().map(|f| format!(" (at {f})")).unwrap_or_default())]
    Problem {
        status: u16,
        title: String,
        detail: String,
        field: Option<String>,
    },
}

pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:8026`) with a bearer `token`.
    pub fn new(base: &str, token: String) -> Result<Client, ClientError> {
        let base = base.trim_end_matches('/').to_string();
        url::Url::parse(&base).map_err(|e| ClientError::Usage(format!("--api {base:?}: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        Ok(Client { base, token, http })
    }

    /// Calls the API; a problem document becomes [`ClientError::Problem`].
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let body = match body {
            Some(b) => Some((
                "application/json",
                serde_json::to_vec(&b).map_err(|e| ClientError::Usage(e.to_string()))?,
            )),
            None => None,
        };
        self.send(method, path, body).await
    }

    /// Calls the API with a body of any type (`("application/wasm", bytes)`).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Value, ClientError> {
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ClientError::Usage(format!("{method:?} is not an HTTP method")))?;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some((kind, bytes)) = body {
            req = req.header("content-type", kind).body(bytes);
        }
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            base: self.base.clone(),
            error: e.to_string(),
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let text = resp.text().await.map_err(unreachable)?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(value);
        }
        let s = |k: &str| {
            value
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Err(ClientError::Problem {
            status: status.as_u16(),
            title: s("title"),
            detail: s("detail"),
            field: Some(s("field")).filter(|f| !f.is_empty()),
        })
    }
}

/// A path segment or query value, percent-encoded.
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
