//! Runs the real example and test plugins (`make plugins` builds them to `plugins/build`) in
//! the real host.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;

pub(super) fn plugin(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/build")
        .join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run `make plugins` (make test does)",
        p.display()
    );
    p
}

/// The precompiled-component cache the tests share, so each component compiles once.
pub(super) fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("plugin-cache")
}

/// One host for most tests of this module (the engine is built once per process). Its
/// deadline is generous: the tests share two busy cores, and only the deadline test needs
/// the 100 ms default.
pub(super) fn host() -> Arc<Transformer> {
    static HOST: OnceLock<Arc<Transformer>> = OnceLock::new();
    HOST.get_or_init(|| {
        Arc::new(
            Transformer::new(TransformSettings {
                cache_dir: Some(cache_dir()),
                memory_limit_bytes: 64 << 20,
                deadline: Duration::from_secs(5),
                ..Default::default()
            })
            .unwrap(),
        )
    })
    .clone()
}

pub(super) fn spec(name: &str, config: Value) -> PluginSpec {
    PluginSpec {
        path: plugin(name),
        config,
    }
}

pub(crate) fn sample_event() -> Value {
    json!({
        "schema": "postwire.email.v1",
        "id": "",
        "mail_id": "0190b5a4-7a1c-7000-8000-000000000001",
        "tenant": "acme",
        "route": "support",
        "received_at": "2026-11-23T17:00:00Z",
        "envelope": {"mail_from": "alice@example.org", "rcpt_to": ["support@acme.test"],
                     "helo": "mx.example.org", "client_ip": "192.0.2.1", "smtputf8": false,
                     "received_at": "2026-11-23T17:00:00Z"},
        "message": {
            "message_id": "<1@example.org>", "in_reply_to": null, "references": [],
            "date": null, "subject": "Invoice 42 overdue: urgent",
            "from": [{"name": "Alice", "address": "alice@example.org"}],
            "sender": [], "to": [{"name": null, "address": "support@acme.test"}], "cc": [],
            "reply_to": [], "headers": [["Subject", "Invoice 42 overdue: urgent"]],
            "text": "Call me on +44 20 7946 0958 or pay with 4111 1111 1111 1111 today.",
            "html": null, "attachments": []
        },
        "raw": {"size": 100, "sha256": "00"},
        "limits": {"truncated": false, "notes": []}
    })
}

fn run(name: &str, config: Value, event: &Value) -> Result<Outcome, TransformError> {
    host().run_chain(&[spec(name, config)], event, &CallTags::default())
}

fn delivered(o: Result<Outcome, TransformError>) -> Value {
    match o {
        Ok(Outcome::Deliver(v)) => v,
        other => panic!("expected deliver, got {other:?}"),
    }
}

#[test]
fn rust_slack_plugin_reshapes_into_a_chat_message() {
    let out = delivered(run("slack", json!({}), &sample_event()));
    assert_eq!(
        out["text"],
        "New mail from Alice <alice@example.org>: Invoice 42 overdue: urgent"
    );
    assert_eq!(
        out["blocks"][0]["text"]["text"],
        "Invoice 42 overdue: urgent"
    );
    let discord = delivered(run("slack", json!({"style": "discord"}), &sample_event()));
    assert_eq!(discord["embeds"][0]["title"], "Invoice 42 overdue: urgent");
    assert_eq!(
        discord["content"],
        "New mail from Alice <alice@example.org>"
    );
}

#[test]
fn rust_redact_plugin_removes_phone_and_card_numbers() {
    let out = delivered(run("redact", json!({}), &sample_event()));
    assert_eq!(
        out["message"]["text"],
        "Call me on [phone] or pay with [card] today."
    );
    assert_eq!(
        out["limits"]["notes"][0],
        "redact: 1 card number(s) and 1 phone number(s) removed"
    );
    // Everything else passes through, unknown fields included.
    assert_eq!(out["raw"], sample_event()["raw"]);
    assert_eq!(
        out["message"]["headers"],
        sample_event()["message"]["headers"]
    );
}

#[test]
fn rust_route_plugin_fans_out_by_subject_and_drops_by_rule() {
    let cfg = json!({"rules": [
        {"subject_contains": "unsubscribe", "drop": true},
        {"subject_contains": "INVOICE", "routes": ["billing", "archive"]},
    ]});
    match run("route", cfg.clone(), &sample_event()).unwrap() {
        Outcome::Route(routes) => {
            let names: Vec<_> = routes.iter().map(|(r, _)| r.as_str()).collect();
            assert_eq!(names, ["billing", "archive"]);
            assert_eq!(routes[0].1["route"], "billing");
        }
        other => panic!("expected route, got {other:?}"),
    }
    let mut ev = sample_event();
    ev["message"]["subject"] = json!("Please unsubscribe me");
    assert!(matches!(
        run("route", cfg.clone(), &ev).unwrap(),
        Outcome::Drop { .. }
    ));
    ev["message"]["subject"] = json!("Hello");
    assert_eq!(delivered(run("route", cfg, &ev)), ev);
    let by_rcpt = json!({"rules": [{"recipient": "SUPPORT@acme.test", "routes": ["vip"]}]});
    assert!(
        matches!(run("route", by_rcpt, &sample_event()).unwrap(), Outcome::Route(r) if r[0].0 == "vip")
    );
}

#[test]
fn python_triage_plugin_labels_and_drops_auto_replies() {
    let cfg = json!({"labels": {"billing": ["invoice"], "sales": ["quote"]}});
    let out = delivered(run("triage", cfg.clone(), &sample_event()));
    assert_eq!(
        out["triage"],
        json!({"priority": "high", "labels": ["billing"]})
    );
    let mut ev = sample_event();
    ev["message"]["headers"] = json!([["Auto-Submitted", "auto-replied"]]);
    assert_eq!(
        run("triage", cfg, &ev).unwrap(),
        Outcome::Drop {
            reason: "auto-submitted: auto-replied".into()
        }
    );
}

#[test]
fn js_digest_plugin_summarises() {
    let out = delivered(run("digest", json!({"snippet_chars": 10}), &sample_event()));
    assert_eq!(
        out,
        json!({
            "mail_id": "0190b5a4-7a1c-7000-8000-000000000001",
            "route": "support",
            "from": "Alice <alice@example.org>",
            "subject": "Invoice 42 overdue: urgent",
            "snippet": "Call me on…",
            "attachments": [],
            "words": 15,
        })
    );
}

#[test]
fn c_stamp_plugin_stamps_and_drops_bulk_mail() {
    let out = delivered(run("stamp", json!({"tag": "from-c"}), &sample_event()));
    assert_eq!(out["stamped_by"], "from-c");
    assert_eq!(
        out["message"],
        sample_event()["message"],
        "the rest is untouched"
    );
    let mut ev = sample_event();
    ev["message"]["subject"] = json!("[bulk] offers");
    assert_eq!(
        run("stamp", json!({}), &ev).unwrap(),
        Outcome::Drop {
            reason: "bulk mail".into()
        }
    );
}

#[test]
fn a_chain_feeds_each_output_to_the_next_plugin() {
    let chain = [spec("redact", json!({})), spec("slack", json!({}))];
    let out = delivered(host().run_chain(&chain, &sample_event(), &CallTags::default()));
    assert!(
        out["blocks"][2]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("[card]"),
        "{out}"
    );
}

fn misbehave(action: &str) -> TransformError {
    run("misbehave", json!({ "do": action }), &sample_event()).unwrap_err()
}

#[test]
fn an_infinite_loop_is_stopped_by_the_deadline() {
    // No fuel: the deadline alone (fuel stops a loop in tests_misbehave.rs).
    let host = Transformer::new(TransformSettings {
        cache_dir: Some(cache_dir()),
        deadline: Duration::from_millis(100),
        fuel: 0,
        ..Default::default()
    })
    .unwrap();
    host.load(&plugin("misbehave")).unwrap();
    let before = host.error_count("timeout");
    let started = std::time::Instant::now();
    let e = host
        .run_chain(
            &[spec("misbehave", json!({"do": "loop"}))],
            &sample_event(),
            &CallTags::default(),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            TransformError::Timeout {
                deadline_ms: 100,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(host.error_count("timeout") > before);
}

#[test]
fn unbounded_allocation_is_stopped_by_the_memory_limit() {
    let before = host().error_count("memory");
    let e = misbehave("alloc");
    assert!(
        matches!(e, TransformError::MemoryLimit { limit_bytes, .. } if limit_bytes == 64 << 20),
        "{e:?}"
    );
    assert!(host().error_count("memory") > before);
}

#[test]
fn reading_a_file_fails() {
    let before = host().error_count("plugin");
    let e = misbehave("file");
    assert!(
        matches!(&e, TransformError::Plugin { kind: PluginErrorKind::Failed, message, .. } if message.starts_with("reading /etc/passwd:")),
        "{e:?}"
    );
    assert!(host().error_count("plugin") > before);
}

#[test]
fn opening_a_socket_fails() {
    let e = misbehave("socket");
    assert!(
        matches!(&e, TransformError::Plugin { kind: PluginErrorKind::Failed, message, .. } if message.starts_with("connecting to 127.0.0.1:4222:")),
        "{e:?}"
    );
}

#[test]
fn a_panic_is_a_trap_and_an_error_is_typed() {
    assert!(matches!(misbehave("panic"), TransformError::Trap { .. }));
    assert!(matches!(
        misbehave("error"),
        TransformError::Plugin {
            kind: PluginErrorKind::Failed,
            ..
        }
    ));
    assert!(matches!(
        misbehave("nonsense"),
        TransformError::Plugin {
            kind: PluginErrorKind::InvalidConfig,
            ..
        }
    ));
    // The instance that trapped is gone; the next message gets a fresh one.
    assert!(run("misbehave", json!({"do": "pass"}), &sample_event()).is_ok());
}

#[test]
fn replacing_the_plugin_file_changes_the_next_output() {
    let dir = std::env::temp_dir().join(format!("postwire-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("current.wasm");
    std::fs::copy(plugin("slack"), &path).unwrap();
    let chain = [PluginSpec {
        path: path.clone(),
        config: json!({}),
    }];
    let h = host();
    let first = delivered(h.run_chain(&chain, &sample_event(), &CallTags::default()));
    assert!(first.get("blocks").is_some());
    // Replace the file (a new inode, as a deploy would), then run again: no restart.
    let tmp = dir.join("next.wasm");
    std::fs::copy(plugin("redact"), &tmp).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let second = delivered(h.run_chain(&chain, &sample_event(), &CallTags::default()));
    assert_eq!(
        second["message"]["text"],
        "Call me on [phone] or pay with [card] today."
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_cache_loads_a_compiled_component_again() {
    let dir = std::env::temp_dir().join(format!("postwire-cache-{}", std::process::id()));
    let settings = TransformSettings {
        cache_dir: Some(dir.clone()),
        ..Default::default()
    };
    let first = Transformer::new(settings.clone()).unwrap();
    assert_eq!(
        first.load(&plugin("slack")).unwrap().source,
        LoadSource::Compiled
    );
    let second = Transformer::new(settings).unwrap();
    assert_eq!(
        second.load(&plugin("slack")).unwrap().source,
        LoadSource::Cached
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_missing_plugin_is_a_load_error() {
    let chain = [PluginSpec {
        path: "/nonexistent/plugin.wasm".into(),
        config: Value::Null,
    }];
    let e = host()
        .run_chain(&chain, &sample_event(), &CallTags::default())
        .unwrap_err();
    assert_eq!(e.kind(), "load");
}
