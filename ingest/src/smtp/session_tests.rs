//! Sans-IO tests of the SMTP session: pipelining, DATA across reads, reply mapping.

use super::*;

fn session() -> Session {
    let cfg = crate::test_config::acme();
    let limits = SessionLimits::new(&cfg);
    let clients = Arc::new(crate::smtp::admission::Unlimited);
    Session::new(
        Arc::new(limits),
        Arc::new(cfg.router()),
        clients,
        "192.0.2.1".parse().unwrap(),
    )
}

/// Feeds bytes and collects every step until input runs dry.
fn feed(s: &mut Session, bytes: &[u8]) -> Vec<Step> {
    let mut buf = BytesMut::from(bytes);
    std::iter::from_fn(|| s.advance(&mut buf)).collect()
}

fn codes(steps: &[Step]) -> Vec<u16> {
    steps
        .iter()
        .map(|s| match s {
            Step::Reply(r) | Step::Close(r) | Step::StartTls(r) => r.code,
            Step::Deliver(_) => 0,
        })
        .collect()
}

#[test]
fn pipelined_transaction_in_one_read() {
    let mut s = session();
    let steps = feed(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<support@acme.test>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(codes(&steps), [250, 250, 250, 354, 0, 221]);
    let Step::Deliver(tx) = &steps[4] else {
        panic!("no transaction")
    };
    assert_eq!(tx.body, b"Subject: x\r\n\r\nhi\r\n");
    assert_eq!(tx.rcpts[0].1.route, "support");
    assert!(s.is_closed());
}

#[test]
fn finish_maps_publish_failures() {
    use crate::smtp::transaction::{PublishFailure, finished};
    assert_eq!(finished(&Ok(vec!["m1".into()])).code, 250);
    assert_eq!(finished(&Err(PublishFailure::Unavailable)).code, 451);
    assert_eq!(finished(&Err(PublishFailure::Full)).code, 452);
}

#[test]
fn data_split_across_reads() {
    let mut s = session();
    let mut buf = BytesMut::new();
    let run = |s: &mut Session, buf: &mut BytesMut, bytes: &[u8]| {
        buf.extend_from_slice(bytes);
        codes(&std::iter::from_fn(|| s.advance(buf)).collect::<Vec<_>>())
    };
    assert_eq!(
        run(
            &mut s,
            &mut buf,
            b"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<support@acme.test>\r\nDA"
        ),
        [250, 250, 250]
    );
    assert_eq!(run(&mut s, &mut buf, b"TA\r\nSubject: par"), [354]);
    assert!(s.in_data());
    assert!(
        run(&mut s, &mut buf, b"t\r\n\r\nbody\r\n.").is_empty(),
        "no end without CRLF"
    );
    assert_eq!(run(&mut s, &mut buf, b"\r\nRSET\r\n"), [0, 250]);
    assert!(!s.in_data());
}
