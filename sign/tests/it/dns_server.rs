//! A tiny authoritative DNS server for tests: TXT records from a map, NXDOMAIN otherwise,
//! over UDP on 127.0.0.1:<free port>. Stops when dropped.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::TXT;
use hickory_resolver::proto::rr::{RData, Record, RecordType};

type Zone = Arc<Mutex<HashMap<String, String>>>;

pub struct DnsServer {
    pub addr: SocketAddr,
    zone: Zone,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn key(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

impl DnsServer {
    pub fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let zone: Zone = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (z, s) = (zone.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, peer)) = socket.recv_from(&mut buf) {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
                reply.metadata.recursion_desired = query.metadata.recursion_desired;
                reply.metadata.authoritative = true;
                reply.add_queries(query.queries.iter().cloned());
                let txt = query.queries.first().and_then(|q| {
                    let name = key(&q.name().to_ascii());
                    let found = z.lock().unwrap().get(&name).cloned();
                    found.map(|t| (q.name().clone(), q.query_type(), t))
                });
                match txt {
                    Some((name, RecordType::TXT, text)) => {
                        let strings = text
                            .as_bytes()
                            .chunks(255)
                            .map(|c| String::from_utf8_lossy(c).into_owned())
                            .collect();
                        reply.add_answer(Record::from_rdata(
                            name,
                            1,
                            RData::TXT(TXT::new(strings)),
                        ));
                    }
                    Some(_) => {}
                    None => reply.metadata.response_code = ResponseCode::NXDomain,
                }
                if let Ok(bytes) = reply.to_vec() {
                    let _ = socket.send_to(&bytes, peer);
                }
            }
        });
        DnsServer {
            addr,
            zone,
            stop,
            thread: Some(thread),
        }
    }

    pub fn set(&self, name: &str, txt: &str) {
        self.zone.lock().unwrap().insert(key(name), txt.to_owned());
    }

    pub fn remove(&self, name: &str) {
        self.zone.lock().unwrap().remove(&key(name));
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the server thread up so it sees the flag.
        if let Ok(s) = UdpSocket::bind("127.0.0.1:0") {
            let _ = s.send_to(b"stop", self.addr);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
