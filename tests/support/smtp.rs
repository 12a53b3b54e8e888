//! A raw SMTP line client for conversation tests: send exact bytes, read whole replies.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

/// One reply: the code and its lines' text (after `NNN-` / `NNN `).
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

impl Client {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> (Client, Reply) {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (r, w) = stream.into_split();
        let mut c = Client {
            reader: BufReader::new(r),
            writer: w,
        };
        let greeting = c.reply().await.expect("greeting");
        (c, greeting)
    }

    /// Wraps a stream already written to (e.g. after a PROXY header); reads the greeting.
    pub async fn from_stream(stream: TcpStream) -> Client {
        let (r, w) = stream.into_split();
        let mut c = Client {
            reader: BufReader::new(r),
            writer: w,
        };
        let greeting = c.reply().await.expect("greeting");
        assert_eq!(greeting.code, 220, "{greeting:?}");
        c
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    /// Sends a command line (CRLF appended) and reads its reply.
    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply()
            .await
            .unwrap_or_else(|| panic!("no reply to {line:?}"))
    }

    /// Reads one (possibly multi-line) reply; `None` when the server closed the connection.
    pub async fn reply(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(15), self.reader.read_line(&mut line))
                .await
                .expect("reply in time")
                .ok()?;
            if n == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let code: u16 = line.get(..3)?.parse().ok()?;
            lines.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Some(Reply { code, lines });
            }
        }
    }

    /// EHLO, MAIL, RCPT(s), DATA, content, end; returns the final reply.
    pub async fn send_mail(&mut self, from: &str, to: &[&str], content: &str) -> Reply {
        assert_eq!(self.cmd("EHLO client.test").await.code, 250);
        assert_eq!(self.cmd(&format!("MAIL FROM:<{from}>")).await.code, 250);
        for r in to {
            assert_eq!(self.cmd(&format!("RCPT TO:<{r}>")).await.code, 250);
        }
        assert_eq!(self.cmd("DATA").await.code, 354);
        self.send(content.as_bytes()).await;
        self.cmd(".").await
    }
}

impl Client {
    /// Sends a command and reads the reply, or `None` once the server has closed.
    pub async fn reply_to(&mut self, line: &str) -> Option<Reply> {
        use tokio::io::AsyncWriteExt;
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .ok()?;
        self.reply().await
    }
}
