"""A MIME-rich mail through SMTP to the webhook: the payload carries the parsed, sanitised
message (built here with Python's own `email` package, an independent MIME writer)."""

import hashlib
from email.message import EmailMessage
from email.policy import SMTP


def rich_message() -> bytes:
    inner = EmailMessage()
    inner["From"] = "Bob <bob@example.org>"
    inner["To"] = "ann@example.com"
    inner["Subject"] = "the original"
    inner.set_content("Original text.\n")

    msg = EmailMessage(policy=SMTP)
    msg["From"] = "Ann Exämple <ann@example.com>"
    msg["To"] = "Support <support@acme.test>"
    msg["Cc"] = "Team: bob@acme.test, carol@acme.test;"
    msg["Subject"] = "Re: Grüße – invoice"
    msg.set_content("Thanks, paid.\n\nOn Mon, 23 Nov 2026 at 10:00, Support <support@acme.test> wrote:\n> Please pay.\n")
    msg.add_alternative(
        '<p onclick="x()">Thanks, <b>paid</b>.</p><script>alert(1)</script>'
        '<a href="javascript:alert(2)">js</a><form action="https://evil.example"><input></form>',
        subtype="html",
    )
    msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf",
                       filename="../../Rechnung März.pdf")
    msg.add_attachment(inner)
    return msg.as_bytes()


def test_rich_mime_becomes_a_parsed_sanitised_payload(postwire_dev):
    assert postwire_dev.send(rich_message()) == {}
    [request] = postwire_dev.receiver.wait_for(1, timeout=20)
    m = request.json()["message"]
    assert m["subject"] == "Re: Grüße – invoice"
    assert m["from"] == [{"name": "Ann Exämple", "address": "ann@example.com"}]
    assert [c.get("group") for c in m["cc"]] == ["Team", "Team"]
    assert m["stripped_text"] == "Thanks, paid."
    assert "Please pay." in m["text"]
    html = m["html"]
    assert "<b>paid</b>" in html
    for bad in ("onclick", "<script", "javascript:", "<form", "<input"):
        assert bad not in html, html
    pdf, enclosed = m["attachments"]
    assert pdf["filename"] == "Rechnung März.pdf"
    assert pdf["content_type"] == "application/pdf"
    assert pdf["sha256"] == hashlib.sha256(b"%PDF-1.4 fake").hexdigest()
    assert pdf["size"] == len(b"%PDF-1.4 fake")
    assert enclosed["content_type"] == "message/rfc822"
    assert enclosed["message"]["subject"] == "the original"
    assert enclosed["message"]["text"].strip() == "Original text."
    names = [h[0].lower() for h in m["headers"]]
    assert names.index("received") < names.index("from") < names.index("subject")
