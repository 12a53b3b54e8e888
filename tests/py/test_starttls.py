"""STARTTLS against the real binary with real clients (Python smtplib, swaks), the
REQUIRETLS-style tenant policy, the STARTTLS command-injection case, certificate reload,
and a second listener."""

from __future__ import annotations

import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from support import Process, attach_logs, child_env, dev_config, free_port, postwire_path
from tls_support import make_ca_and_cert


def config(nats_url, smtp_port, hook_url, cert, key, require_tls=False, also=None):
    also_listen = f'also_listen = ["127.0.0.1:{also}"]\n' if also else ""
    return dev_config(nats_url, smtp_port, hook_url,
                      extra_smtp=f'{also_listen}tls_cert_file = "{cert}"\ntls_key_file = "{key}"',
                      extra_tenant=f"require_tls = {str(require_tls).lower()}")


@pytest.fixture
def tls_dev(request, tmp_path, nats, receiver):
    def start(require_tls=False, also=None):
        ca, cert, key = make_ca_and_cert(tmp_path)
        port = free_port()
        cfg = tmp_path / "postwire.toml"
        cfg.write_text(config(nats.url, port, receiver.url(), cert, key, require_tls, also))
        p = Process("dev", [postwire_path(), "dev", "--config", str(cfg), "--no-sink"], tmp_path,
                    env=child_env(RUST_LOG="info"))
        attach_logs(request, p)
        procs.append(p)
        p.wait_for_port(port)
        ctx = ssl.create_default_context(cafile=str(ca))
        return port, ctx, (ca, cert, key)

    procs = []
    yield start
    for p in procs:
        p.stop(signal.SIGINT)


MAIL = b"From: a@example.com\r\nTo: support@acme.test\r\nSubject: over tls\r\n\r\nsecret stuff\r\n"


def test_smtplib_starttls_delivers_with_tls_in_the_envelope(tls_dev, receiver):
    port, ctx, _ = tls_dev()
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as c:
        c.ehlo()
        assert c.has_extn("starttls")
        c.starttls(context=ctx)
        c.ehlo()
        assert not c.has_extn("starttls"), "not offered twice"
        c.sendmail("a@example.com", ["support@acme.test"], MAIL)
    event = receiver.wait_for(1)[0].json()
    assert event["envelope"]["tls"]["version"] in ("TLSv1.3", "TLSv1.2")
    assert event["envelope"]["tls"]["cipher"]
    received = next(v for n, v in event["message"]["headers"] if n == "Received")
    assert "with ESMTPS" in received


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed (make tools installs it with apt)")
def test_swaks_tls(tls_dev, receiver, tmp_path):
    port, _, (ca, _, _) = tls_dev()
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--to", "support@acme.test",
                        "--from", "a@example.com", "--tls", "--tls-verify", "--tls-ca-path", str(ca),
                        "--header", "Subject: swaks tls"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0" in r.stdout
    assert receiver.wait_for(1)[0].json()["message"]["subject"] == "swaks tls"


def test_plaintext_refused_when_the_tenant_requires_tls(tls_dev, receiver):
    port, ctx, _ = tls_dev(require_tls=True)
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as c:
        c.ehlo()
        c.mail("a@example.com")
        code, msg = c.rcpt("support@acme.test")
        assert code == 530 and msg.startswith(b"5.7.0"), (code, msg)
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as c:
        c.starttls(context=ctx)
        c.sendmail("a@example.com", ["support@acme.test"], MAIL)
    assert receiver.wait_for(1)[0].json()["envelope"]["tls"] is not None


def read_reply(f) -> tuple[int, str]:
    lines = []
    while True:
        line = f.readline().decode()
        assert line, "connection closed"
        lines.append(line[4:].strip())
        if line[3] == " ":
            return int(line[:3]), "\n".join(lines)


def test_commands_pipelined_after_starttls_are_not_executed(tls_dev):
    port, ctx, _ = tls_dev()
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = raw.makefile("rb")
    assert read_reply(f)[0] == 220
    raw.sendall(b"EHLO client.test\r\nSTARTTLS\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<support@acme.test>\r\n")
    assert read_reply(f)[0] == 250
    assert read_reply(f)[0] == 220
    tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    tf = tls.makefile("rb")
    tls.sendall(b"EHLO client.test\r\n")
    assert read_reply(tf)[0] == 250, "the first reply after the handshake answers our EHLO"
    tls.sendall(b"RCPT TO:<support@acme.test>\r\n")
    code, text = read_reply(tf)
    assert code == 503, f"the injected MAIL FROM must not have run: {code} {text}"
    tls.close()


def test_certificate_is_reloaded_when_the_files_change(tls_dev, tmp_path):
    port, ctx, (ca, cert, key) = tls_dev()

    def serial():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            f = s.makefile("rb")
            read_reply(f)
            s.sendall(b"EHLO c\r\nSTARTTLS\r\n")
            read_reply(f)
            read_reply(f)
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                return t.getpeercert()["serialNumber"]

    before = serial()
    _, new_cert, new_key = make_ca_and_cert(tmp_path, name="renewed")
    shutil.copy(new_key, key)
    shutil.copy(new_cert, cert)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if serial() != before:
            return
        time.sleep(0.5)
    raise AssertionError("the renewed certificate was never served")


def test_second_listener(tls_dev, receiver):
    also = free_port()
    tls_dev(also=also)
    with smtplib.SMTP("127.0.0.1", also, local_hostname="client.test") as c:
        c.sendmail("a@example.com", ["support@acme.test"], MAIL)
    assert receiver.wait_for(1)[0].json()["message"]["subject"] == "over tls"
