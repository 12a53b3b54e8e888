"""SMTP ingest, driven by Python's smtplib, through to the webhook the receiver gets."""

import re
import smtplib
import uuid

import pytest

from mails import utf8_message
from support import deliveries

REQUIRED_EXTENSIONS = ["pipelining", "8bitmime", "smtputf8", "size", "enhancedstatuscodes"]


def test_greeting_and_ehlo_extensions(postwire_dev):
    client = smtplib.SMTP(local_hostname="client.test", timeout=20)
    try:
        code, greeting = client.connect("127.0.0.1", postwire_dev.smtp_port)
        assert code == 220
        assert greeting.startswith(b"mx.test"), greeting

        code, _ = client.ehlo()
        assert code == 250
        missing = [ext for ext in REQUIRED_EXTENSIONS if not client.has_extn(ext)]
        assert not missing, f"EHLO lacks {missing}: {client.esmtp_features}"
        assert int(client.esmtp_features["size"]) > 0
    finally:
        client.close()


@pytest.mark.parametrize(
    "rcpt, enhanced",
    [
        ("nobody@other.test", r"5\.\d\.\d"),  # not our domain: relaying denied (5.7.1 or so)
        ("nobody@acme.test", r"5\.1\.1"),  # our domain, no route: bad mailbox
    ],
    ids=["other-domain", "unknown-mailbox"],
)
def test_unknown_recipient_refused_at_rcpt(postwire_dev, rcpt, enhanced):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        postwire_dev.send(utf8_message("nobody home"), rcpt=[rcpt])
    code, text = refused.value.recipients[rcpt]
    assert code == 550, (code, text)
    assert re.match(enhanced.encode(), text), text


def test_utf8_mail_becomes_one_webhook(postwire_dev):
    subject = f"Order {uuid.uuid4()} arrived"
    refused = postwire_dev.send(utf8_message(subject), mail_options=["BODY=8BITMIME"])
    assert refused == {}

    [request] = postwire_dev.receiver.wait_for(1, timeout=15)
    assert request.path == "/hook"
    assert request.headers.get("content-type", "").startswith("application/json")

    event = request.json()
    assert event["schema"] == "postwire.email.v1"
    assert event["tenant"] == "acme"
    assert event["route"] == "support"
    assert event["mail_id"]
    assert event["envelope"]["mail_from"] == "sender@example.com"
    assert event["envelope"]["rcpt_to"] == ["support@acme.test"]
    assert event["message"]["subject"] == subject
    assert "Grüße" in event["message"]["text"]
    assert request.headers["webhook-id"] == event["id"]

    # Exactly one delivery: once the pipeline is idle nothing else can turn up; JetStream
    # handed the mail out once, and the worker's first attempt (the default) delivered it, so
    # nothing went to OUTBOX.
    state = postwire_dev.nats.wait_idle()
    assert len(postwire_dev.receiver.requests) == 1, postwire_dev.receiver.requests
    assert deliveries(state, "process", "MAIL") == (1, 1, 1)
    assert state["OUTBOX"]["state"]["last_seq"] == 0, state["OUTBOX"]
