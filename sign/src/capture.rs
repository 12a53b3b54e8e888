//! A received request as a verifier sees it: method, absolute URL, header lines and body.
//!
//! `postwire verify` reads one from a file in either of two formats:
//!
//! * **JSON**: `{"method": "POST", "url": "https://hooks.example.com/in", "headers":
//!   [["content-type", "application/json"], …], "body": "…"}`. `headers` may also be an object
//!   (`{"name": "value"}`); the body is `body` (UTF-8 text) or `body_base64`.
//! * **Raw HTTP/1.1**: the request exactly as it came over the wire (request line, header lines,
//!   blank line, body). The URL is `https://<Host header><request target>` unless the request
//!   line has an absolute URL; the scheme can be overridden (see [`Captured::from_http`]).

use base64::Engine as _;

/// A captured request. Header names compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A capture file that cannot be read as either format.
#[derive(Debug, thiserror::Error)]
#[error("bad captured request: {0}")]
pub struct CaptureError(pub String);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonCapture {
    method: String,
    url: String,
    #[serde(default)]
    headers: JsonHeaders,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_base64: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(untagged)]
enum JsonHeaders {
    #[default]
    None,
    Pairs(Vec<(String, String)>),
    Map(serde_json::Map<String, serde_json::Value>),
}

impl Captured {
    /// Reads JSON when the text starts with `{`, raw HTTP/1.1 otherwise (with `https`).
    pub fn parse(bytes: &[u8]) -> Result<Self, CaptureError> {
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            Self::from_json(bytes)
        } else {
            Self::from_http(bytes, "https")
        }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, CaptureError> {
        let j: JsonCapture =
            serde_json::from_slice(bytes).map_err(|e| CaptureError(e.to_string()))?;
        let headers = match j.headers {
            JsonHeaders::None => Vec::new(),
            JsonHeaders::Pairs(p) => p,
            JsonHeaders::Map(m) => m
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => Ok((k, s)),
                    other => Err(CaptureError(format!("header {k} is not a string: {other}"))),
                })
                .collect::<Result<_, _>>()?,
        };
        let body = match (j.body, j.body_base64) {
            (Some(_), Some(_)) => {
                return Err(CaptureError("both body and body_base64 given".into()));
            }
            (Some(text), None) => text.into_bytes(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| CaptureError("body_base64 is not base64".into()))?,
            (None, None) => Vec::new(),
        };
        Ok(Captured {
            method: j.method,
            url: j.url,
            headers,
            body,
        })
    }

    /// Parses a raw HTTP/1.1 request. `scheme` completes an origin-form target into a URL.
    /// A `Content-Length` shorter than what follows the headers cuts the body; chunked bodies
    /// are not decoded.
    pub fn from_http(bytes: &[u8], scheme: &str) -> Result<Self, CaptureError> {
        let split = find(bytes, b"\r\n\r\n")
            .map(|i| (i, i + 4))
            .or_else(|| find(bytes, b"\n\n").map(|i| (i, i + 2)))
            .ok_or_else(|| CaptureError("no blank line after the headers".into()))?;
        let head = std::str::from_utf8(&bytes[..split.0])
            .map_err(|_| CaptureError("the header section is not UTF-8".into()))?;
        let mut lines = head.lines();
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return Err(CaptureError(format!("bad request line {request_line:?}")));
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // Obsolete line folding: continue the previous value.
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| CaptureError(format!("bad header line {line:?}")))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut body = bytes[split.1..].to_vec();
        let captured = Captured {
            method: method.to_owned(),
            url: String::new(),
            headers,
            body: Vec::new(),
        };
        if let Some(len) = captured.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| CaptureError("bad Content-Length".into()))?;
            body.truncate(len);
        }
        let url = if target.starts_with("http://") || target.starts_with("https://") {
            target.to_owned()
        } else {
            let host = captured
                .header("host")
                .ok_or_else(|| CaptureError("no Host header to complete the URL".into()))?;
            format!("{scheme}://{host}{target}")
        };
        Ok(Captured {
            url,
            body,
            ..captured
        })
    }

    /// The value of header `name`: several lines joined with `, `, as HTTP allows.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

impl Captured {
    /// The value of header `name` when it is given once, or repeated with the same value. A
    /// header repeated with different values is refused: a verifier that took the first and
    /// a proxy that took the last would see different requests.
    pub fn single_header(&self, name: &str) -> Result<Option<String>, crate::VerifyError> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim());
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.any(|v| v != first) {
            return Err(crate::VerifyError::Malformed(format!(
                "{name}: given more than once with different values"
            )));
        }
        Ok(Some(first.to_string()))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_http_and_json_agree() {
        let raw = b"POST /hook?a=1 HTTP/1.1\r\nHost: example.com:8443\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 4\r\n\r\nbody";
        let c = Captured::parse(raw).unwrap();
        assert_eq!(c.url, "https://example.com:8443/hook?a=1");
        assert_eq!(c.header("x-a").as_deref(), Some("1, 2"));
        assert_eq!(c.body, b"body");
        let j = Captured::parse(
            br#"{"method":"POST","url":"https://example.com/h","headers":{"A":"b"},"body_base64":"Ym9keQ=="}"#,
        )
        .unwrap();
        assert_eq!(j.header("a").as_deref(), Some("b"));
        assert_eq!(j.body, b"body");
    }
}
