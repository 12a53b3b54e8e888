//! What a plugin writes to stdout and stderr (a Rust panic message, `print()`, `console.log`,
//! `fprintf(stderr, …)`): kept in memory, bounded, for the log line and the dead letter of
//! the call. Writes past the bound are counted and dropped, never refused: a chatty plugin
//! must not trap because of its own logging.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of output kept per call (stdout and stderr together); the rest is counted.
pub const OUTPUT_LIMIT_BYTES: usize = 8 << 10;

#[derive(Debug, Default)]
struct Buffer {
    kept: Vec<u8>,
    dropped: usize,
}

/// stdout and stderr of one call, interleaved in the order written. Cloned into the WASI
/// context twice (stdout, stderr); the clones share one buffer.
#[derive(Debug, Clone, Default)]
pub(crate) struct CapturedOutput(Arc<Mutex<Buffer>>);

impl CapturedOutput {
    fn push(&self, bytes: &[u8]) {
        let mut b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let room = OUTPUT_LIMIT_BYTES.saturating_sub(b.kept.len());
        let n = bytes.len().min(room);
        b.kept.extend_from_slice(&bytes[..n]);
        b.dropped += bytes.len() - n;
    }

    /// The output as text (invalid UTF-8 replaced), trailing whitespace trimmed, with a note
    /// of how much was dropped. Empty when the plugin wrote nothing.
    pub(crate) fn text(&self) -> String {
        let b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut s = String::from_utf8_lossy(&b.kept).trim().to_string();
        if b.dropped > 0 {
            s.push_str(&format!("\n[{} more bytes of output dropped]", b.dropped));
        }
        s
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready: what does not fit is dropped in `push`.
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_limit_is_counted_not_kept() {
        let out = CapturedOutput::default();
        out.push(b"hello\n");
        out.push(&vec![b'x'; OUTPUT_LIMIT_BYTES]);
        let text = out.text();
        assert!(text.starts_with("hello\nxxx"));
        assert!(text.ends_with("[6 more bytes of output dropped]"), "{text}");
        assert_eq!(text.lines().next(), Some("hello"));
    }
}
