"""The S3 backend against real S3-compatible servers: `s3s-fs` (checks SigV4 signatures and
presigned-URL expiry) for uploads and presigned URLs, and moto's server (echoes
server-side-encryption headers) for SSE."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request

import pytest

from support import Process, attach_logs, child_env, dev_config, free_port, postwire_path
from test_storage import PDF, assert_expires_when_stated, send_with_attachment

# 6 MiB: its message is streamed to S3 in two multipart parts (5 MiB is S3's minimum).
BIG = hashlib.sha256(b"big").digest() * (6 * 1024 * 1024 // 32)


def send_big(port, data=BIG):
    from email.message import EmailMessage
    import smtplib

    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.com", "support@acme.test", "big"
    m.set_content("large attachment")
    m.add_attachment(data, maintype="application", subtype="octet-stream", filename="big.bin")
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
        c.send_message(m)

TOOLS = os.environ.get("POSTWIRE_TOOLS") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "postwire")
S3S_FS = os.path.join(TOOLS, "cargo", "bin", "s3s-fs")
AK, SK = "postwiretestkey", "postwire-test-secret-key-0123456789"


def s3_config(nats, port, receiver, endpoint, bucket, expiry=3600, sse="none"):
    return dev_config(nats.url, port, receiver.url()) + f"""
[storage]
backend = "s3"
bucket = "{bucket}"
region = "us-east-1"
endpoint = "{endpoint}"
path_style = true
url_expiry_secs = {expiry}
sse = "{sse}"
"""


def status(url):
    try:
        return urllib.request.urlopen(url, timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code


def run_dev(request, tmp_path, text):
    cfg = tmp_path / "postwire.toml"
    cfg.write_text(text)
    dev = Process("dev", [postwire_path(), "dev", "--config", str(cfg), "--no-sink"], tmp_path,
                  env=child_env(RUST_LOG=os.environ.get("PW_TEST_RUST_LOG", "info"), AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK))
    attach_logs(request, dev)
    return dev


@pytest.mark.skipif(not os.path.exists(S3S_FS), reason="s3s-fs not built (make tools builds it)")
def test_s3s_fs_presigned_urls(request, tmp_path, nats, receiver):
    root = tmp_path / "s3"
    (root / "mail").mkdir(parents=True)
    s3_port = free_port()
    s3 = Process("s3s-fs", [S3S_FS, "--host", "127.0.0.1", "--port", str(s3_port),
                            "--access-key", AK, "--secret-key", SK, str(root)], tmp_path)
    attach_logs(request, s3)
    port = free_port()
    dev = run_dev(request, tmp_path, s3_config(nats, port, receiver, f"http://127.0.0.1:{s3_port}", "mail", expiry=4))
    try:
        s3.wait_for_port(s3_port)
        dev.wait_for_port(port)
        send_with_attachment(port)
        event = receiver.wait_for(1)[0].json()
        att = event["message"]["attachments"][0]
        body = urllib.request.urlopen(att["url"], timeout=10).read()
        assert hashlib.sha256(body).hexdigest() == att["sha256"] == hashlib.sha256(PDF).hexdigest()
        assert (root / "mail" / "acme" / att["sha256"]).exists(), "stored under <tenant>/<sha256>"
        raw = urllib.request.urlopen(event["raw"]["url"], timeout=10).read()
        assert hashlib.sha256(raw).hexdigest() == event["raw"]["sha256"]
        assert "X-Amz-Signature=" in att["url"]
        sig = att["url"].split("X-Amz-Signature=")[1][:64]
        flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
        assert status(att["url"].replace(sig, flipped)) == 403, "tampered signature"
        other = att["url"].replace(att["sha256"], event["raw"]["sha256"])
        assert status(other) == 403, "a signature is bound to its object"
        # SigV4 signs with a whole-second X-Amz-Date, while url_expires_at keeps the fraction
        # of the second the URL was made in: the URL may end up to 1 s before the stated time.
        assert_expires_when_stated(att, status, early=1.0)
    finally:
        dev.stop(signal.SIGINT)
        s3.stop(signal.SIGTERM)


@pytest.mark.skipif(not os.path.exists(S3S_FS), reason="s3s-fs not built (make tools builds it)")
def test_s3s_fs_large_message_is_streamed_in_parts(request, tmp_path, nats, receiver):
    """A message past the inline limit goes to S3 as a multipart upload during DATA, is
    copied to <tenant>/<sha256>.eml and its temporary object deleted."""
    root = tmp_path / "s3"
    (root / "mail").mkdir(parents=True)
    s3_port = free_port()
    s3 = Process("s3s-fs", [S3S_FS, "--host", "127.0.0.1", "--port", str(s3_port),
                            "--access-key", AK, "--secret-key", SK, str(root)], tmp_path)
    attach_logs(request, s3)
    port = free_port()
    dev = run_dev(request, tmp_path, s3_config(nats, port, receiver, f"http://127.0.0.1:{s3_port}", "mail"))
    try:
        s3.wait_for_port(s3_port)
        dev.wait_for_port(port)
        send_big(port)
        event = receiver.wait_for(1, timeout=60)[0].json()
        att = event["message"]["attachments"][0]
        assert hashlib.sha256(urllib.request.urlopen(att["url"], timeout=30).read()).hexdigest() \
            == att["sha256"] == hashlib.sha256(BIG).hexdigest()
        raw = urllib.request.urlopen(event["raw"]["url"], timeout=30).read()
        assert len(raw) > 8 * 1024 * 1024
        assert hashlib.sha256(raw).hexdigest() == event["raw"]["sha256"]
    finally:
        dev.stop(signal.SIGINT)
        s3.stop(signal.SIGTERM)
    assert (root / "mail" / "acme" / f"{event['raw']['sha256']}.eml").exists()
    incoming = root / "mail" / "_incoming"
    assert not incoming.exists() or not [p for p in incoming.rglob("*") if p.is_file()]


@pytest.mark.skipif(shutil.which("moto_server") is None, reason="moto server not installed (make tools)")
def test_moto_receives_the_sse_header(request, tmp_path, nats, receiver):
    import boto3

    m_port = free_port()
    moto = Process("moto", ["moto_server", "-H", "127.0.0.1", "-p", str(m_port)], tmp_path)
    attach_logs(request, moto)
    port = free_port()
    endpoint = f"http://127.0.0.1:{m_port}"
    dev = None
    try:
        moto.wait_for_port(m_port)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=AK, aws_secret_access_key=SK)
        s3.create_bucket(Bucket="mail")
        dev = run_dev(request, tmp_path, s3_config(nats, port, receiver, endpoint, "mail", sse="aes256"))
        dev.wait_for_port(port)
        send_with_attachment(port)
        att = receiver.wait_for(1)[0].json()["message"]["attachments"][0]
        head = s3.head_object(Bucket="mail", Key=f"acme/{att['sha256']}")
        assert head["ServerSideEncryption"] == "AES256"
        assert head["ContentLength"] == len(PDF)
        # A large message: streamed (multipart upload), then copied to its final key.
        send_big(port, BIG[: 1024 * 1024])
        event = receiver.wait_for(2, timeout=60)[1].json()
        head = s3.head_object(Bucket="mail", Key=f"acme/{event['raw']['sha256']}.eml")
        assert head["ServerSideEncryption"] == "AES256"
        assert head["ContentLength"] == event["raw"]["size"]
        left = s3.list_objects_v2(Bucket="mail", Prefix="_incoming/").get("KeyCount", 0)
        assert left == 0, "the temporary upload is deleted"
    finally:
        if dev:
            dev.stop(signal.SIGINT)
        moto.stop(signal.SIGTERM)
