"""Tenant settings changed through the admin API reach a separate, running `postwire ingest`
process (with separate worker, deliver and admin processes, a real nats-server and the suite's
own DNS server): `auth.policy = "reject"` refuses the next DMARC-failing mail at DATA (550)
and removing it accepts the next one; a mail verified at SMTP time is not verified again by
the worker (its verification counter does not move); a domain added through the API is routed
for the next SES notification. No fixed sleeps: each change is awaited by retrying the SMTP
transaction (or the notification) until the answer changes, within a deadline."""

from __future__ import annotations

import base64
import json
import re
import signal
import smtplib
import time
import urllib.error
import urllib.request

import pytest

from auth_support import message, verify_section
from conftest import dev_config
from support import Process, attach_logs, child_env, free_port, postwire_path
from admin_support import GLOBAL, Api
from test_ses import ARN, CertServer, notification

FAILING = ("x@rej.test", "b@elsewhere.test")  # From domain asks for reject; nothing aligns
PASSING = ("x@pass.test", "bounce@pass.test")  # SPF pass, aligned


def scrape(port: int, at: str) -> int:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    m = re.search(r'^postwire_auth_verifications_total\{at="' + at + r'"\} (\d+)$', text, re.M)
    return int(m.group(1)) if m else 0


class Roles:
    """admin, worker, deliver and ingest as four processes; worker and ingest serve their
    own /metrics."""

    def __init__(self, request, tmp_path, base: str, ingest_extra: str = "", env=None):
        self.metrics = {"worker": free_port(), "ingest": free_port()}
        self.procs = {}
        env = child_env(RUST_LOG="info", POSTWIRE_ADMIN_TOKEN=GLOBAL, **(env or {}))
        for role in ("admin", "worker", "deliver", "ingest"):
            text = base + (ingest_extra if role == "ingest" else "")
            if role in self.metrics:
                text += f'\n[metrics]\nlisten = "127.0.0.1:{self.metrics[role]}"\n'
            path = tmp_path / f"{role}.toml"
            path.write_text(text)
            p = Process(f"postwire-{role}", [postwire_path(), role, "--config", str(path)], tmp_path, env=env)
            attach_logs(request, p)
            self.procs[role] = p

    def stop(self):
        for p in self.procs.values():
            p.stop(signal.SIGINT)


def send(port: int, sender: tuple[str, str], subject: str) -> tuple[int, bytes]:
    """One SMTP transaction; the reply to the end of DATA."""
    from_header, mail_from = sender
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=20) as s:
        s.ehlo()
        s.mail(mail_from)
        s.rcpt("support@acme.test")
        try:
            return s.data(message(from_header, subject))
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error


def until(fn, what: str, timeout: float = 30.0):
    """Retries `fn` until it returns something truthy (or fails the test at the deadline)."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.time() < deadline, what
        time.sleep(0.05)  # polling interval, not synchronisation


def set_policy(api: Api, policy: str) -> None:
    st, h, doc = api.call("GET", "/api/v1/tenants/acme")
    assert st == 200, doc
    cfg = doc["config"]
    cfg["auth"] = dict(cfg.get("auth") or {}, policy=policy)
    st, _, after = api.call("PUT", "/api/v1/tenants/acme", body=cfg, headers={"If-Match": h["ETag"]})
    assert st == 200 and after["config"]["auth"]["policy"] == policy, after


@pytest.fixture
def zone(dns):
    dns.txt("_dmarc.rej.test", "v=DMARC1; p=reject")
    dns.txt("_dmarc.pass.test", "v=DMARC1; p=reject")
    dns.txt("pass.test", "v=spf1 ip4:127.0.0.1 -all")
    return dns


def test_reject_policy_set_and_removed_through_the_api_applies_at_data(request, tmp_path, nats, receiver, zone):
    smtp_port, admin_port = free_port(), free_port()
    base = dev_config(nats.url, smtp_port, receiver.url("/hook"), admin_port=admin_port,
                      verify=verify_section(zone.address))
    roles = Roles(request, tmp_path, base)
    try:
        roles.procs["ingest"].wait_for_port(smtp_port)
        roles.procs["admin"].wait_for_port(admin_port)
        api = Api(admin_port)
        accepted = []  # subjects answered 250

        # Policy `tag`: DMARC-failing mail is accepted, verified (once) by the worker.
        code, _ = send(smtp_port, FAILING, "tagged")
        assert code == 250
        accepted.append("tagged")
        first = receiver.wait_for(1, timeout=30)[0].json()
        assert first["auth"]["dmarc"]["result"] == "fail" and first["auth"]["dmarc"]["policy"] == "reject"
        assert scrape(roles.metrics["ingest"], "smtp") == 0

        set_policy(api, "reject")
        attempt = 0

        def refused_at_data():
            nonlocal attempt
            attempt += 1
            subject = f"until-refused-{attempt}"
            code, text = send(smtp_port, FAILING, subject)
            if code == 250:  # the change has not reached ingest yet: delivered, tagged
                accepted.append(subject)
                return None
            return code, text

        code, text = until(refused_at_data, "ingest never applied auth.policy = reject")
        assert code == 550 and text.startswith(b"5.7.1") and b"rej.test" in text, (code, text)

        # Verified at SMTP time and accepted: the verdict travels with the mail and the
        # worker does not verify it again.
        worker_before = until(lambda: (n := scrape(roles.metrics["worker"], "worker")) >= len(accepted) and n,
                              "the worker did not verify the tagged mail")
        smtp_before = scrape(roles.metrics["ingest"], "smtp")
        code, _ = send(smtp_port, PASSING, "verified-at-smtp")
        assert code == 250
        accepted.append("verified-at-smtp")
        got = receiver.wait_for(len(accepted), timeout=30)
        passed = [r.json() for r in got if r.json()["message"]["subject"] == "verified-at-smtp"][0]
        assert passed["auth"]["dmarc"]["result"] == "pass" and passed["auth"]["spf"]["result"] == "pass"
        assert passed["auth"]["authentication_results"].startswith("mx.test;")
        assert scrape(roles.metrics["ingest"], "smtp") == smtp_before + 1
        assert scrape(roles.metrics["worker"], "worker") == worker_before, "the worker verified again"

        # Back to `tag`: the next failing mail is accepted again.
        set_policy(api, "tag")

        def accepted_again():
            nonlocal attempt
            attempt += 1
            subject = f"until-accepted-{attempt}"
            code, _ = send(smtp_port, FAILING, subject)
            if code == 250:
                accepted.append(subject)
            return code == 250

        until(accepted_again, "ingest kept rejecting after the policy was removed")
        delivered = receiver.wait_for(len(accepted), timeout=30)
        assert sorted(r.json()["message"]["subject"] for r in delivered) == sorted(accepted)
        assert all(p.alive() for p in roles.procs.values()), "no process restarted"
    finally:
        roles.stop()


def post(port: int, body: dict) -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/ses", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "text/plain; charset=UTF-8",
                                          "x-amz-sns-message-type": body["Type"]})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_domain_added_through_the_api_is_routed_for_ses(request, tmp_path, nats, receiver):
    certs = CertServer(tmp_path)
    smtp_port, admin_port, ses_port = free_port(), free_port(), free_port()
    base = dev_config(nats.url, smtp_port, receiver.url("/hook"), admin_port=admin_port)
    ses = f"""
[ses]
listen = "127.0.0.1:{ses_port}"
topic_arns = ["{ARN}"]
cert_hosts = ["127.0.0.1"]
ca_file = "{certs.ca}"
"""
    roles = Roles(request, tmp_path, base, ingest_extra=ses)
    mail = (b"From: Sender <sender@example.com>\r\nTo: sales@acme2.test\r\nSubject: via SES\r\n"
            b"Message-ID: <ses-live@example.com>\r\n\r\nHello through SES\r\n")
    n = notification(base64.b64encode(mail).decode(), message_id="live-1")
    inner = json.loads(n["Message"])
    inner["receipt"]["recipients"] = ["sales@acme2.test"]
    inner["mail"]["destination"] = ["sales@acme2.test"]
    n["Message"] = json.dumps(inner)
    signed = certs.sign(n)
    try:
        roles.procs["ingest"].wait_for_port(ses_port)
        roles.procs["admin"].wait_for_port(admin_port)
        api = Api(admin_port)
        assert post(ses_port, signed) == (200, "no recipient routed here")

        assert api.call("PUT", "/api/v1/tenants/acme/domains/acme2.test")[0] == 200
        assert api.call("PUT", "/api/v1/tenants/acme/routes/sales",
                        body={"recipients": ["*@acme2.test"], "endpoints": ["hook"]})[0] == 200

        def routed():
            status, text = post(ses_port, signed)
            assert status == 200, (status, text)
            return text.startswith("queued as") and text

        until(routed, "ingest never routed the SES mail for the new domain")
        got = receiver.wait_for(1, timeout=30)[0].json()
        assert got["envelope"]["rcpt_to"] == ["sales@acme2.test"] and got["route"] == "sales"
        assert got["envelope"]["ses"]["message_id"] == "live-1"
        assert all(p.alive() for p in roles.procs.values()), "no process restarted"
    finally:
        roles.stop()
        certs.server.shutdown()
