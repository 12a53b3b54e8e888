//! A fresh state per message: an instance's memory slot is reused (its written pages copied
//! back from the module's image, see `engine.rs`), but no plugin ever sees what an earlier
//! message left — not in a global, not on the heap, not in the size of its memory — in Rust,
//! Python and JavaScript, one call after the other or from several threads at once.

use serde_json::{Value, json};

use super::tests::{host, sample_event, spec};
use super::*;

/// Runs `name` with `{"do": "remember"}` on a message with `subject`; what it saw before.
fn remember(name: &str, subject: &str) -> Value {
    let mut event = sample_event();
    event["message"]["subject"] = json!(subject);
    let out = host().run_chain(
        &[spec(name, json!({"do": "remember"}))],
        &event,
        &CallTags::default(),
    );
    match out {
        Ok(Outcome::Deliver(v)) => v,
        other => panic!("{name}: {other:?}"),
    }
}

fn sees_nothing_of_earlier_messages(name: &str) -> Vec<Value> {
    (0..4)
        .map(|i| {
            let v = remember(name, &format!("secret of message {i}"));
            assert_eq!(v["seen_before"], json!([]), "{name}, message {i}: {v}");
            v
        })
        .collect()
}

#[test]
fn a_rust_plugin_sees_nothing_of_earlier_messages() {
    let seen = sees_nothing_of_earlier_messages("misbehave");
    // Each instance starts with the module's initial memory, not one grown by the last.
    let pages: Vec<&Value> = seen.iter().map(|v| &v["memory_pages_at_start"]).collect();
    assert!(pages[0].as_u64().is_some_and(|p| p > 0), "{seen:?}");
    assert!(pages.iter().all(|p| *p == pages[0]), "{pages:?}");
}

#[test]
fn a_python_plugin_sees_nothing_of_earlier_messages() {
    sees_nothing_of_earlier_messages("noisy-py");
}

#[test]
fn a_javascript_plugin_sees_nothing_of_earlier_messages() {
    sees_nothing_of_earlier_messages("noisy-js");
}

#[test]
fn concurrent_messages_see_nothing_of_each_other() {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..5 {
                    let v = remember("misbehave", &format!("thread {t}, message {i}"));
                    assert_eq!(v["seen_before"], json!([]), "thread {t}, message {i}: {v}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a thread failed");
    }
}

#[test]
fn written_pages_stay_resident_only_where_the_kernel_can_say_which() {
    use engine::keep_resident_bytes;
    assert_eq!(keep_resident_bytes(false, 128 << 20), 128 << 10);
    assert_eq!(keep_resident_bytes(true, 128 << 20), 32 << 20);
    // Never more than a memory may hold.
    assert_eq!(keep_resident_bytes(true, 4 << 20), 4 << 20);
}

/// The memory reset by `PAGEMAP_SCAN` skips written pages the kernel swapped out (they would
/// reach the next mail): the pool uses it only on a host whose `/proc/swaps` lists no area.
#[test]
fn written_pages_are_scanned_only_on_a_host_without_swap() {
    use engine::swap_may_be_active;
    let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
    assert!(!swap_may_be_active(Some(header)));
    let zram =
        format!("{header}/dev/zram0                              partition\t8388604\t\t0\t\t100\n");
    assert!(swap_may_be_active(Some(&zram)));
    let file =
        format!("{header}/swapfile                               file\t\t2097148\t\t1024\t\t-2\n");
    assert!(swap_may_be_active(Some(&file)));
    // Unreadable: assume it may swap.
    assert!(swap_may_be_active(None));
}

/// Plugin instances alive at once are bounded by what the pool holds in the worst case
/// (`engine::CONCURRENT_INSTANCES`): a further call waits for a slot instead of trapping
/// with "maximum concurrent limit … reached" (a bench run dead-lettered 2 of 1,666 mails that
/// way with the Python plugin at 16 mails in flight).
#[test]
fn a_call_waits_for_a_free_instance_slot() {
    let slots = std::sync::Arc::new(engine::Slots::new(2));
    let (a, b) = (slots.take(), slots.take());
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = {
        let slots = slots.clone();
        std::thread::spawn(move || {
            let _c = slots.take();
            tx.send(()).expect("send");
        })
    };
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(200))
            .is_err(),
        "a third instance got a slot while two were taken"
    );
    drop(a);
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the waiting call got the freed slot");
    waiter.join().expect("waiter");
    drop(b);
}

/// Many calls at once (more than the slots) all succeed, and none sees another's message.
#[test]
fn many_concurrent_calls_all_succeed() {
    let n = engine::CONCURRENT_INSTANCES * 3;
    let start = std::sync::Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|t| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                remember("noisy-py", &format!("thread {t}"))
            })
        })
        .collect();
    for t in threads {
        let v = t.join().expect("a call failed");
        assert_eq!(v["seen_before"], json!([]), "{v}");
    }
}
