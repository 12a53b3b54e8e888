"""Attachments and the raw message in storage, with expiring signed URLs: the filesystem
backend served by postwire itself (403 when expired or tampered), the attachment policies
store / inline / drop, large messages streamed to storage during DATA (claim check), and the
raw-mail retention sweep."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import smtplib
import socket
import subprocess
import time
import urllib.error
import urllib.request
from email.message import EmailMessage

import pytest

from support import Process, attach_logs, child_env, dev_config, free_port, postwire_path, wait_until

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40


def storage_config(nats, port, receiver, blob_port, tmp_path, policy="store", expiry=3600,
                   storage_extra="", smtp_extra=""):
    return dev_config(nats.url, port, receiver.url(), extra_smtp=smtp_extra,
                      extra_tenant=f'attachments = "{policy}"') + f"""
[storage]
backend = "fs"
path = "{tmp_path / 'blobs'}"
listen = "127.0.0.1:{blob_port}"
public_url = "http://127.0.0.1:{blob_port}"
url_expiry_secs = {expiry}
{storage_extra}
"""


def incoming_files(tmp_path):
    """Files of uploads in progress (`_incoming/`, including object_store's staging files)."""
    root = tmp_path / "blobs" / "_incoming"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def assert_expires_when_stated(att, status, timeout=15.0, early=0.5):
    """The URL works until its stated `url_expires_at` and is refused after it: polls until
    refused, then checks that was not more than `early` seconds before the stated time."""
    from datetime import datetime

    expires = datetime.fromisoformat(att["url_expires_at"].replace("Z", "+00:00")).timestamp()
    assert expires > time.time(), "the URL is still valid when delivered"
    while status(att["url"]) != 403:
        assert time.time() < expires + timeout, f"still served {timeout} s after it expired"
        time.sleep(0.1)
    assert time.time() >= expires - early, "refused before its stated expiry"


def send_with_attachment(port):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.com", "support@acme.test", "with attachment"
    m.set_content("see attached")
    m.add_attachment(PDF, maintype="application", subtype="pdf", filename="report.pdf")
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.send_message(m)
    return m.as_bytes()


def fetch(url):
    return urllib.request.urlopen(url, timeout=10).read()


def status(url):
    try:
        urllib.request.urlopen(url, timeout=10)
        return 200
    except urllib.error.HTTPError as e:
        return e.code


def start(request, tmp_path, text, key="k" * 40):
    cfg = tmp_path / "postwire.toml"
    cfg.write_text(text)
    dev = Process("dev", [postwire_path(), "dev", "--config", str(cfg), "--no-sink"], tmp_path,
                  env=child_env(RUST_LOG="info", POSTWIRE_BLOB_KEY=key))
    attach_logs(request, dev)
    return dev


def test_fs_backend_urls_round_trip_and_refuse_tampering_and_expiry(request, tmp_path, nats, receiver):
    port, blob_port = free_port(), free_port()
    dev = start(request, tmp_path, storage_config(nats, port, receiver, blob_port, tmp_path, expiry=3))
    try:
        dev.wait_for_port(port)
        send_with_attachment(port)
        event = receiver.wait_for(1)[0].json()
        att = event["message"]["attachments"][0]
        assert att["filename"] == "report.pdf"
        body = fetch(att["url"])
        assert hashlib.sha256(body).hexdigest() == att["sha256"] == hashlib.sha256(PDF).hexdigest()
        assert att["url_expires_at"]
        raw = fetch(event["raw"]["url"])
        assert hashlib.sha256(raw).hexdigest() == event["raw"]["sha256"]
        assert b"Subject: with attachment" in raw
        # Content-addressed keys per tenant.
        assert f"/blobs/acme/{att['sha256']}?" in att["url"]
        tampered = att["url"].replace("sig=", "sig=0")
        assert status(tampered) == 403
        other = att["url"].replace(att["sha256"], event["raw"]["sha256"])
        assert status(other) == 403, "a signature is bound to its object"
        assert status(att["url"].split("?")[0]) == 403, "unsigned is refused"
        assert_expires_when_stated(att, status)
    finally:
        dev.stop(signal.SIGINT)


def test_redelivered_mail_does_not_duplicate_objects(request, tmp_path, nats, receiver):
    port, blob_port = free_port(), free_port()
    dev = start(request, tmp_path, storage_config(nats, port, receiver, blob_port, tmp_path))
    try:
        dev.wait_for_port(port)
        send_with_attachment(port)
        send_with_attachment(port)
        receiver.wait_for(2)
    finally:
        dev.stop(signal.SIGINT)
    objects = sorted(p.name for p in (tmp_path / "blobs" / "acme").iterdir())
    # One attachment object shared by both mails, and one raw message each.
    assert hashlib.sha256(PDF).hexdigest() in objects
    assert len(objects) == 3, objects
    assert sum(o.endswith(".eml") for o in objects) == 2, objects


@pytest.mark.parametrize("policy", ["inline", "drop"])
def test_attachment_policies(request, tmp_path, nats, receiver, policy):
    port, blob_port = free_port(), free_port()
    dev = start(request, tmp_path, storage_config(nats, port, receiver, blob_port, tmp_path, policy=policy))
    try:
        dev.wait_for_port(port)
        send_with_attachment(port)
        att = receiver.wait_for(1)[0].json()["message"]["attachments"][0]
    finally:
        dev.stop(signal.SIGINT)
    assert att["sha256"] == hashlib.sha256(PDF).hexdigest() and att["size"] == len(PDF)
    if policy == "inline":
        assert base64.b64decode(att["content_base64"]) == PDF
        assert "url" not in att
    else:
        assert "url" not in att and "content_base64" not in att


def test_large_message_travels_by_claim_check(request, tmp_path, nats, receiver):
    """A 40 MiB message with several large attachments is far above NATS's 1 MiB
    max_payload: ingest stores it and publishes a reference; it is delivered whole."""
    port, blob_port = free_port(), free_port()
    dev = start(request, tmp_path, storage_config(nats, port, receiver, blob_port, tmp_path))
    parts = [bytes([i]) * (9 * 1024 * 1024) + hashlib.sha256(bytes([i])).digest() for i in range(3)]
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.com", "support@acme.test", "big one"
    m.set_content("three large attachments")
    for i, p in enumerate(parts):
        m.add_attachment(p, maintype="application", subtype="octet-stream", filename=f"part{i}.bin")
    raw = m.as_bytes()
    assert len(raw) > 36 * 1024 * 1024
    try:
        dev.wait_for_port(port)
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as c:
            assert "size" in c.ehlo()[1].decode().lower()
            c.sendmail("a@example.com", ["support@acme.test"], raw)
        event = receiver.wait_for(1, timeout=120)[0].json()
    finally:
        dev.stop(signal.SIGINT)
    atts = event["message"]["attachments"]
    assert [a["filename"] for a in atts] == ["part0.bin", "part1.bin", "part2.bin"]
    assert [a["sha256"] for a in atts] == [hashlib.sha256(p).hexdigest() for p in parts]
    assert event["raw"]["size"] > len(raw)  # plus our Received header
    # Streamed during DATA to a temporary object, then moved to its content-addressed key:
    # nothing is left behind, and the stored raw message is what the payload describes.
    assert incoming_files(tmp_path) == []
    stored = tmp_path / "blobs" / "acme" / f"{event['raw']['sha256']}.eml"
    data = stored.read_bytes()
    assert hashlib.sha256(data).hexdigest() == event["raw"]["sha256"]
    assert data.startswith(b"Received: from ") and data.endswith(raw + b"\r\n")


def smtp_lines(sock):
    """Reads one (possibly multi-line) SMTP reply."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) > 1 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return data


def open_data(port):
    """A raw SMTP connection that is inside DATA."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    smtp_lines(s)
    for cmd in [b"EHLO client.test", b"MAIL FROM:<a@example.com>", b"RCPT TO:<support@acme.test>", b"DATA"]:
        s.sendall(cmd + b"\r\n")
        smtp_lines(s)
    s.sendall(b"From: a@example.com\r\nSubject: big\r\n\r\n")
    return s


def test_streamed_upload_is_removed_when_the_client_goes_away_or_sends_too_much(request, tmp_path, nats, receiver):
    """Content past the inline limit is in storage while DATA is still arriving; a
    connection lost mid-DATA and a 552 over-size both delete that partial upload."""
    port, blob_port = free_port(), free_port()
    dev = start(request, tmp_path, storage_config(nats, port, receiver, blob_port, tmp_path,
                                                  smtp_extra="max_message_bytes = 4194304"))
    line = b"x" * 998 + b"\r\n"
    try:
        dev.wait_for_port(port)
        s = open_data(port)
        s.sendall(line * 2048)  # 2 MiB: four times the inline limit
        wait_until(lambda: incoming_files(tmp_path), 20, "an upload in _incoming/ during DATA", 0.05)
        s.close()
        wait_until(lambda: incoming_files(tmp_path) == [], 20, "the partial upload removed", 0.05)

        s = open_data(port)
        s.sendall(line * 5000 + b".\r\n")  # 5 MB > max_message_bytes
        assert smtp_lines(s).startswith(b"552"), "over-size is refused"
        s.sendall(b"QUIT\r\n")
        s.close()
        wait_until(lambda: incoming_files(tmp_path) == [], 20, "the over-size upload removed", 0.05)
        assert not receiver.requests
    finally:
        dev.stop(signal.SIGINT)


def test_raw_mail_retention_sweep(request, tmp_path, nats, receiver):
    """Raw messages older than storage.raw_retention_days are deleted by the worker's
    periodic sweep and by `postwire storage sweep`; attachments and fresh raw mail stay."""
    port, blob_port = free_port(), free_port()
    cfg_text = storage_config(nats, port, receiver, blob_port, tmp_path,
                              storage_extra="raw_retention_days = 30\nsweep_interval_secs = 1")
    dev = start(request, tmp_path, cfg_text)
    acme = tmp_path / "blobs" / "acme"
    old = time.time() - 40 * 86400
    try:
        dev.wait_for_port(port)
        send_with_attachment(port)
        event = receiver.wait_for(1)[0].json()
        fresh = acme / f"{event['raw']['sha256']}.eml"
        assert fresh.exists()
        expired = acme / (("0" * 64) + ".eml")
        expired.write_bytes(fresh.read_bytes())
        os.utime(expired, (old, old))
        old_attachment = acme / hashlib.sha256(PDF).hexdigest()
        os.utime(old_attachment, (old, old))
        wait_until(lambda: not expired.exists(), 20, "the expired raw message deleted", 0.05)
        assert fresh.exists(), "a raw message within the retention period is kept"
        assert old_attachment.exists(), "attachments are not swept"
    finally:
        dev.stop(signal.SIGINT)
    # The command: an explicit cutoff after the fresh raw message deletes it too.
    out = subprocess.run([postwire_path(), "storage", "sweep", "--config", str(tmp_path / "postwire.toml"),
                          "--before", "2999-01-01T00:00:00Z"],
                         capture_output=True, text=True, timeout=60, env=child_env())
    assert out.returncode == 0, out.stderr
    assert "deleted 1 raw message(s)" in out.stdout
    assert not fresh.exists() and old_attachment.exists()
