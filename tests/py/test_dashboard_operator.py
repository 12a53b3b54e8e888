"""The operator's day in the dashboard (`/ui`) in headless Chromium (tests/js/operator.js)
against the real binary: as the global admin, find a mail by subject, open it, resend it
(the receiver gets a second request with the same webhook-id), send a test event, edit the
endpoint (the secret stays write-only and kept) and the domains, add a route in the form and
move it above the catch-all (the next mail takes it); as a tenant,
see that tenant only. A screenshot of each page is kept under the test logs' artefacts."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading

import pytest

from standardwebhooks.webhooks import Webhook

from admin_support import two_tenants
from support import REPO, SECRET, free_port, send_mail, start_dev
from test_dashboard import artefacts, browser_tools, lines_of, next_event

GLOBAL = "operator-admin-token-0123456789"
ACME = "operator-acme-token-0123456789"


def config(nats_url: str, smtp_port: int, hook: str, beta_hook: str, admin_port: int) -> str:
    return two_tenants(nats_url, smtp_port, hook, admin_port, beta_hook, "hook") + """
[[tenants.acme.routes]]
name = "catchall"
recipients = ["*"]
endpoints = ["hook"]
"""


def send(port: int, to: str, subject: str) -> None:
    mail = (f"From: Ann <ann@example.com>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@example.com>\r\n\r\nhello\r\n").encode()
    send_mail(port, to, mail, mail_from="ann@example.com", helo="client.test")


@pytest.mark.timeout(240)
def test_the_operators_day_in_chromium(request, capsys, tmp_path, nats, receiver):
    node, modules = browser_tools()
    smtp_port, admin_port = free_port(), free_port()
    base = f"http://127.0.0.1:{admin_port}"
    dev = start_dev(request, tmp_path,
                    config(nats.url, smtp_port, receiver.url("/acme"), receiver.url("/beta"), admin_port),
                    smtp_port, admin_port, POSTWIRE_ADMIN_TOKEN=GLOBAL, ACME_ADMIN_TOKEN=ACME)
    browser = None
    try:
        send(smtp_port, "support@acme.test", "Quarterly invoice 42")
        send(smtp_port, "someone@beta.test", "For beta only")
        first = receiver.wait_for(2, timeout=30)
        invoice = next(r for r in first if json.loads(r.body)["message"]["subject"] == "Quarterly invoice 42")

        shots = artefacts()
        for old in shots.glob("operator-*.png"):
            old.unlink()
        stderr_path = tmp_path / "operator-js.stderr"
        with open(stderr_path, "wb") as stderr:
            browser = subprocess.Popen(
                [node, str(REPO / "tests" / "js" / "operator.js"), base, GLOBAL, ACME, str(shots)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
                env={**os.environ, "NODE_PATH": str(modules)},
            )
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lines_of, args=(browser.stdout, lines), daemon=True).start()

        def failed(what: str) -> str:
            return (f"{what} (operator.js exit {browser.poll()})\n"
                    f"{stderr_path.read_text(errors='replace')}")

        resent = next_event(lines, timeout=90)
        assert resent and resent["event"] == "resent", failed(f"no resend: {resent}")
        assert resent["delivery_id"] == invoice.headers["webhook-id"]
        # The second attempt arrived with the same webhook-id, signed anew.
        again = [r for r in receiver.wait_for(3, timeout=10)[2:]
                 if r.headers["webhook-id"] == invoice.headers["webhook-id"]]
        assert again and again[0].body == invoice.body, receiver.requests

        tested = next_event(lines, timeout=60)
        assert tested and tested["event"] == "tested", failed(f"no test event: {tested}")
        got = receiver.wait_for(4, timeout=10)[3]
        assert got.headers["webhook-id"] == tested["webhook_id"] and json.loads(got.body)["test"] is True

        moved = next_event(lines, timeout=90)
        assert moved and moved["event"] == "route-moved", failed(f"the route was not moved: {moved}")
        send(smtp_port, "sales@acme.test", "For sales")
        sales = receiver.wait_for(5, timeout=30)[4]
        assert json.loads(sales.body)["route"] == "sales", "the mail to sales@ did not take the new route"
        # Edited in the browser without typing the secret: it was kept, so this still verifies.
        assert Webhook(SECRET).verify(sales.body, sales.headers)["route"] == "sales"
        browser.stdin.write("go\n")
        browser.stdin.flush()

        done = next_event(lines, timeout=90)
        assert done and done["event"] == "done", failed(f"the browser did not finish: {done}")
        assert browser.wait(timeout=20) == 0, failed("operator.js failed")
        names = sorted(p.name for p in shots.glob("operator-*.png"))
        assert names == sorted(f"operator-{n}.png" for n in [
            "overview", "mail", "resent", "endpoints", "config", "route-invalid", "route-shadowed", "routes", "sales-mail",
            "tenant"]), names
        assert all((shots / n).stat().st_size > 10_000 for n in names)
        with capsys.disabled():
            print(f"\noperator screenshots: {shots}/operator-*.png")
    finally:
        if browser is not None and browser.poll() is None:
            browser.kill()
            browser.wait()
        dev.stop(signal.SIGINT)
