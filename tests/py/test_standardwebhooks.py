"""The delivered request verifies with the third-party `standardwebhooks` package."""

import base64
import uuid

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from mails import utf8_message


@pytest.fixture
def delivered(postwire_dev):
    """Sends one mail and returns the request the receiver got for it."""
    assert postwire_dev.send(utf8_message(f"signed {uuid.uuid4()}")) == {}
    [request] = postwire_dev.receiver.wait_for(1, timeout=15)
    return request


def signature_headers(request) -> dict:
    return {name: request.headers[name]
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}


def test_delivery_verifies(postwire_dev, delivered):
    headers = signature_headers(delivered)
    assert any(sig.startswith("v1,") for sig in headers["webhook-signature"].split())
    event = Webhook(postwire_dev.secret).verify(delivered.body, headers)
    assert event["id"] == headers["webhook-id"]
    assert event["schema"] == "postwire.email.v1"


def test_changed_body_byte_fails(postwire_dev, delivered):
    body = bytearray(delivered.body)
    at = body.index(b"postwire.email.v1")
    body[at] = ord("q")  # still valid UTF-8 and JSON, one byte different
    with pytest.raises(WebhookVerificationError):
        Webhook(postwire_dev.secret).verify(bytes(body), signature_headers(delivered))


def test_wrong_secret_fails(delivered):
    other = "whsec_" + base64.b64encode(b"not the endpoint's secret 32 by").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(delivered.body, signature_headers(delivered))
