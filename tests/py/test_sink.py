"""`postwire sink`: a local receiver that verifies Standard Webhooks signatures and prints."""

import json
import signal
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

import pytest
from standardwebhooks.webhooks import Webhook

from support import (
    SECRET,
    STOP_TIMEOUT,
    Process,
    attach_logs,
    child_env,
    free_port,
    postwire_path,
)


@pytest.fixture
def sink(request, tmp_path):
    port = free_port()
    process = Process(
        "postwire-sink",
        [postwire_path(), "sink", "--listen", f"127.0.0.1:{port}", "--secret", SECRET],
        tmp_path,
        env=child_env(),
    )
    attach_logs(request, process)
    try:
        process.wait_for_port(port, timeout=15)
        process.url = f"http://127.0.0.1:{port}/hooks/test"
        yield process
    finally:
        code = process.stop(signal.SIGINT)
    assert code is not None, f"postwire sink did not exit within {STOP_TIMEOUT} s of SIGINT"


def signed_delivery(secret: str = SECRET):
    """A JSON body with fresh Standard Webhooks headers, signed by the third-party package."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    marker = f"marker-{uuid.uuid4().hex}"
    body = json.dumps(
        {"schema": "postwire.email.v1", "id": msg_id, "tenant": "acme", "route": "support",
         "message": {"subject": marker}},
        separators=(",", ":"),
    )
    now = datetime.now(tz=timezone.utc)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }
    return msg_id, marker, body.encode("utf-8"), headers


def post(url: str, body: bytes, headers: dict) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def verified_line(output: str, msg_id: str) -> str | None:
    return next((line for line in output.splitlines()
                 if msg_id in line and "verified" in line), None)


def test_signed_delivery_is_verified_and_printed(sink):
    msg_id, marker, body, headers = signed_delivery()
    status = post(sink.url, body, headers)
    assert 200 <= status < 300, status

    out = sink.wait_for_output(marker)  # the JSON payload is printed after the line
    assert verified_line(out, msg_id), out
    assert out.index(msg_id) < out.index(marker)


def test_tampered_body_is_rejected_and_sink_keeps_running(sink):
    msg_id, _, body, headers = signed_delivery()
    tampered = body.replace(b'"tenant":"acme"', b'"tenant":"acmf"')
    assert tampered != body

    assert post(sink.url, tampered, headers) == 401
    out = sink.wait_for_output("REJECTED")
    assert not verified_line(out, msg_id), out
    assert sink.alive()

    # Still serving, and still verifying.
    msg_id, marker, body, headers = signed_delivery()
    status = post(sink.url, body, headers)
    assert 200 <= status < 300, status
    out = sink.wait_for_output(marker)
    assert verified_line(out, msg_id), out


def test_wrong_secret_is_rejected(sink):
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    msg_id, _, body, headers = signed_delivery(secret=other)
    assert post(sink.url, body, headers) == 401
    out = sink.wait_for_output("REJECTED")
    assert not verified_line(out, msg_id), out


def post_lines(url: str, body: bytes, header_lines: list[tuple[str, str]]) -> int:
    """POST with these header lines exactly, repeated names included."""
    import http.client
    from urllib.parse import urlsplit
    u = urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        c.putrequest("POST", u.path)
        for name, value in header_lines + [("content-length", str(len(body)))]:
            c.putheader(name, value)
        c.endheaders(body)
        return c.getresponse().status
    finally:
        c.close()


def test_a_replayed_request_is_refused(sink):
    """The same webhook-id, timestamp and signature twice: the second is a replay (401), as
    `postwire verify` says of it."""
    msg_id, marker, body, headers = signed_delivery()
    assert post(sink.url, body, headers) == 204
    sink.wait_for_output(marker)
    assert post(sink.url, body, headers) == 401
    out = sink.wait_for_output("replayed")
    assert f"REJECTED  {msg_id}" in out, out


def test_conflicting_repeated_signature_headers_are_refused(sink):
    """A second webhook-signature or webhook-timestamp with another value is refused, whichever
    comes first (the sink used to take the first one)."""
    for name, other in [("webhook-signature", "v1,AAAA"), ("webhook-timestamp", "1")]:
        msg_id, _, body, headers = signed_delivery()
        lines = list(headers.items()) + [(name, other)]
        assert post_lines(sink.url, body, lines) == 401, name
        out = sink.wait_for_output(f"REJECTED  {msg_id}")
        assert "more than once" in out, out
    # The same header repeated with the same value is one value.
    msg_id, marker, body, headers = signed_delivery()
    lines = list(headers.items()) + [("webhook-signature", headers["webhook-signature"])]
    assert post_lines(sink.url, body, lines) == 204
    assert verified_line(sink.wait_for_output(marker), msg_id)
