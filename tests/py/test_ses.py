"""Amazon SES intake: SNS notifications shaped like AWS's documented examples, signed by the
test with its own certificate served over local HTTPS, through `POST /ses` to the webhook.
Refusals (tampered, unknown topic, wrong certificate host, plain-http certificate URL)
enqueue nothing; a repeated notification is delivered once; the S3 action reads the mail
from `s3s-fs`; subscription confirmations only for allowed topics."""

from __future__ import annotations

import base64
import datetime
import json
import os
import signal
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from support import (
    Process,
    attach_logs,
    child_env,
    dev_config,
    free_port,
    postwire_path,
)
from tls_support import make_ca_and_cert
from test_storage_s3 import AK, S3S_FS, SK

ARN = "arn:aws:sns:us-east-1:123456789012:postwire-inbound"
MAIL = (b"From: Sender <sender@example.com>\r\nTo: support@acme.test\r\nSubject: via SES\r\n"
        b"Message-ID: <ses-1@example.com>\r\n\r\nHello through SES\r\n")


class CertServer:
    """HTTPS on 127.0.0.1 serving the SNS signing certificate and recording confirmations."""

    def __init__(self, d):
        self.ca, cert, key = make_ca_and_cert(d, "https")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=sns.amazonaws.com", "-keyout", "sns.key", "-out", "sns.pem"],
                       cwd=d, check=True, capture_output=True)
        self.pem = (d / "sns.pem").read_bytes()
        self.key = serialization.load_pem_private_key((d / "sns.key").read_bytes(), None)
        self.confirmed = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path.startswith("/confirm"):
                    outer.confirmed.append(self.path)
                    body = b"<ConfirmSubscriptionResponse/>"
                else:
                    body = outer.pem
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sign(self, m: dict, version="1") -> dict:
        fields = (["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"] if m["Type"] == "Notification"
                  else ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"])
        text = "".join(f"{k}\n{m[k]}\n" for k in fields if k in m)
        algo = hashes.SHA1() if version == "1" else hashes.SHA256()
        sig = self.key.sign(text.encode(), padding.PKCS1v15(), algo)
        return dict(m, SignatureVersion=version, Signature=base64.b64encode(sig).decode(),
                    SigningCertURL=m.get("SigningCertURL", f"{self.base}/SimpleNotificationService-test.pem"))


def notification(content=None, encoding="BASE64", action=None, message_id="o3vrnil0e2ic28tr", topic=ARN):
    receipt = {
        "timestamp": "2026-11-23T10:00:00.000Z", "processingTimeMillis": 222,
        "recipients": ["support@acme.test"],
        "spamVerdict": {"status": "PASS"}, "virusVerdict": {"status": "PASS"},
        "spfVerdict": {"status": "PASS"}, "dkimVerdict": {"status": "GRAY"}, "dmarcVerdict": {"status": "PASS"},
        "action": action or {"type": "SNS", "topicArn": topic, "encoding": encoding},
    }
    ses = {"notificationType": "Received", "receipt": receipt, "mail": {
        "timestamp": "2026-11-23T10:00:00.000Z", "source": "sender@example.com", "messageId": message_id,
        "destination": ["support@acme.test"], "headersTruncated": False,
        "commonHeaders": {"from": ["Sender <sender@example.com>"], "to": ["support@acme.test"], "subject": "via SES"}}}
    if content is not None:
        ses["content"] = content
    return {"Type": "Notification", "MessageId": f"sns-{message_id}", "TopicArn": topic,
            "Subject": "Amazon SES Email Receipt Notification", "Message": json.dumps(ses),
            "Timestamp": now_rfc3339()}


def now_rfc3339(ago_secs: int = 0) -> str:
    """The current time (less `ago_secs`) as SNS writes it: ingest refuses stale notifications."""
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=ago_secs)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def post(port, body: dict) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/ses", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "text/plain; charset=UTF-8",
                                          "x-amz-sns-message-type": body["Type"]})
    try:
        return urllib.request.urlopen(req, timeout=20).status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture
def ses(request, tmp_path, nats, receiver):
    certs = CertServer(tmp_path)
    smtp, ses_port = free_port(), free_port()
    s3_port = free_port()
    cfg = dev_config(nats.url, smtp, receiver.url()) + f"""
[ses]
listen = "127.0.0.1:{ses_port}"
topic_arns = ["{ARN}"]
cert_hosts = ["127.0.0.1"]
ca_file = "{certs.ca}"
s3_endpoint = "http://127.0.0.1:{s3_port}"
s3_path_style = true
"""
    (tmp_path / "postwire.toml").write_text(cfg)
    dev = Process("dev", [postwire_path(), "dev", "--config", str(tmp_path / "postwire.toml"), "--no-sink"], tmp_path,
                  env=child_env(RUST_LOG="info", AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK))
    attach_logs(request, dev)
    dev.wait_for_port(ses_port)
    yield certs, ses_port, s3_port
    dev.stop(signal.SIGINT)
    certs.server.shutdown()


def test_notifications_are_delivered_once(ses, nats, receiver):
    certs, port, _ = ses
    n1 = certs.sign(notification(base64.b64encode(MAIL).decode()), version="1")
    assert post(port, n1) == 200
    assert post(port, n1) == 200, "SNS redelivers; the second is acknowledged"
    n2 = certs.sign(notification(MAIL.decode().replace("ses-1", "ses-2"), encoding="UTF8", message_id="second"), version="2")
    assert post(port, n2) == 200
    got = receiver.wait_for(2)
    state = nats.wait_idle()
    assert state["MAIL"]["state"]["last_seq"] == 2, "the repeated notification was stored once"
    assert len(receiver.requests) == 2
    events = sorted((r.json() for r in got), key=lambda e: e["message"]["message_id"])
    assert [e["message"]["message_id"] for e in events] == ["ses-1@example.com", "ses-2@example.com"]
    e = events[0]
    assert e["message"]["subject"] == "via SES" and "Hello through SES" in e["message"]["text"]
    assert e["envelope"]["mail_from"] == "sender@example.com"
    assert e["envelope"]["ses"]["spf"] == "PASS" and e["envelope"]["ses"]["dkim"] == "GRAY"
    assert e["envelope"]["ses"]["message_id"] == "o3vrnil0e2ic28tr"


def test_refusals_enqueue_nothing(ses, nats, receiver):
    certs, port, _ = ses
    good = certs.sign(notification(base64.b64encode(MAIL).decode()))
    tampered = dict(good, Message=good["Message"].replace("via SES", "via SPOOF"))
    assert post(port, tampered) == 403
    assert post(port, certs.sign(notification(base64.b64encode(MAIL).decode(), topic="arn:aws:sns:us-east-1:1:other"))) == 403
    wrong_host = certs.sign(dict(notification(base64.b64encode(MAIL).decode()),
                                 SigningCertURL=certs.base.replace("127.0.0.1", "localhost") + "/c.pem"))
    assert post(port, wrong_host) == 403
    plain = certs.sign(dict(notification(base64.b64encode(MAIL).decode()),
                            SigningCertURL=certs.base.replace("https", "http") + "/c.pem"))
    assert post(port, plain) == 403
    # Signed and genuine, but older than ses.max_age_secs (a replay after the duplicate
    # window) or from the future.
    for ts in (now_rfc3339(ago_secs=1300), now_rfc3339(ago_secs=-600)):
        assert post(port, certs.sign(dict(notification(base64.b64encode(MAIL).decode()), Timestamp=ts))) == 403
    # Each refusal was answered after ingest decided: nothing was stored, so nothing can be
    # delivered later.
    assert nats.streams()["MAIL"]["state"]["last_seq"] == 0
    assert receiver.requests == []


def test_subscription_confirmed_only_for_allowed_topics(ses):
    certs, port, _ = ses
    sub = {"Type": "SubscriptionConfirmation", "MessageId": "sub-1", "Token": "tok123", "TopicArn": ARN,
           "Message": "You have chosen to subscribe", "SubscribeURL": f"{certs.base}/confirm?Token=tok123",
           "Timestamp": "2026-11-23T10:00:00.000Z"}
    other = dict(sub, TopicArn="arn:aws:sns:us-east-1:1:other", SubscribeURL=f"{certs.base}/confirm?Token=other")
    assert post(port, certs.sign(other)) == 403
    assert post(port, certs.sign(sub)) == 200
    assert certs.confirmed == ["/confirm?Token=tok123"]


@pytest.mark.skipif(not os.path.exists(S3S_FS), reason="s3s-fs not built (make tools builds it)")
def test_s3_action_reads_the_mail_from_the_bucket(request, ses, receiver, tmp_path):
    import boto3

    certs, port, s3_port = ses
    root = tmp_path / "s3root"
    (root / "inbound").mkdir(parents=True)
    s3 = Process("s3s-fs", [S3S_FS, "--host", "127.0.0.1", "--port", str(s3_port), "--access-key", AK,
                            "--secret-key", SK, str(root)], tmp_path)
    attach_logs(request, s3)
    try:
        s3.wait_for_port(s3_port)
        big = MAIL.replace(b"Hello through SES", b"Hello " + b"x" * 200_000)
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
                     aws_access_key_id=AK, aws_secret_access_key=SK).put_object(Bucket="inbound", Key="mail/abc", Body=big)
        n = certs.sign(notification(action={"type": "S3", "topicArn": ARN, "bucketName": "inbound", "objectKey": "mail/abc"}))
        assert post(port, n) == 200
        e = receiver.wait_for(1)[0].json()
        assert e["message"]["subject"] == "via SES" and len(e["message"]["text"]) > 200_000
    finally:
        s3.stop(signal.SIGTERM)
