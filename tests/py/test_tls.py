"""Deliveries to HTTPS endpoints verify certificates: a receiver with a certificate from a
private CA is refused until that CA is configured as `delivery.ca_file`."""

from __future__ import annotations

import json
import signal
import smtplib
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support import monitor_urls_for, SECRET, Process, attach_logs, child_env, free_port, make_ca_and_cert, postwire_path


class TlsReceiver:
    def __init__(self, cert, key):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append((dict(self.headers), body))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def config(nats_url, smtp_port, port, ca_file=None):
    ca = f'ca_file = "{ca_file}"' if ca_file else ""
    return f"""
[nats]
url = "{nats_url}"
monitor_url = "{monitor_urls_for(nats_url)}"
[smtp]
listen = "127.0.0.1:{smtp_port}"
[delivery]
retry_schedule = []
ssrf_allow = ["127.0.0.1"]
{ca}
[tenants.acme]
domains = ["acme.test"]
[[tenants.acme.routes]]
name = "support"
recipients = ["support@acme.test"]
endpoints = ["tls"]
[tenants.acme.endpoints.tls]
url = "https://127.0.0.1:{port}/hook"
secret = "{SECRET}"
"""


@pytest.mark.parametrize("trusted", [False, True], ids=["unknown-ca-refused", "configured-ca-trusted"])
def test_https_certificates_are_verified(request, tmp_path, nats, trusted):
    ca, cert, key = make_ca_and_cert(tmp_path)
    rx = TlsReceiver(cert, key)
    smtp_port = free_port()
    cfg = tmp_path / "postwire.toml"
    cfg.write_text(config(nats.url, smtp_port, rx.port, ca if trusted else None))
    dev = Process("dev", [postwire_path(), "dev", "--config", str(cfg), "--no-sink"], tmp_path,
                  env=child_env(RUST_LOG="info"))
    attach_logs(request, dev)
    try:
        dev.wait_for_port(smtp_port)
        with smtplib.SMTP("127.0.0.1", smtp_port) as c:
            c.sendmail("a@example.com", ["support@acme.test"], b"Subject: tls\r\n\r\nx\r\n")
        deadline = time.monotonic() + 15
        if trusted:
            while not rx.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(rx.requests) == 1, "delivered over verified TLS"
            assert json.loads(rx.requests[0][1])["route"] == "support"
        else:
            out = ""
            while time.monotonic() < deadline:
                r = subprocess.run([postwire_path(), "dlq", "list", "--json", "--config", str(cfg)],
                                   capture_output=True, text=True, env=child_env())
                if r.returncode == 0 and json.loads(r.stdout):
                    out = r.stdout
                    break
                time.sleep(0.2)
            assert out, "the delivery gave up"
            assert "certificate" in json.loads(out)[0]["last_error"].lower()
            assert rx.requests == [], "no request was sent over an unverified connection"
    finally:
        dev.stop(signal.SIGINT)
        rx.server.shutdown()
