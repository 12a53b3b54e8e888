//! A plugin that misbehaves on purpose, for the host's limit tests. Config
//! `{ "do": "loop" | "alloc" | "file" | "socket" | "panic" | "error" | "pass" }`.

use postwire_guest_sdk::{Error, Event, Outcome, Value};

fn transform(event: Event) -> Result<Outcome, Error> {
    let cfg: Value = postwire_guest_sdk::config()?;
    match cfg.get("do").and_then(Value::as_str).unwrap_or("") {
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "file" => match std::fs::read_to_string("/etc/passwd") {
            Ok(s) => Outcome::deliver(&serde_json::json!({ "leaked": s })),
            Err(e) => Err(Error::Failed(format!("reading /etc/passwd: {e}"))),
        },
        "socket" => match std::net::TcpStream::connect("127.0.0.1:4222") {
            Ok(_) => Outcome::deliver(&serde_json::json!({ "connected": true })),
            Err(e) => Err(Error::Failed(format!("connecting to 127.0.0.1:4222: {e}"))),
        },
        "panic" => panic!("this plugin panics on purpose"),
        "error" => Err(Error::Failed("this plugin fails on purpose".into())),
        "pass" => Outcome::deliver(&event),
        other => Err(Error::InvalidConfig(format!("unknown action {other:?}"))),
    }
}

postwire_guest_sdk::plugin!(transform);
