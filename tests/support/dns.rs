//! A tiny authoritative DNS server on loopback UDP for tests: answers A/AAAA queries from a
//! fixed table, NXDOMAIN otherwise.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub struct DnsServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    /// Serves `records` (lowercase name without trailing dot → address).
    pub async fn start(records: &[(&str, IpAddr)]) -> DnsServer {
        let table: Arc<HashMap<String, Vec<IpAddr>>> =
            Arc::new(records.iter().fold(HashMap::new(), |mut m, (n, ip)| {
                m.entry(n.to_ascii_lowercase())
                    .or_insert_with(Vec::new)
                    .push(*ip);
                m
            }));
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind dns");
        let addr = sock.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(reply) = answer(&buf[..n], &table) {
                    let _ = sock.send_to(&reply, peer).await;
                }
            }
        });
        DnsServer { addr, task }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(q: &[u8], table: &HashMap<String, Vec<IpAddr>>) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    // Question: labels, then QTYPE and QCLASS.
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let question_end = i + 4;
    let name = labels.join(".");
    let ips: Vec<&IpAddr> = table
        .get(&name)
        .map(|v| {
            v.iter()
                .filter(|ip| (qtype == 1 && ip.is_ipv4()) || (qtype == 28 && ip.is_ipv6()))
                .collect()
        })
        .unwrap_or_default();
    let known = table.contains_key(&name);
    let mut r = Vec::with_capacity(512);
    r.extend_from_slice(&q[..2]); // id
    r.extend_from_slice(&[0x84 | (q[2] & 0x01), if known { 0x00 } else { 0x03 }]); // QR AA RD, rcode
    r.extend_from_slice(&[0, 1]); // qdcount
    r.extend_from_slice(&(ips.len() as u16).to_be_bytes()); // ancount
    r.extend_from_slice(&[0, 0, 0, 0]); // nscount, arcount
    r.extend_from_slice(q.get(12..question_end)?);
    for ip in ips {
        r.extend_from_slice(&[0xc0, 0x0c]); // pointer to the question name
        r.extend_from_slice(&qtype.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0, 30]); // class IN, TTL 30
        match ip {
            IpAddr::V4(v4) => {
                r.extend_from_slice(&[0, 4]);
                r.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                r.extend_from_slice(&[0, 16]);
                r.extend_from_slice(&v6.octets());
            }
        }
    }
    Some(r)
}
