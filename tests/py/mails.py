"""Test messages."""

import uuid


def utf8_message(subject: str) -> bytes:
    """An RFC 5322 message with an 8-bit UTF-8 body (needs BODY=8BITMIME)."""
    head = (
        "From: Sender <sender@example.com>\r\n"
        "To: Support <support@acme.test>\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4()}@example.com>\r\n"
        "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
    )
    body = "Hallo,\r\n\r\nviele Grüße aus Köln\r\n"
    return head.encode("ascii") + body.encode("utf-8")
