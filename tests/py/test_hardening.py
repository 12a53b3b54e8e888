"""Hardening (issue #18) against the real binary: input that used to panic or be misread by the
admin API and the CLI, the alert URL as a protected field, operator actions in the audit
trail, URLs with their query strings kept out of the logs on connection errors, timeouts
and TLS errors, and proxy variables that never take delivery past the SSRF guard."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time

from support import Process, attach_logs, child_env, dev_config, free_port, postwire_path, start_dev

from admin_support import ACME, is_problem, send, system, wait  # noqa: F401 (system is a fixture)

HUGE_AGE = "99999999999h"


def test_huge_numbers_are_400_never_a_panic(system):
    smtp_port, api, config = system
    for token in (None, ACME):
        kw = {} if token is None else {"token": token}
        for path in ("/api/v1/dlq", "/api/v1/deliveries", "/api/v1/audit"):
            st, h, b = api.call("GET", f"{path}?since={HUGE_AGE}", **kw)
            is_problem(st, h, b, 400)
        st, h, b = api.call("POST", "/api/v1/dlq/replay", body={"since": HUGE_AGE}, **kw)
        is_problem(st, h, b, 400)
        st, h, b = api.call("POST", "/api/v1/dlq/purge", body={"since": HUGE_AGE}, **kw)
        is_problem(st, h, b, 400)
    # Numbers beyond their type are refused as such.
    for path in ("/api/v1/stats?hours=4294967296", "/api/v1/deliveries?limit=18446744073709551616",
                 "/api/v1/deliveries?since=1e309s"):
        st, h, b = api.call("GET", path)
        is_problem(st, h, b, 400)
    st, h, b = api.call("GET", "/api/v1/dlq/18446744073709551615")
    is_problem(st, h, b, 404)
    st, h, b = api.call("POST", "/api/v1/dlq/replay", body={"seqs": [18446744073709551615]})
    assert st == 200 and b["replayed"] == [], b
    # The server is still there.
    assert api.call("GET", "/api/v1/whoami")[0] == 200
    # The CLI says the same, exit 2 (usage), no panic.
    r = subprocess.run([postwire_path(), "dlq", "list", "--since", HUGE_AGE, "--config", str(config)],
                       capture_output=True, text=True, timeout=30, env=child_env())
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "panicked" not in r.stderr and "reaches before" in r.stderr, r.stderr


def test_oversized_body_is_413_and_rotation_authorises_first(system):
    _, api, _ = system
    big = b'{"domains": ["acme.test"], "x": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    st, h, b = api.call("PUT", "/api/v1/tenants/acme", raw=big,
                        headers={"Content-Type": "application/json"})
    is_problem(st, h, b, 413)
    # A tenant token is refused before its body is looked at: 403 whatever it sends.
    for raw in (b"{}", b"not json", b'{"keyring": 5}'):
        st, h, b = api.call("POST", "/api/v1/keys/rotate", token=ACME, raw=raw,
                            headers={"Content-Type": "application/json"})
        is_problem(st, h, b, 403)
    # The global token gets the validation errors.
    st, h, b = api.call("POST", "/api/v1/keys/rotate", raw=b"{}", headers={"Content-Type": "application/json"})
    is_problem(st, h, b, 422)
    st, h, b = api.call("POST", "/api/v1/keys/rotate", raw=b"{", headers={"Content-Type": "application/json"})
    is_problem(st, h, b, 400)


def test_alert_url_is_validated_and_protected(system):
    _, api, _ = system
    doc = api.call("GET", "/api/v1/tenants/acme")[2]["config"]
    for bad in ("http://169.254.169.254/latest/meta-data", "http://alerts.example/x", "file:///etc/passwd"):
        st, h, b = api.call("PUT", "/api/v1/tenants/acme", body={**doc, "alert_url": bad})
        is_problem(st, h, b, 422)
        assert b["field"] == "tenants.acme.alert_url", b
    # A tenant token may not set it (the deliver workers POST to it, signed)...
    st, h, b = api.call("PUT", "/api/v1/tenants/acme", token=ACME,
                        body={**doc, "alert_url": "https://alerts.example/hook"})
    is_problem(st, h, b, 403)
    assert "alert_url" in b["detail"]
    # ...the global token may, and the tenant token may then keep or remove it.
    st, _, _ = api.call("PUT", "/api/v1/tenants/acme", body={**doc, "alert_url": "https://alerts.example/hook"})
    assert st == 200
    now = api.call("GET", "/api/v1/tenants/acme", token=ACME)[2]["config"]
    assert now["alert_url"] == "https://alerts.example/hook"
    st, h, b = api.call("PUT", "/api/v1/tenants/acme", token=ACME,
                        body={**now, "alert_url": "https://elsewhere.example/hook"})
    is_problem(st, h, b, 403)
    del now["alert_url"]
    st, _, _ = api.call("PUT", "/api/v1/tenants/acme", token=ACME, body=now)
    assert st == 200


def test_operator_actions_are_audited(system):
    smtp_port, api, _ = system
    send(smtp_port, "anyone@beta.test", "to-the-dlq")
    dead = wait(lambda: api.call("GET", "/api/v1/dlq")[2]["dead_letters"])
    assert dead, "beta's mail reached the DLQ"
    seq = dead[0]["seq"]
    assert api.call("POST", "/api/v1/dlq/replay", body={"seqs": [seq]})[2]["replayed"]
    again = wait(lambda: [d for d in api.call("GET", "/api/v1/dlq")[2]["dead_letters"] if d["seq"] != seq])
    assert again, "the replayed delivery failed again"
    assert api.call("POST", "/api/v1/dlq/purge", body={"tenant": "beta"})[2]["purged"]
    for action in ("disable", "enable"):
        st, _, _ = api.call("POST", f"/api/v1/tenants/acme/endpoints/hook/{action}", token=ACME)
        assert st == 200
    changes = api.call("GET", "/api/v1/audit")[2]["changes"]
    ops = [(c["tenant"], c["by"], c["change"]) for c in changes if c.get("kind") == "operation"]
    assert ops == [("beta", "admin", "dlq.replay"), ("beta", "admin", "dlq.purge"),
                   ("acme", "acme-ops", "endpoint.disable"), ("acme", "acme-ops", "endpoint.enable")], ops
    replay = next(c for c in changes if c.get("change") == "dlq.replay")
    assert replay["detail"]["items"][0]["seq"] == seq and replay["at"], replay
    # A tenant token sees its own tenant's actions only.
    mine = api.call("GET", "/api/v1/audit", token=ACME)[2]["changes"]
    assert {c["tenant"] for c in mine} == {"acme"}, mine


def test_urls_with_tokens_stay_out_of_the_logs_on_every_error(request, tmp_path, nats, receiver):
    """Connection refused, timeout and TLS errors carry the URL in the HTTP client's error text:
    the query (a token) must not reach the logs."""
    smtp_port = free_port()
    closed = free_port()
    tokens = {"refused": "refused-secret-1", "slow": "timeout-secret-2", "tls": "tls-secret-3"}
    urls = {
        "refused": f"http://127.0.0.1:{closed}/in?token={tokens['refused']}",
        "slow": receiver.url(f"/slow?token={tokens['slow']}"),
        "tls": receiver.url(f"/tls?token={tokens['tls']}").replace("http://", "https://"),
    }
    extra = "".join(f"""
[[tenants.acme.routes]]
name = "{name}"
recipients = ["{name}@acme.test"]
endpoints = ["{name}"]

[tenants.acme.endpoints.{name}]
url = "{url}"
allow_http = true
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
""" for name, url in urls.items())
    config = tmp_path / "postwire.toml"
    config.write_text(dev_config(nats.url, smtp_port, receiver.url("/hook"),
                                 extra_delivery="request_timeout_secs = 1", extra=extra))
    receiver.delays = [3] * 6
    dev = Process("dev", [postwire_path(), "dev", "--config", str(config), "--no-sink"], tmp_path,
                  env=child_env(RUST_LOG="info,postwire_stages=debug", POSTWIRE_LOG_FORMAT="json"))
    attach_logs(request, dev)
    try:
        dev.wait_for_port(smtp_port)
        import smtplib
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=20) as c:
            for name in urls:
                c.sendmail("a@example.com", [f"{name}@acme.test"],
                           f"Subject: {name}\r\n\r\nbody\r\n".encode())
        deadline = time.time() + 60
        while dev.stderr().count("Delivery gave up") < 3 and time.time() < deadline:
            time.sleep(0.2)
    finally:
        dev.stop(signal.SIGINT)
    logs = dev.stderr()
    assert logs.count("Delivery gave up") >= 3, "every endpoint failed for good"
    assert "timeout" in logs and "connection failed" in logs, "the errors themselves are logged"
    for name, token in tokens.items():
        assert token not in logs, f"the {name} endpoint's URL token is in the logs"
    assert "/in?…" in logs or "/in?%E2%80%A6" in logs, "the URL itself stays, redacted"


def test_proxy_variables_are_ignored(request, tmp_path, nats, receiver):
    """HTTP(S)_PROXY in the environment never carries a delivery (a proxy resolves names past
    the SSRF guard): the delivery goes straight to the receiver, the proxy sees nothing."""
    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(16)
    proxy.settimeout(0.2)
    hits = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = proxy.accept()
            except OSError:
                continue
            hits.append(1)
            conn.close()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    purl = f"http://127.0.0.1:{proxy.getsockname()[1]}"
    smtp_port = free_port()
    config = tmp_path / "postwire.toml"
    config.write_text(dev_config(nats.url, smtp_port, receiver.url("/hook")))
    dev = Process("dev", [postwire_path(), "dev", "--config", str(config), "--no-sink"], tmp_path,
                  env=child_env(RUST_LOG="info", HTTP_PROXY=purl, HTTPS_PROXY=purl, ALL_PROXY=purl,
                                http_proxy=purl, https_proxy=purl, NO_PROXY="", no_proxy=""))
    attach_logs(request, dev)
    try:
        dev.wait_for_port(smtp_port)
        send(smtp_port, "support@acme.test", "past-the-proxy")
        got = receiver.wait_for(1, timeout=20)
        assert json.loads(got[0].body)["message"]["subject"] == "past-the-proxy"
    finally:
        dev.stop(signal.SIGINT)
        stop.set()
        t.join()
        proxy.close()
    assert hits == [], "the delivery went through the proxy from the environment"


NUMBERS = ["0", "-1", "1", "2147483648", "4294967296", "9223372036854775807", "9223372036854775808",
           "18446744073709551615", "18446744073709551616", "1" + "0" * 40, "1e309", "NaN", "-0", "", "0x10"]
TIMES = ([f"{n}{u}" for n in NUMBERS for u in ("ms", "s", "m", "h", "d")]
         + ["9999-12-31T23:59:59Z", "-9999-01-01T00:00:00Z", "0000-01-01T00:00:00Z",
            "2026-13-45T99:99:99Z", "2026-12-07T12:00:00+23:59", "1.5e3h", "h", "∞h"])


def test_large_numbers_and_odd_times_never_make_a_server_error(system):
    """Every time and number argument of the admin API with values at and beyond the edges of
    their types: a 2xx or a 4xx problem, never a 5xx or a dropped connection."""
    import urllib.parse
    _, api, _ = system
    q = urllib.parse.quote
    calls = []
    for t in TIMES:
        calls += [("GET", f"/api/v1/deliveries?since={q(t)}"), ("GET", f"/api/v1/deliveries?until={q(t)}"),
                  ("GET", f"/api/v1/dlq?since={q(t)}"), ("GET", f"/api/v1/audit?since={q(t)}"),
                  ("POST", "/api/v1/dlq/replay", {"since": t}), ("POST", "/api/v1/dlq/purge", {"since": t})]
    for n in NUMBERS:
        calls += [("GET", f"/api/v1/deliveries?limit={q(n)}"), ("GET", f"/api/v1/stats?hours={q(n)}"),
                  ("GET", f"/api/v1/dlq/{q(n) or '0'}"), ("GET", f"/api/v1/quarantine/{q(n) or '0'}")]
        if n.lstrip("-").isdigit():
            for path in ("/api/v1/dlq/replay", "/api/v1/dlq/purge", "/api/v1/quarantine/release",
                         "/api/v1/quarantine/purge"):
                calls.append(("POST", path, {"seqs": [int(n)]}))
    for method, path, *body in calls:
        st, h, b = api.call(method, path, body=body[0] if body else None)
        assert st < 500, (method, path, body, st, b)
        if st >= 400:
            is_problem(st, h, b, st)
    assert len(calls) > 300


def test_key_rotation_is_audited(request, tmp_path, nats, receiver):
    """Key rotation belongs to no tenant: its record is under `_global`, seen by the global token."""
    import urllib.request
    keyring = tmp_path / "keys"
    subprocess.run([postwire_path(), "keys", "rotate", "--keyring", str(keyring), "--domain", "acme.test",
                    "--selector", "s1"], check=True, capture_output=True, text=True)
    port, admin = free_port(), free_port()
    cfg = dev_config(nats.url, port, receiver.url(), admin_port=admin) + f"""
[[tenants.acme.endpoints.hook.signing]]
scheme = "rfc9421"
alg = "ed25519"
keyring = "{keyring}"
"""
    token = "t" * 24
    dev = start_dev(request, tmp_path, cfg, admin, POSTWIRE_ADMIN_TOKEN=token)

    def call(method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{admin}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=20) as r:
            return json.load(r)

    try:
        rotated = call("POST", "/api/v1/keys/rotate", {"keyring": str(keyring), "overlap_secs": 60})
        selector = [k["selector"] for k in rotated["keys"] if k["selector"] != "s1"][0]
        # The CLI's rotation works on the files and records itself on the config's NATS.
        cli = subprocess.run([postwire_path(), "keys", "rotate", "--keyring", str(keyring),
                              "--selector", "s3", "--overlap-secs", "120", "--config",
                              str(tmp_path / "postwire.toml")],
                             capture_output=True, text=True, env=child_env(USER="ops"), timeout=60)
        assert cli.returncode == 0, cli.stderr
        assert "recorded in the audit trail" in cli.stderr, cli.stderr
        changes = call("GET", "/api/v1/audit")["changes"]
    finally:
        dev.stop(signal.SIGINT)
    ops = sorted((c for c in changes if c.get("kind") == "operation"), key=lambda c: c["by"])
    assert [(c["tenant"], c["by"], c["change"]) for c in ops] == [
        ("_global", "admin", "keys.rotate"), ("_global", "cli:ops", "keys.rotate")], ops
    assert ops[0]["detail"] == {"keyring": str(keyring), "selector": selector, "alg": "ed25519",
                                "overlap_secs": 60}, ops[0]
    assert ops[1]["detail"] == {"keyring": str(keyring.resolve()), "selector": "s3", "alg": "ed25519",
                                "overlap_secs": 120}, ops[1]


def test_cli_key_rotation_says_when_it_is_not_audited(tmp_path):
    """Without a config, or with its NATS unreachable, the keys are still rotated (exit 0) and
    standard error says that no audit record was written."""
    keyring = tmp_path / "keys"
    base = [postwire_path(), "keys", "rotate", "--keyring", str(keyring), "--domain", "acme.test"]
    env = child_env()
    alone = subprocess.run(base + ["--selector", "s1"], capture_output=True, text=True, env=env, timeout=60)
    assert alone.returncode == 0, alone.stderr
    assert "no audit record written: give --config" in alone.stderr, alone.stderr
    cfg = tmp_path / "postwire.toml"
    cfg.write_text(dev_config(f"nats://127.0.0.1:{free_port()}", free_port(), "http://127.0.0.1:9/"))
    down = subprocess.run(base + ["--selector", "s2", "--config", str(cfg)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert down.returncode == 0, down.stderr
    assert "the keys are rotated, but no audit record was written" in down.stderr, down.stderr
    assert "s2._postwire.acme.test" in down.stdout, down.stdout
    listing = json.loads((keyring / "keyring.json").read_text())
    assert [k["selector"] for k in listing["keys"]] == ["s1", "s2"], listing
