"""Deliveries to HTTPS endpoints verify certificates: a receiver with a certificate from a
private CA is refused until that CA is configured as `delivery.ca_file`."""

from __future__ import annotations

import json
import signal
import smtplib
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support import Process, attach_logs, child_env, dev_config, free_port, postwire_path
from tls_support import make_ca_and_cert


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
    """The test config delivering over HTTPS only, with no retries."""
    return dev_config(nats_url, smtp_port, f"https://127.0.0.1:{port}/hook", allow_http=False,
                      retry_schedule=(), extra_delivery=f'ca_file = "{ca_file}"' if ca_file else "")


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
        nats.wait_idle()
        if trusted:
            assert len(rx.requests) == 1, "delivered over verified TLS"
            assert json.loads(rx.requests[0][1])["route"] == "support"
        else:
            r = subprocess.run([postwire_path(), "dlq", "list", "--json", "--config", str(cfg)],
                               capture_output=True, text=True, env=child_env())
            assert r.returncode == 0, r.stderr
            dead = json.loads(r.stdout)
            assert len(dead) == 1, "the delivery gave up"
            assert "certificate" in dead[0]["last_error"].lower()
            assert rx.requests == [], "no request was sent over an unverified connection"
    finally:
        dev.stop(signal.SIGINT)
        rx.server.shutdown()
