"""Delivery operations against the real binary: a deliver worker killed with SIGKILL in the
middle of a request, the dead-letter stream with `postwire dlq` and the admin API, the audit
trail with `postwire deliveries show`, and logs that hold no secret, signature or address."""

from __future__ import annotations

import json
import signal
import smtplib
import subprocess
import time
import urllib.error
import urllib.request

from support import SECRET, Process, attach_logs, child_env, deliveries, dev_config, free_port, postwire_path

MAIL = (
    b"From: Ann <sender@example.com>\r\nTo: support@acme.test\r\nSubject: ops\r\n"
    b"Message-ID: <ops-1@example.com>\r\n\r\nhello\r\n"
)


def send(port: int, msg: bytes = MAIL) -> None:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=20) as c:
        assert c.sendmail("sender@example.com", ["support@acme.test"], msg) == {}


def cli(config, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [postwire_path(), *args, "--config", str(config)],
        capture_output=True, text=True, timeout=30, env=env or child_env(),
    )


def start(request, tmp_path, name: str, role: str, config) -> Process:
    p = Process(name, [postwire_path(), role, "--config", str(config)], tmp_path,
                env=child_env(RUST_LOG="info"))
    attach_logs(request, p)
    return p


def test_sigkill_mid_request_is_redelivered_with_same_id(request, tmp_path, nats, receiver):
    smtp_port = free_port()
    config = tmp_path / "postwire.toml"
    config.write_text(dev_config(nats.url, smtp_port, receiver.url(), extra_delivery="ack_wait_secs = 3"))
    receiver.delays = [20.0]  # the first request hangs
    ingest = start(request, tmp_path, "ingest", "ingest", config)
    worker = start(request, tmp_path, "worker", "worker", config)
    deliver = start(request, tmp_path, "deliver", "deliver", config)
    procs = [ingest, worker, deliver]
    try:
        ingest.wait_for_port(smtp_port)
        send(smtp_port)
        first = receiver.wait_for(1, timeout=20)[0]
        deliver.proc.send_signal(signal.SIGKILL)
        deliver.proc.wait(timeout=5)
        deliver2 = start(request, tmp_path, "deliver2", "deliver", config)
        procs.append(deliver2)
        second = receiver.wait_for(2, timeout=30)[1]
        assert second.headers["webhook-id"] == first.headers["webhook-id"]
        assert second.body == first.body
        # Acknowledged at last: one delivery, handed out twice (the second time to deliver2).
        state = nats.wait_idle()
        assert deliveries(state) == (1, 2, 1), state["OUTBOX"]
        assert len(receiver.requests) == 2, "delivered once more, not again and again"
    finally:
        for p in procs:
            p.stop(signal.SIGTERM)


def test_dead_letters_replay_and_audit(request, tmp_path, nats, receiver):
    smtp_port, admin_port = free_port(), free_port()
    config = tmp_path / "postwire.toml"
    config.write_text(dev_config(nats.url, smtp_port, receiver.url(), admin_port=admin_port))
    token = "test-admin-token-0123456789"
    receiver.status = 500
    dev = Process("dev", [postwire_path(), "dev", "--config", str(config), "--no-sink"], tmp_path,
                  env=child_env(RUST_LOG="info", POSTWIRE_ADMIN_TOKEN=token))
    attach_logs(request, dev)
    try:
        dev.wait_for_port(smtp_port)
        send(smtp_port)
        receiver.wait_for(3, timeout=20)
        listed = []
        for _ in range(100):
            r = cli(config, "dlq", "list", "--json")
            assert r.returncode == 0, r.stderr
            listed = json.loads(r.stdout)
            if listed:
                break
            time.sleep(0.1)
        assert len(listed) == 1
        dead = listed[0]
        assert (dead["attempts"], dead["last_status"], dead["tenant"], dead["route"]) == ("3", "500", "acme", "support")
        assert dead["delivery_id"] == receiver.requests[0].headers["webhook-id"]

        # The admin API needs the bearer token.
        url = f"http://127.0.0.1:{admin_port}/api/v1/dlq?tenant=acme"
        try:
            urllib.request.urlopen(url, timeout=10)
            raise AssertionError("the admin API answered without a token")
        except urllib.error.HTTPError as e:
            assert e.code == 401
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        body = json.load(urllib.request.urlopen(req, timeout=10))
        assert [d["delivery_id"] for d in body["dead_letters"]] == [dead["delivery_id"]]

        # Replay after the receiver is fixed: same webhook-id, and the DLQ is empty again.
        receiver.status = 204
        r = cli(config, "dlq", "replay", "--id", dead["delivery_id"])
        assert r.returncode == 0, r.stderr
        assert "Replayed 1 of 1" in r.stdout
        fourth = receiver.wait_for(4, timeout=20)[3]
        assert fourth.headers["webhook-id"] == dead["delivery_id"]
        assert json.loads(cli(config, "dlq", "list", "--json").stdout) == []

        # The audit trail has every attempt.
        records = []
        for _ in range(50):
            r = cli(config, "deliveries", "show", dead["mail_id"], "--json")
            records = json.loads(r.stdout) if r.returncode == 0 else []
            if len(records) >= 4:
                break
            time.sleep(0.1)
        assert [(x["result"], x["status"]) for x in records] == [
            ("failed", 500), ("failed", 500), ("failed", 500), ("delivered", 204)]
        table = cli(config, "deliveries", "show", dead["mail_id"]).stdout
        assert "delivered" in table and "HTTP 500" in table
        assert cli(config, "dlq", "replay").returncode == 2, "replay without a filter is a usage error"
    finally:
        dev.stop(signal.SIGINT)


def test_logs_hold_no_secret_signature_or_address(request, tmp_path, nats, receiver):
    smtp_port = free_port()
    config = tmp_path / "postwire.toml"
    config.write_text(dev_config(nats.url, smtp_port, receiver.url("/hook?token=url-secret-123")))
    receiver.delays = [0]
    dev = Process("dev", [postwire_path(), "dev", "--config", str(config), "--no-sink"], tmp_path,
                  env=child_env(RUST_LOG="info,postwire=debug,postwire_ingest=debug,postwire_stages=debug",
                                POSTWIRE_LOG_FORMAT="json"))
    attach_logs(request, dev)
    try:
        dev.wait_for_port(smtp_port)
        receiver.status = 500
        send(smtp_port)
        receiver.wait_for(2, timeout=20)
        receiver.status = 204
        got = receiver.wait_for(3, timeout=20)
        with smtplib.SMTP("127.0.0.1", smtp_port, local_hostname="client.test") as c:
            c.ehlo()
            c.mail("sender@example.com")
            assert c.rcpt("nobody@acme.test")[0] == 550
    finally:
        dev.stop(signal.SIGINT)
    logs = dev.stderr()
    assert "Delivered" in logs, "the capture holds the run"
    lines = [line for line in logs.splitlines() if line.startswith("{")]
    assert lines and all(json.loads(line) for line in lines), "structured JSON logs"
    secret_key = SECRET.removeprefix("whsec_")
    forbidden = {
        "secret": SECRET, "secret key": secret_key, "url token": "url-secret-123",
        "sender": "sender@example.com", "recipient": "support@acme.test", "refused recipient": "nobody@acme.test",
    }
    for r in got:
        forbidden["signature"] = r.headers["webhook-signature"].split(",", 1)[1]
    for what, value in forbidden.items():
        assert value not in logs, f"the logs contain the {what}"
