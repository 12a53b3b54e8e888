"""Plugins seen from outside: `postwire plugin test` for plugin authors, and a tenant's plugin
replaced under a running `postwire dev` (hot reload). The plugins come from `make plugins`."""

import json
import os
import shutil
import signal
import smtplib
import subprocess
from pathlib import Path

import pytest

from mails import utf8_message
from support import REPO, Process, attach_logs, child_env, dev_config, free_port, postwire_path

BUILD = REPO / "plugins" / "build"
EVENT = REPO / "plugins" / "event.json"


def built(name: str) -> Path:
    path = BUILD / f"{name}.wasm"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make plugins` (make test does)")
    return path


def plugin_test(tmp_path, *args):
    return subprocess.run(
        [postwire_path(), "plugin", "test", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env(XDG_CACHE_HOME=str(tmp_path / "cache")),
    )


def test_plugin_test_prints_the_outcome_and_the_time(tmp_path):
    run = plugin_test(tmp_path, built("slack"), EVENT, "--config", '{"style": "discord"}')
    assert run.returncode == 0, run.stderr
    first, rest = run.stdout.split("\n", 1)
    assert first == "deliver"
    body, timing = rest.rsplit("time: ", 1)
    assert json.loads(body)["embeds"][0]["title"] == "Invoice 42 overdue: urgent"
    assert timing.startswith("load ") and "(compiled)" in timing and "call " in timing

    again = plugin_test(tmp_path, built("slack"), EVENT)
    assert again.returncode == 0, again.stderr
    assert "(from the cache)" in again.stdout.splitlines()[-1]


def test_plugin_test_takes_a_raw_message(tmp_path):
    eml = tmp_path / "card.eml"
    eml.write_bytes(
        b"From: Bob <bob@example.org>\r\nTo: support@acme.test\r\n"
        b"Subject: Card 4111 1111 1111 1111\r\n\r\nRing 0171 2345 6789 please.\r\n"
    )
    run = plugin_test(tmp_path, built("redact"), eml)
    assert run.returncode == 0, run.stderr
    event = json.loads(run.stdout.split("\n", 1)[1].rsplit("time: ", 1)[0])
    assert event["message"]["subject"] == "Card [card]"
    assert event["message"]["text"] == "Ring [phone] please.\n"


def test_plugin_test_exit_codes(tmp_path):
    loop = plugin_test(tmp_path, built("misbehave"), EVENT, "--config", '{"do": "loop"}',
                       "--deadline-ms", "60000")
    assert loop.returncode == 1
    assert "fuel error: plugin misbehave: CPU limit of 500000000 fuel units exhausted" in loop.stderr
    deadline = plugin_test(tmp_path, built("misbehave"), EVENT, "--config", '{"do": "loop"}',
                           "--fuel", "0", "--deadline-ms", "100")
    assert deadline.returncode == 1
    assert "timeout error: plugin misbehave: deadline of 100 ms exceeded" in deadline.stderr
    missing = plugin_test(tmp_path, tmp_path / "nope.wasm", EVENT)
    assert missing.returncode == 2
    bad_config = plugin_test(tmp_path, built("slack"), EVENT, "--config", "{not json")
    assert bad_config.returncode == 2


def test_replacing_a_plugin_changes_the_next_delivery(request, tmp_path, nats, receiver):
    plugin = tmp_path / "tenant-plugin.wasm"
    shutil.copy(built("slack"), plugin)
    smtp_port = free_port()
    target = os.environ.get("CARGO_TARGET_DIR")
    cache = Path(target) / "plugin-cache" if target else tmp_path / "plugin-cache"
    config = dev_config(nats.url, smtp_port, receiver.url("/hook"),
                        extra_tenant=f'plugins = [{{ path = "{plugin.name}" }}]',
                        extra=f'\n[plugin_host]\ncache_dir = "{cache}"\ndeadline_ms = 5000\n')
    config_path = tmp_path / "postwire.toml"
    config_path.write_text(config)
    process = Process(
        "postwire-dev",
        [postwire_path(), "dev", "--config", str(config_path), "--no-sink"],
        tmp_path,
        env=child_env(RUST_LOG="info"),
    )
    attach_logs(request, process)
    try:
        process.wait_for_port(smtp_port, timeout=60)

        def send(subject):
            with smtplib.SMTP("127.0.0.1", smtp_port, local_hostname="client.test", timeout=20) as c:
                c.sendmail("sender@example.com", ["support@acme.test"], utf8_message(subject),
                           mail_options=["BODY=8BITMIME"])

        send("First")
        first = receiver.wait_for(1, timeout=30)[0].json()
        assert first["text"] == "New mail from Sender <sender@example.com>: First"

        # Deploy the next version the way an operator would: write beside it, then rename.
        staged = tmp_path / "staged.wasm"
        shutil.copy(built("redact"), staged)
        staged.rename(plugin)
        send("Second")
        second = receiver.wait_for(2, timeout=60)[1].json()
        assert "blocks" not in second
        assert second["schema"] == "postwire.email.v1"
        assert second["message"]["subject"] == "Second"
    finally:
        code = process.stop(signal.SIGINT)
    assert code in (0, 130), f"postwire dev exited with {code} after SIGINT"


def test_a_failing_plugins_output_reaches_the_log_and_the_dead_letter(request, tmp_path, nats, receiver):
    """A panicking plugin under fail-closed in `postwire dev`: the log line names the tenant,
    route and mail id and carries the panic message; `postwire dlq list --json` has it too."""
    smtp_port = free_port()
    target = os.environ.get("CARGO_TARGET_DIR")
    cache = Path(target) / "plugin-cache" if target else tmp_path / "plugin-cache"
    config = dev_config(nats.url, smtp_port, receiver.url("/hook"),
                        extra_tenant=f'plugins = [{{ path = "{built("misbehave")}", config = {{ do = "panic" }} }}]',
                        extra=f'\n[plugin_host]\ncache_dir = "{cache}"\n')
    config_path = tmp_path / "postwire.toml"
    config_path.write_text(config)
    process = Process("postwire-dev", [postwire_path(), "dev", "--config", str(config_path), "--no-sink"],
                      tmp_path, env=child_env(RUST_LOG="info"))
    attach_logs(request, process)
    try:
        process.wait_for_port(smtp_port, timeout=60)
        with smtplib.SMTP("127.0.0.1", smtp_port, local_hostname="client.test", timeout=20) as c:
            c.sendmail("sender@example.com", ["support@acme.test"], utf8_message("Panics"),
                       mail_options=["BODY=8BITMIME"])
        import time
        for _ in range(600):  # the log (stderr) has the line once the worker ran the plugin
            out = process.stderr() + process.stdout()
            if "A plugin failed." in out:
                break
            time.sleep(0.1)
        assert "A plugin failed." in out, process.logs()
        line = next(x for x in out.splitlines() if "A plugin failed." in x)
        assert 'tenant="acme"' in line and 'route="support"' in line and "mail_id=" in line, line
        assert "this plugin panics on purpose" in out
        dead = []
        for _ in range(100):
            listed = subprocess.run([postwire_path(), "dlq", "list", "--json", "--config", str(config_path)],
                                    capture_output=True, text=True, timeout=30, env=child_env())
            assert listed.returncode == 0, listed.stderr
            dead = json.loads(listed.stdout)
            dead = dead if isinstance(dead, list) else dead.get("dead_letters", [])
            if dead:
                break
            time.sleep(0.2)
        assert len(dead) == 1, dead
        assert dead[0]["kind"] == "plugin"
        assert "this plugin panics on purpose" in dead[0]["plugin_output"], dead[0]
    finally:
        code = process.stop(signal.SIGINT)
    assert code in (0, 130), f"postwire dev exited with {code} after SIGINT"
