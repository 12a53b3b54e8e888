"""`postwire plugin test` with plugins that misbehave (each exits 1 with a readable reason and
shows what the plugin wrote), with a raw message and its envelope; `postwire plugin new` for
each language (the project builds and passes `plugin test` as written); `postwire plugin
events` over the admin API."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from admin_support import GLOBAL, send, system, wait  # noqa: F401 (system is a fixture)
from support import REPO, child_env, postwire_path
from test_plugins import EVENT, built

TOOLS = Path(os.environ.get("POSTWIRE_TOOLS", Path.home() / ".cache" / "postwire"))
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", TOOLS / "target"))


def plugin_test(_tmp_path, *args):
    """`postwire plugin test`, with one compiled-plugin cache for the whole suite (a Python or
    JavaScript component takes up to a minute to compile on a busy machine)."""
    return subprocess.run(
        [postwire_path(), "plugin", "test", *map(str, args)],
        capture_output=True, text=True, timeout=600,
        env=child_env(XDG_CACHE_HOME=str(TARGET / "xdg-cache"), RUST_LOG="warn"),
    )

# (plugin, config, the error line's start, what the plugin wrote)
MISBEHAVING = [
    ("misbehave", {"do": "panic"},
     "error: trap error: plugin misbehave: trapped: wasm `unreachable` executed",
     "this plugin panics on purpose"),
    ("misbehave", {"do": "print"},
     "error: plugin error: plugin misbehave: returned an error (Failed): printed to stdout",
     "print: about to fail"),
    ("misbehave", {"do": "stderr"},
     "error: plugin error: plugin misbehave: returned an error (Failed): wrote to stderr",
     "stderr: something went wrong"),
    ("misbehave", {"do": "alloc"},
     "error: memory error: plugin misbehave: memory limit of 134217728 bytes exceeded", None),
    ("misbehave", {"do": "loop"},
     "error: fuel error: plugin misbehave: CPU limit of 500000000 fuel units exhausted", None),
    ("misbehave", {"do": "invalid_output"},
     "error: invalid_output error: plugin misbehave: invalid output: route with no routes", None),
    ("noisy-py", {"do": "raise"},
     "error: trap error: plugin noisy-py: trapped: wasm `unreachable` executed",
     "ValueError: noisy-py raises on purpose"),
    ("noisy-js", {"do": "throw"}, "error: trap error: plugin noisy-js: trapped:",
     "noisy-js throws on purpose"),
]


@pytest.mark.timeout(600)  # the first run compiles the Python and JavaScript components
@pytest.mark.parametrize("name,config,error,output", MISBEHAVING,
                         ids=[f"{n}-{c['do']}" for n, c, _, _ in MISBEHAVING])
def test_a_misbehaving_plugin_fails_with_a_readable_reason(tmp_path, name, config, error, output):
    # A generous wall clock: the fuel and memory limits, not the machine's load, decide.
    run = plugin_test(tmp_path, built(name), EVENT, "--config", json.dumps(config),
                      "--deadline-ms", "60000")
    assert run.returncode == 1, (run.stdout, run.stderr)
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(error), run.stderr
    assert "backtrace" not in last
    if output:
        shown = run.stderr.split("plugin output (stdout and stderr):\n", 1)[1]
        assert shown.startswith(f"[{name}] ") and output in shown, run.stderr


@pytest.mark.timeout(600)
def test_a_plugin_that_prints_and_delivers_exits_0_and_shows_its_output(tmp_path):
    run = plugin_test(tmp_path, built("noisy-py"), EVENT, "--config", '{"do": "print"}')
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("deliver\n")
    assert ("plugin output (stdout and stderr):\n[noisy-py] noisy-py: looking at "
            "'Invoice 42 overdue: urgent'\nnoisy-py: a line on stderr\n") in run.stderr
    assert "fuel " in run.stdout.splitlines()[-1]


def test_plugin_test_sets_the_tenant_and_envelope_of_a_raw_message(tmp_path):
    eml = tmp_path / "m.eml"
    eml.write_bytes(b"From: Bob <bob@example.org>\r\nTo: support@acme.test\r\nSubject: hi\r\n\r\nbody\r\n")
    run = plugin_test(tmp_path, built("misbehave"), eml, "--config", '{"do": "pass"}',
                      "--tenant", "acme", "--route", "support", "--mail-from", "bob@example.org",
                      "--rcpt", "support@acme.test", "--rcpt", "billing@acme.test")
    assert run.returncode == 0, run.stderr
    event = json.loads(run.stdout.split("\n", 1)[1].rsplit("time: ", 1)[0])
    assert (event["tenant"], event["route"]) == ("acme", "support")
    assert event["envelope"]["mail_from"] == "bob@example.org"
    assert event["envelope"]["rcpt_to"] == ["support@acme.test", "billing@acme.test"]


def build_commands(lang: str, project: Path, target: Path) -> tuple[list[list[str]], Path, dict]:
    """How a user builds the project `plugin new` wrote (its README says the same), with the
    tools `make tools` installed; the Rust build shares the tests' target folder, offline."""
    env = child_env()
    if lang == "rust":
        env["CARGO_TARGET_DIR"] = str(target)
        return ([["cargo", "build", "--offline", "--release", "--target", "wasm32-wasip2"]],
                target / "wasm32-wasip2" / "release" / "my_plugin.wasm", env)
    if lang == "python":
        return ([[str(TOOLS / "componentize-py" / "bin" / "componentize-py"), "-d", "wit", "-w",
                  "plugin", "componentize", "app", "-o", "my-plugin.wasm"]],
                project / "my-plugin.wasm", env)
    if lang == "c":
        return ([[str(TOOLS / "cargo" / "bin" / "wit-bindgen"), "c", "wit", "--world", "plugin",
                  "--out-dir", "gen"],
                 ["clang-16", "--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-I", "gen",
                  "transform.c", "gen/plugin.c", "gen/plugin_component_type.o", "-o",
                  "my-plugin.core.wasm"],
                 [str(TOOLS / "componentize-js" / "node_modules" / ".bin" / "jco"), "new",
                  "my-plugin.core.wasm", "--wasi-reactor", "-o", "my-plugin.wasm"]],
                project / "my-plugin.wasm", env)
    return ([[str(TOOLS / "componentize-js" / "node_modules" / ".bin" / "componentize-js"),
              "plugin.js", "--wit", "wit", "--world-name", "plugin", "--disable", "http",
              "fetch-event", "-o", "my-plugin.wasm"]],
            project / "my-plugin.wasm", env)


@pytest.mark.timeout(1200)  # builds a component (offline; shared caches)
@pytest.mark.parametrize("lang", ["rust", "python", "js", "c"])
def test_plugin_new_writes_a_project_that_builds_and_passes_plugin_test(tmp_path, lang):
    project = tmp_path / "my-plugin"
    new = subprocess.run([postwire_path(), "plugin", "new", "my-plugin", "--lang", lang,
                          "--dir", str(project)], capture_output=True, text=True, timeout=60)
    assert new.returncode == 0, new.stderr
    assert (project / "wit" / "plugin.wit").read_text() == (REPO / "guest-sdk" / "wit" / "plugin.wit").read_text()
    target = TARGET / "plugin-new"
    commands, wasm, env = build_commands(lang, project, target)
    for cmd in commands:
        b = subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=900, env=env)
        assert b.returncode == 0, (cmd, b.stdout[-3000:], b.stderr[-3000:])
    run = plugin_test(tmp_path, wasm, project / "event.json", "--config", '{"tag": "mine"}')
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.split("\n", 1)[1].rsplit("time: ", 1)[0])
    assert out["tagged_by"] == "mine" and out["message"]["subject"] == "Invoice 42 overdue: urgent"
    bulk = json.loads((project / "event.json").read_text())
    bulk["message"]["subject"] = "[bulk] offers"
    (project / "bulk.json").write_text(json.dumps(bulk))
    run = plugin_test(tmp_path, wasm, project / "bulk.json")
    assert run.returncode == 0 and run.stdout.startswith("drop: bulk mail"), run.stdout
    again = subprocess.run([postwire_path(), "plugin", "new", "my-plugin", "--lang", lang,
                            "--dir", str(project)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "is not empty" in again.stderr


def test_plugin_events_show_fail_open_errors_with_the_plugins_output(system, receiver):
    smtp_port, api, _ = system
    config = api.call("GET", "/api/v1/tenants/acme")[2]["config"]
    config["plugins"] = [{"path": str(built("misbehave")), "config": {"do": "stderr"}}]
    config["plugin_failure"] = "fail-open"
    st, _, b = api.call("PUT", "/api/v1/tenants/acme", body=config)
    assert st == 200, b
    send(smtp_port, "support@acme.test", "fail-open")
    assert receiver.wait_for(1)[0].json()["message"]["subject"] == "fail-open"
    events = wait(lambda: api.call("GET", "/api/v1/plugins/events?tenant=acme")[2]["events"])
    assert len(events) == 1, events
    e = events[0]
    assert (e["kind"], e["mode"], e["error_kind"], e["route"]) == ("plugin", "fail-open", "plugin", "support")
    assert e["output"] == "[misbehave] stderr: something went wrong"
    cli = subprocess.run([postwire_path(), "plugin", "events", "--tenant", "acme"],
                         capture_output=True, text=True, timeout=60,
                         env=child_env(POSTWIRE_TOKEN=GLOBAL, POSTWIRE_API=api.base))
    assert cli.returncode == 0, cli.stderr
    assert f"acme route support mail {e['mail_id']}: plugin error, fail-open:" in cli.stdout
    assert "    | [misbehave] stderr: something went wrong" in cli.stdout
    assert api.call("GET", "/api/v1/plugins/events?kind=drop")[2]["events"] == []
    assert api.call("GET", "/api/v1/plugins/events?kind=nope")[0] == 400


def test_a_c_plugin_writing_to_stderr_shows_it(tmp_path):
    event = tmp_path / "not-an-object.json"
    event.write_text('"just a string"')
    run = plugin_test(tmp_path, built("stamp"), event)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "error: plugin error: plugin stamp: returned an error (InvalidEvent): not a JSON object")
    assert "[stamp] stamp: the event is not a JSON object (15 bytes)" in run.stderr
