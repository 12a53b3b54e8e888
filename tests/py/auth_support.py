"""Helpers for the authentication tests: RSA keys made with openssl, messages signed with
dkimpy (an implementation independent of postwire's), and the `[verify]` section pointing
postwire at the test's DNS server."""

from __future__ import annotations

import base64
import subprocess
import uuid
from dataclasses import dataclass
from email.utils import formatdate

import dkim


@dataclass
class Key:
    private_pem: bytes
    public_b64: str

    @property
    def record(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_b64}"


def rsa_key() -> Key:
    pem = subprocess.run(["openssl", "genrsa", "-traditional", "2048"], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER"], input=pem,
                         check=True, capture_output=True).stdout
    return Key(private_pem=pem, public_b64=base64.b64encode(der).decode())


def message(from_addr: str, subject: str, body: str = "Hello from the auth tests.\r\n") -> bytes:
    return (
        f"From: Sender <{from_addr}>\r\n"
        f"To: support@acme.test\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {formatdate()}\r\n"
        f"Message-ID: <{uuid.uuid4()}@test>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"\r\n"
        f"{body}"
    ).encode()


def sign(msg: bytes, key: Key, domain: str, selector: str = "sel") -> bytes:
    sig = dkim.sign(msg, selector.encode(), domain.encode(), key.private_pem,
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
                    canonicalize=(b"relaxed", b"relaxed"))
    return sig + msg


def verify_section(dns_address: str, **extra) -> str:
    lines = ["[verify]", f'dns_servers = ["{dns_address}"]', "dns_timeout_ms = 400",
             "dns_attempts = 1", "dns_retry_delay_ms = 300", "max_dns_retries = 20"]
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def by_subject(requests) -> dict:
    return {r.json()["message"]["subject"]: r.json() for r in requests}


def arc_seal(msg: bytes, key: Key, domain: str, selector: str = "sel") -> bytes:
    """Adds one ARC set as an intermediary `domain` would (dkimpy's arc_sign)."""
    msg = f"Authentication-Results: {domain}; spf=pass smtp.mailfrom={domain}\r\n".encode() + msg
    headers = dkim.arc_sign(msg, selector.encode(), domain.encode(), key.private_pem,
                            domain.encode(), include_headers=[b"from", b"to", b"subject"])
    return b"".join(headers) + msg
