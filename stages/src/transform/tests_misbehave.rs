//! Plugins that misbehave — panic, print, write to stderr, run out of memory or fuel, return
//! invalid output, raise or throw — in Rust, Python and JavaScript: each is a typed error with
//! a readable reason, and what it wrote reaches [`ChainRun::output`].

use std::time::Duration;

use serde_json::json;

use super::tests::{cache_dir, host, plugin, sample_event, spec};
use super::*;

fn traced(name: &str, config: serde_json::Value) -> ChainRun {
    let tags = CallTags {
        tenant: "acme",
        route: "support",
        mail_id: "m-1",
    };
    host().run_chain_traced(&[spec(name, config)], &sample_event(), &tags)
}

#[test]
fn a_rust_panic_is_a_readable_trap_with_its_message_in_the_output() {
    let run = traced("misbehave", json!({"do": "panic"}));
    let e = run.result.unwrap_err();
    assert!(
        matches!(&e, TransformError::Trap { message, .. } if message.contains("a panic") && !message.contains("backtrace")),
        "{e}"
    );
    assert!(
        run.output.starts_with("[misbehave] thread")
            && run.output.contains("this plugin panics on purpose"),
        "{}",
        run.output
    );
}

#[test]
fn stdout_and_stderr_are_captured_whether_the_call_fails_or_not() {
    let run = traced("misbehave", json!({"do": "print_pass"}));
    assert!(matches!(run.result, Ok(Outcome::Deliver(_))));
    assert_eq!(
        run.output,
        "[misbehave] print_pass: looked at the mail\nprint_pass: and said so on stderr"
    );
    let run = traced("misbehave", json!({"do": "print"}));
    assert!(matches!(run.result, Err(TransformError::Plugin { .. })));
    assert!(
        run.output
            .contains("print: about to fail, subject Some(\"Invoice 42")
    );
    let run = traced("misbehave", json!({"do": "stderr"}));
    assert!(matches!(run.result, Err(TransformError::Plugin { .. })));
    assert_eq!(run.output, "[misbehave] stderr: something went wrong");
}

#[test]
fn a_route_outcome_without_routes_is_invalid_output() {
    let e = traced("misbehave", json!({"do": "invalid_output"}))
        .result
        .unwrap_err();
    assert!(
        matches!(&e, TransformError::InvalidOutput { message, .. } if message.contains("route with no routes")),
        "{e}"
    );
}

#[test]
fn fuel_stops_an_endless_loop_whatever_the_wall_clock() {
    // A minute of wall time: only the fuel can stop it within the test.
    let host = Transformer::new(TransformSettings {
        cache_dir: Some(cache_dir()),
        deadline: Duration::from_secs(60),
        fuel: 20_000_000,
        ..Default::default()
    })
    .unwrap();
    let before = host.error_count("fuel");
    let run = host.run_chain_traced(
        &[spec("misbehave", json!({"do": "loop"}))],
        &sample_event(),
        &CallTags::default(),
    );
    let e = run.result.unwrap_err();
    assert!(
        matches!(
            e,
            TransformError::Fuel {
                fuel: 20_000_000,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "plugin misbehave: CPU limit of 20000000 fuel units exhausted"
    );
    assert_eq!(host.error_count("fuel"), before + 1);
    // A plugin that does its work reports the fuel it used.
    let ok = host.run_chain_traced(
        &[spec("misbehave", json!({"do": "pass"}))],
        &sample_event(),
        &CallTags::default(),
    );
    assert!(ok.result.is_ok() && ok.fuel_used > 0 && ok.fuel_used < 20_000_000);
}

#[test]
fn a_hundred_megabytes_fit_under_the_default_limits() {
    // The defaults of [plugin_host] (128 MiB, fuel, 1 s backstop): the same host settings
    // `postwire plugin test` uses, so the outcome is the same there.
    let host = Transformer::new(TransformSettings {
        cache_dir: Some(cache_dir()),
        ..Default::default()
    })
    .unwrap();
    let out = host.run_chain(
        &[spec("misbehave", json!({"do": "alloc_mb", "mb": 100}))],
        &sample_event(),
        &CallTags::default(),
    );
    assert!(
        matches!(&out, Ok(Outcome::Deliver(v)) if v["allocated_mb"] == 100),
        "{out:?}"
    );
    let out = host.run_chain(
        &[spec("misbehave", json!({"do": "alloc_mb", "mb": 130}))],
        &sample_event(),
        &CallTags::default(),
    );
    assert!(
        matches!(out, Err(TransformError::MemoryLimit { .. })),
        "{out:?}"
    );
}

#[test]
fn python_print_and_tracebacks_reach_the_output() {
    assert!(plugin("noisy-py").exists());
    let run = traced("noisy-py", json!({"do": "print"}));
    assert!(matches!(run.result, Ok(Outcome::Deliver(_))), "{run:?}");
    assert_eq!(
        run.output,
        "[noisy-py] noisy-py: looking at 'Invoice 42 overdue: urgent'\nnoisy-py: a line on stderr"
    );
    let run = traced("noisy-py", json!({"do": "raise"}));
    assert!(matches!(run.result, Err(TransformError::Trap { .. })));
    assert!(
        run.output.contains("Traceback (most recent call last)")
            && run
                .output
                .contains("ValueError: noisy-py raises on purpose"),
        "{}",
        run.output
    );
}

#[test]
fn javascript_console_and_uncaught_errors_reach_the_output() {
    let run = traced("noisy-js", json!({"do": "print"}));
    assert!(matches!(run.result, Ok(Outcome::Deliver(_))), "{run:?}");
    assert!(
        run.output
            .contains("noisy-js: looking at \"Invoice 42 overdue: urgent\"")
            && run.output.contains("noisy-js: a line on stderr"),
        "{}",
        run.output
    );
    let run = traced("noisy-js", json!({"do": "throw"}));
    assert!(run.result.is_err());
    assert!(
        run.output.contains("noisy-js throws on purpose"),
        "{:?} {}",
        run.result,
        run.output
    );
}
