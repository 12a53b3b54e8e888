"""What the admin API tests share: the tokens, a client, the two-tenant configuration and
the `system` fixture (a `postwire dev` with the admin API on)."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request

import pytest

from support import dev_config, free_port, poll as wait, send_mail, start_dev  # noqa: F401 (wait is used by the tests)

GLOBAL = "global-admin-token-0123456789"
ACME = "acme-tenant-token-0123456789"
BETA_SECRET = "whsec_YmV0YS1zZWNyZXQtYmV0YS1zZWNyZXQtYmV0YQ=="
MAIL = (b"From: a@example.com\r\nTo: {to}\r\nSubject: {subject}\r\n"
        b"Message-ID: <{subject}@example.com>\r\n\r\nhello\r\n")


def mail(to: str, subject: str) -> bytes:
    return MAIL.replace(b"{to}", to.encode()).replace(b"{subject}", subject.encode())


class Api:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, token: str | None = GLOBAL, body=None,
             headers: dict | None = None, raw: bytes | None = None):
        """(status, headers, parsed JSON or None)."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                text = r.read()
                return r.status, r.headers, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, e.headers, (json.loads(text) if text else None)


def is_problem(status: int, headers, body, code: int) -> None:
    assert status == code, (status, body)
    assert headers["Content-Type"] == "application/problem+json", headers["Content-Type"]
    assert body["status"] == code and body["title"] and body["detail"], body
    assert body["type"].startswith("https://postwire.dev/problems/"), body


def two_tenants(nats_url: str, smtp_port: int, hook: str, admin_port: int, beta_url: str,
                beta_endpoint: str = "gone") -> str:
    """acme as `dev_config` has it; beta (beta.test) sending everything to `beta_endpoint` at
    `beta_url`; token `acme-ops` (from ACME_ADMIN_TOKEN) limited to acme."""
    return dev_config(nats_url, smtp_port, hook, admin_port=admin_port) + f"""
[tenants.beta]
domains = ["beta.test"]

[[tenants.beta.routes]]
name = "all"
recipients = ["*"]
endpoints = ["{beta_endpoint}"]

[tenants.beta.endpoints.{beta_endpoint}]
url = "{beta_url}"
allow_http = true
secret = "{BETA_SECRET}"

[[admin.tokens]]
name = "acme-ops"
token_env = "ACME_ADMIN_TOKEN"
tenants = ["acme"]
"""


@pytest.fixture
def system(request, tmp_path, nats, receiver):
    """`postwire dev` with the admin API, tenants acme (delivering to the receiver) and beta
    (its endpoint refuses connections, so its mail ends in the DLQ)."""
    smtp_port, admin_port = free_port(), free_port()
    dev = start_dev(request, tmp_path,
                    two_tenants(nats.url, smtp_port, receiver.url("/hook"), admin_port,
                                f"http://127.0.0.1:{free_port()}/gone"),
                    smtp_port, admin_port, POSTWIRE_ADMIN_TOKEN=GLOBAL, ACME_ADMIN_TOKEN=ACME)
    yield smtp_port, Api(admin_port), tmp_path / "postwire.toml"
    assert dev.stop(signal.SIGINT) in (0, 130)


def send(smtp_port: int, to: str, subject: str) -> None:
    send_mail(smtp_port, to, mail(to, subject))


