//! A plugin that misbehaves on purpose, for the host's limit tests. Config
//! `{ "do": "loop" | "alloc" | "alloc_mb" | "file" | "socket" | "panic" | "print" | "stderr"
//!   | "print_pass" | "invalid_output" | "error" | "pass" | "remember" }` (`alloc_mb` takes
//! `"mb": N`).
//!
//! `remember` looks for what earlier messages left in this instance (a global, the heap, the
//! size of the linear memory), then leaves its own message's subject there and writes a
//! 16 MiB heap block: with a fresh instance per message it always reports nothing seen.

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
        "alloc_mb" => {
            let mb = cfg.get("mb").and_then(Value::as_u64).unwrap_or(1) as usize;
            let block = vec![1u8; mb << 20];
            let sum: u64 = block.iter().step_by(4096).map(|b| u64::from(*b)).sum();
            Outcome::deliver(&serde_json::json!({ "allocated_mb": mb, "pages": sum }))
        }
        "panic" => panic!("this plugin panics on purpose"),
        "print" => {
            println!("print: about to fail, subject {:?}", event.message.subject);
            Err(Error::Failed("printed to stdout, then failed".into()))
        }
        "stderr" => {
            eprintln!("stderr: something went wrong");
            Err(Error::Failed("wrote to stderr, then failed".into()))
        }
        "print_pass" => {
            println!("print_pass: looked at the mail");
            eprintln!("print_pass: and said so on stderr");
            Outcome::deliver(&event)
        }
        "remember" => remember(&event),
        "invalid_output" => Ok(Outcome::Route(Vec::new())),
        "error" => Err(Error::Failed("this plugin fails on purpose".into())),
        "pass" => Outcome::deliver(&event),
        other => Err(Error::InvalidConfig(format!("unknown action {other:?}"))),
    }
}

/// Subjects of the messages this instance saw before (a global and its heap buffer).
static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn remember(event: &Event) -> Result<Outcome, Error> {
    let pages_at_start = core::arch::wasm32::memory_size(0);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    let seen_before = seen.clone();
    seen.push(event.message.subject.clone().unwrap_or_default());
    // Dirty many pages past the initial image, as an interpreter's heap does.
    let block = vec![0xA5u8; 16 << 20];
    std::hint::black_box(&block);
    Outcome::deliver(&serde_json::json!({
        "seen_before": seen_before,
        "memory_pages_at_start": pages_at_start,
    }))
}

postwire_guest_sdk::plugin!(transform);
