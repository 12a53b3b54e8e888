//! Inline verification for tenants whose authentication policy is `reject`: the check runs
//! after the end of DATA and before the reply, so a DMARC failure the domain owner wants
//! rejected is refused at SMTP time (550 5.7.1) and never bounced later. DNS trouble
//! defers the message (451 4.7.5): the sending MTA retries.
//!
//! Ingest only defines the seam; the implementation (mail-auth) is wired in by the binary.

use std::future::Future;
use std::pin::Pin;

use crate::smtp::Transaction;

/// What inline verification decided about a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InlineVerdict {
    /// Accept; the verdicts (compact JSON) travel with the mail so the worker need not
    /// verify again.
    Accept { auth: Option<String> },
    /// Refuse with 550 5.7.1; the text says why.
    Reject(String),
    /// DNS could not decide: 451 4.7.5, the client retries.
    Defer,
}

pub type VerdictFuture<'a> = Pin<Box<dyn Future<Output = InlineVerdict> + Send + 'a>>;

/// Verifies a complete transaction before DATA is answered.
pub trait InlineVerifier: Send + Sync + 'static {
    fn verify<'a>(&'a self, tx: &'a Transaction) -> VerdictFuture<'a>;

    /// Whether [`InlineVerifier::verify`] reads the content: a message streamed to storage
    /// is read back for it only then.
    fn needs_body(&self, _tx: &Transaction) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::deps::IngestDeps;
    use crate::server::run;
    use crate::{PublishFailure, Publisher};

    struct Counting(Arc<AtomicUsize>, Arc<std::sync::Mutex<Option<String>>>);

    impl Publisher for Counting {
        async fn publish(&self, tx: Transaction) -> Result<Vec<String>, PublishFailure> {
            self.0.fetch_add(1, Ordering::SeqCst);
            *self.1.lock().unwrap() = tx.auth;
            Ok(vec!["m1".into()])
        }
    }

    struct Fixed(InlineVerdict);

    impl InlineVerifier for Fixed {
        fn verify<'a>(&'a self, _tx: &'a Transaction) -> VerdictFuture<'a> {
            let v = self.0.clone();
            Box::pin(async move { v })
        }
    }

    /// One SMTP transaction through the real server with `verdict`; returns the wire output,
    /// the number of publishes and the auth the publisher saw.
    async fn conversation(verdict: InlineVerdict) -> (String, usize, Option<String>) {
        let cfg = crate::test_config::acme();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(None));
        let deps = IngestDeps::new(&cfg, Counting(count.clone(), seen.clone()), None, None)
            .with_verifier(Arc::new(Fixed(verdict)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(vec![listener], deps, async move {
            let _ = stop_rx.await;
        }));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<support@acme.test>\r\nDATA\r\nSubject: s\r\n\r\nhi\r\n.\r\nQUIT\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        client.read_to_string(&mut out).await.unwrap();
        let _ = stop_tx.send(());
        task.await.unwrap();
        let auth = seen.lock().unwrap().clone();
        (out, count.load(Ordering::SeqCst), auth)
    }

    #[tokio::test]
    async fn reject_answers_550_and_publishes_nothing() {
        let (out, published, _) = conversation(InlineVerdict::Reject("DMARC failed".into())).await;
        assert!(
            out.contains("550 5.7.1 Message rejected: DMARC failed"),
            "{out}"
        );
        assert_eq!(published, 0);
    }

    #[tokio::test]
    async fn defer_answers_451_4_7_5() {
        let (out, published, _) = conversation(InlineVerdict::Defer).await;
        assert!(out.contains("451 4.7.5"), "{out}");
        assert_eq!(published, 0);
    }

    #[tokio::test]
    async fn accept_publishes_with_the_verdicts() {
        let auth = Some("{\"spf\":{}}".to_string());
        let (out, published, seen) =
            conversation(InlineVerdict::Accept { auth: auth.clone() }).await;
        assert!(out.contains("250 2.0.0 OK: queued as m1"), "{out}");
        assert_eq!(published, 1);
        assert_eq!(seen, auth);
    }
}
