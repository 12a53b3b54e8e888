//! Inline verification for tenants whose authentication policy is `reject`: the check runs
//! after the end of DATA and before the reply, so a DMARC failure the domain owner wants
//! rejected is refused at SMTP time (550 5.7.1) and never bounced later. DNS trouble
//! defers the message (451 4.7.5): the sending MTA retries.
//!
//! Ingest only defines the seam; the implementation (mail-auth, the same verifier the
//! worker runs) is wired in by `postwire_node::inline`.

use std::future::Future;
use std::pin::Pin;

use postwire_core::event::{Auth, Spam};

use crate::smtp::Transaction;

/// What inline verification decided about a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum InlineVerdict {
    /// Accept; the verdicts travel with the mail (`Postwire-Auth`) so the worker does not
    /// verify again.
    Accept {
        auth: Option<Auth>,
        /// rspamd's verdict when the mail was scored at SMTP time (`Postwire-Spam`).
        spam: Option<Spam>,
    },
    /// Refuse with 550 5.7.1; the text says why.
    Reject(String),
    /// DNS could not decide: 451 4.7.5, the client retries.
    Defer,
    /// Another check could not decide (rspamd unreachable): 451 4.7.1 with this text.
    Retry(String),
}

pub type VerdictFuture<'a> = Pin<Box<dyn Future<Output = InlineVerdict> + Send + 'a>>;

/// Verifies a complete transaction before DATA is answered.
pub trait InlineVerifier: Send + Sync + 'static {
    /// Whether this transaction is verified at SMTP time: decided once per transaction,
    /// from the configuration as it is now (a tenant put on `reject` through the admin API
    /// counts from its next transaction). When false the mail is accepted unverified and
    /// the worker verifies it.
    fn applies(&self, tx: &Transaction) -> bool;

    /// Verifies `tx` (whose `body` holds the content, read back from storage if it was
    /// streamed there). Called only when [`InlineVerifier::applies`] said so.
    fn verify<'a>(&'a self, tx: &'a Transaction) -> VerdictFuture<'a>;
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

    struct Counting(Arc<AtomicUsize>, Arc<std::sync::Mutex<Option<Auth>>>);

    impl Publisher for Counting {
        async fn publish(&self, tx: Transaction) -> Result<Vec<String>, PublishFailure> {
            self.0.fetch_add(1, Ordering::SeqCst);
            *self.1.lock().unwrap() = tx.auth;
            Ok(vec!["m1".into()])
        }
    }

    struct Fixed(InlineVerdict);

    impl InlineVerifier for Fixed {
        fn applies(&self, _tx: &Transaction) -> bool {
            true
        }
        fn verify<'a>(&'a self, _tx: &'a Transaction) -> VerdictFuture<'a> {
            let v = self.0.clone();
            Box::pin(async move { v })
        }
    }

    /// One SMTP transaction through the real server with `verdict`; returns the wire output,
    /// the number of publishes and the auth the publisher saw.
    async fn conversation(verdict: InlineVerdict) -> (String, usize, Option<Auth>) {
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
        let auth = Some(
            Auth::from_header(
                r#"{"spf":{"result":"pass","domain":"b.test"},"dmarc":{"result":"pass","policy":null,"aligned":true,"domain":"b.test","spf_aligned":true,"dkim_aligned":false},"authentication_results":"mx.test; dmarc=pass","spf_helo":{"result":"none","domain":"c.test"},"iprev":{"result":"none"}}"#,
            )
            .unwrap(),
        );
        let (out, published, seen) = conversation(InlineVerdict::Accept {
            auth: auth.clone(),
            spam: None,
        })
        .await;
        assert!(out.contains("250 2.0.0 OK: queued as m1"), "{out}");
        assert_eq!(published, 1);
        assert_eq!(seen, auth);
    }

    /// Applies only while `on` is set (as a tenant put on `reject` and back through the
    /// admin API); counts the verifications.
    struct Toggle {
        on: Arc<std::sync::atomic::AtomicBool>,
        verified: Arc<AtomicUsize>,
    }

    impl InlineVerifier for Toggle {
        fn applies(&self, _tx: &Transaction) -> bool {
            self.on.load(Ordering::SeqCst)
        }
        fn verify<'a>(&'a self, _tx: &'a Transaction) -> VerdictFuture<'a> {
            self.verified.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { InlineVerdict::Reject("DMARC failed".into()) })
        }
    }

    #[tokio::test]
    async fn whether_to_verify_is_decided_per_transaction() {
        let cfg = crate::test_config::acme();
        let count = Arc::new(AtomicUsize::new(0));
        let on = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let verified = Arc::new(AtomicUsize::new(0));
        let toggle = Toggle {
            on: on.clone(),
            verified: verified.clone(),
        };
        let deps = IngestDeps::new(&cfg, Counting(count.clone(), Arc::default()), None, None)
            .with_verifier(Arc::new(toggle));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(vec![listener], deps, async move {
            let _ = stop_rx.await;
        }));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut got = Vec::new();
        let mut reply = async |client: &mut tokio::net::TcpStream, send: &[u8], code: &str| {
            client.write_all(send).await.unwrap();
            loop {
                let mut buf = [0u8; 512];
                let read = client.read(&mut buf);
                let n = tokio::time::timeout(std::time::Duration::from_secs(10), read)
                    .await
                    .unwrap_or_else(|_| {
                        panic!("no {code:?} within 10 s: {}", String::from_utf8_lossy(&got))
                    })
                    .unwrap();
                assert!(n > 0, "closed");
                got.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&got).contains(code) {
                    got.clear();
                    return;
                }
            }
        };
        let tx = b"MAIL FROM:<a@b.test>\r\nRCPT TO:<support@acme.test>\r\nDATA\r\nSubject: s\r\n\r\nhi\r\n.\r\n";
        reply(&mut client, b"EHLO c.test\r\n", "250 HELP").await;
        reply(&mut client, tx, "250 2.0.0 OK: queued").await;
        on.store(true, Ordering::SeqCst);
        reply(&mut client, tx, "550 5.7.1 Message rejected: DMARC failed").await;
        on.store(false, Ordering::SeqCst);
        reply(&mut client, tx, "250 2.0.0 OK: queued").await;
        assert_eq!(
            verified.load(Ordering::SeqCst),
            1,
            "verified only while it applied"
        );
        assert_eq!(count.load(Ordering::SeqCst), 2);
        drop(client);
        let _ = stop_tx.send(());
        task.await.unwrap();
    }
}
