//! A clamd client speaking `INSTREAM` (the bytes go over the socket, clamd needs no access to
//! our files) over TCP or a unix socket, with timeouts on connecting and on the whole scan.

use std::time::Duration;

use postwire_core::antivirus_config::ClamdAddress;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Bytes per INSTREAM chunk.
const CHUNK: usize = 64 * 1024;
/// clamd's answers are one short line; anything longer is not clamd.
const MAX_REPLY: usize = 4096;

/// What clamd said about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    Infected(String),
}

/// clamd could not give a verdict: unreachable, too slow, or an `ERROR` reply. Always
/// temporary for the mail.
#[derive(Debug, thiserror::Error)]
#[error("clamd: {0}")]
pub struct ClamdError(pub String);

#[derive(Debug, Clone)]
pub struct Clamd {
    address: ClamdAddress,
    connect_timeout: Duration,
    scan_timeout: Duration,
}

impl Clamd {
    pub fn new(address: ClamdAddress, connect_timeout: Duration, scan_timeout: Duration) -> Self {
        Clamd {
            address,
            connect_timeout,
            scan_timeout,
        }
    }

    /// Scans an attachment's contents with `INSTREAM`, a deferred body decoded chunk by chunk
    /// as it is sent.
    pub async fn scan_body(&self, body: &crate::parse::Body) -> Result<Verdict, ClamdError> {
        let deadline = tokio::time::Instant::now() + self.scan_timeout;
        let connect = tokio::time::timeout(self.connect_timeout.min(self.scan_timeout), async {
            match &self.address {
                ClamdAddress::Tcp(addr) => tokio::net::TcpStream::connect(addr)
                    .await
                    .map(|s| Box::new(s) as Box<dyn Stream>),
                ClamdAddress::Unix(path) => tokio::net::UnixStream::connect(path)
                    .await
                    .map(|s| Box::new(s) as Box<dyn Stream>),
            }
        });
        let mut stream = match connect.await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ClamdError(format!("cannot connect: {e}"))),
            Err(_) => return Err(ClamdError("connecting timed out".into())),
        };
        match tokio::time::timeout_at(deadline, instream(&mut stream, body)).await {
            Ok(r) => r,
            Err(_) => Err(ClamdError(format!(
                "no verdict within {} ms",
                self.scan_timeout.as_millis()
            ))),
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn instream<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    body: &crate::parse::Body,
) -> Result<Verdict, ClamdError> {
    let io = |e: std::io::Error| ClamdError(format!("talking to clamd: {e}"));
    s.write_all(b"zINSTREAM\0").await.map_err(io)?;
    for decoded in body.chunks() {
        for chunk in decoded.chunks(CHUNK) {
            let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            s.write_all(&len.to_be_bytes()).await.map_err(io)?;
            s.write_all(chunk).await.map_err(io)?;
        }
    }
    s.write_all(&0u32.to_be_bytes()).await.map_err(io)?;
    s.flush().await.map_err(io)?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = s.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if reply.contains(&0) || reply.len() > MAX_REPLY {
            break;
        }
    }
    parse_reply(&reply)
}

/// `stream: OK`, `stream: <signature> FOUND`, or `… ERROR`.
pub fn parse_reply(reply: &[u8]) -> Result<Verdict, ClamdError> {
    let end = reply.iter().position(|&b| b == 0).unwrap_or(reply.len());
    let text = String::from_utf8_lossy(&reply[..end.min(MAX_REPLY)]);
    let text = text.trim();
    let body = text.strip_prefix("stream:").map(str::trim);
    match body {
        Some("OK") => Ok(Verdict::Clean),
        Some(b) if b.ends_with(" FOUND") => {
            let sig: String = b
                .trim_end_matches(" FOUND")
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            Ok(Verdict::Infected(sig))
        }
        _ if text.is_empty() => Err(ClamdError("closed the connection without a verdict".into())),
        _ => Err(ClamdError(format!(
            "unexpected reply {:?}",
            text.chars().take(200).collect::<String>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(parse_reply(b"stream: OK\0").unwrap(), Verdict::Clean);
        assert_eq!(
            parse_reply(b"stream: Eicar-Test-Signature FOUND\0").unwrap(),
            Verdict::Infected("Eicar-Test-Signature".into())
        );
        assert!(parse_reply(b"INSTREAM size limit exceeded. ERROR\0").is_err());
        assert!(parse_reply(b"").is_err());
        assert!(parse_reply(&[0xff; 10_000]).is_err());
    }

    #[tokio::test]
    async fn instream_framing_of_a_deferred_body() {
        use crate::parse::deferred::{CHUNK_BYTES, Deferred, measure};
        use base64::Engine as _;
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        let data: Vec<u8> = (0..2 * CHUNK_BYTES + CHUNK + 10)
            .map(|i| (i % 253) as u8)
            .collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
        let (size, _) = measure(encoded.as_bytes()).unwrap();
        let body = crate::parse::Body::Deferred(Deferred::new(encoded.into(), size));
        let srv = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut cmd = [0u8; 10];
            server.read_exact(&mut cmd).await.unwrap();
            assert_eq!(&cmd, b"zINSTREAM\0");
            loop {
                let mut len = [0u8; 4];
                server.read_exact(&mut len).await.unwrap();
                let len = u32::from_be_bytes(len) as usize;
                if len == 0 {
                    break;
                }
                let mut chunk = vec![0u8; len];
                server.read_exact(&mut chunk).await.unwrap();
                got.extend_from_slice(&chunk);
            }
            server.write_all(b"stream: X FOUND\0").await.unwrap();
            got
        });
        let v = instream(&mut client, &body).await.unwrap();
        assert_eq!(v, Verdict::Infected("X".into()));
        assert_eq!(srv.await.unwrap(), data);
    }

    #[tokio::test]
    async fn unreachable_is_an_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let c = Clamd::new(
            ClamdAddress::Tcp(addr),
            Duration::from_secs(2),
            Duration::from_secs(2),
        );
        let body = crate::parse::Body::Held(bytes::Bytes::from_static(b"x"));
        assert!(c.scan_body(&body).await.is_err());
    }
}
