"""Attachments and the raw message in storage, with expiring signed URLs: the filesystem
backend served by postwire itself (403 when expired or tampered), and the attachment
policies store / inline / drop."""

from __future__ import annotations

import base64
import hashlib
import signal
import smtplib
import time
import urllib.error
import urllib.request
from email.message import EmailMessage

import pytest

from conftest import dev_config
from support import Process, attach_logs, child_env, free_port, postwire_path

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40


def storage_config(nats, port, receiver, blob_port, tmp_path, policy="store", expiry=3600):
    base = dev_config(nats.url, port, receiver.url())
    base = base.replace('domains = ["acme.test"]', f'domains = ["acme.test"]\nattachments = "{policy}"')
    return base + f"""
[storage]
backend = "fs"
path = "{tmp_path / 'blobs'}"
listen = "127.0.0.1:{blob_port}"
public_url = "http://127.0.0.1:{blob_port}"
url_expiry_secs = {expiry}
"""


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
        time.sleep(4)
        assert status(att["url"]) == 403, "expired"
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
