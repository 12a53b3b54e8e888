"""Inline images of the HTML view: with storage configured, `cid:` references in the
sanitised HTML point at the stored attachments' signed URLs, which serve the image."""

from __future__ import annotations

import hashlib
import signal
import smtplib
from email.message import EmailMessage

from support import free_port
from test_storage import fetch, start, storage_config

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


def test_cid_images_point_at_stored_attachments(request, tmp_path, nats, receiver):
    port, blob_port = free_port(), free_port()
    dev = start(request, tmp_path, storage_config(nats, port, receiver, blob_port, tmp_path))
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.com", "support@acme.test", "logo inline"
    m.set_content("see the logo")
    m.add_alternative('<p>Logo: <img src="cid:logo@acme" alt="logo"></p>', subtype="html")
    m.get_payload()[1].add_related(PNG, maintype="image", subtype="png", cid="<logo@acme>")
    try:
        dev.wait_for_port(port)
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.send_message(m)
        event = receiver.wait_for(1)[0].json()
        [logo] = [a for a in event["message"]["attachments"] if a["content_id"] == "logo@acme"]
        assert logo["disposition"] == "inline"
        html = event["message"]["html"]
        assert "cid:" not in html, html
        assert logo["url"].replace("&", "&amp;") in html, html
        assert hashlib.sha256(fetch(logo["url"])).hexdigest() == hashlib.sha256(PNG).hexdigest()
    finally:
        dev.stop(signal.SIGINT)
