"""Spam scoring with a real rspamd (Debian's package, started by these tests offline on a free
port, tests/py/rspamd.py): the verdict in the payload, GTUBE refused at SMTP time (550) or
held in quarantine under the tenant's policy, clean mail with a low score, and rspamd being
unreachable — at SMTP time the client is told to retry (451), in the worker the mail waits in
the MAIL stream and is delivered, scored, once rspamd answers."""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import urllib.request

import pytest

from rspamd import GTUBE, RSPAMD, Forwarder, Rspamd
from support import attach_logs, child_env, free_port, postwire_path
from test_storage import wait_until

pytestmark = [
    pytest.mark.skipif(not os.access(RSPAMD, os.X_OK), reason="needs rspamd (make tools installs it)"),
    # The first test starts rspamd, which loads its rules for a while on a busy machine.
    pytest.mark.timeout(420),
]


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    """One rspamd for the module: loading its rules is the slow part."""
    r = Rspamd(tmp_path_factory.mktemp("rspamd"), free_port())
    r.start()
    try:
        yield r
    finally:
        r.stop()


def mail(subject: str, body: str) -> bytes:
    return (
        "From: Ann Example <ann@example.com>\r\nTo: support@acme.test\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '.')}@example.com>\r\n"
        "Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def spam_section(url: str, retry_ms: int = 30000) -> str:
    return f'\n[spam]\nrspamd_url = "{url}"\ntimeout_ms = 5000\nretry_delay_ms = {retry_ms}\n'


def quarantined(config_path):
    out = subprocess.run([postwire_path(), "quarantine", "list", "--config", str(config_path), "--json"],
                         capture_output=True, text=True, timeout=60, env=child_env())
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_gtube_is_refused_at_smtp_time_and_clean_mail_scores_low(request, rspamd, start_postwire, receiver):
    attach_logs(request, rspamd.process)
    dev = start_postwire(extra_tenant="spam = { reject_above = 15.0 }", extra=spam_section(rspamd.url))
    with dev.smtp() as c:
        c.ehlo()
        c.mail("ann@example.com")
        c.rcpt("support@acme.test")
        code, text = c.data(mail("offer", f"Buy now.\r\n{GTUBE}"))
    assert code == 550, (code, text)
    assert text.decode().startswith("5.7.1 Message rejected: spam (rspamd score 15"), text
    dev.send(mail("lunch", "Shall we meet at noon on Thursday?"), mail_from="ann@example.com")
    event = receiver.wait_for(1)[0].json()
    assert event["message"]["subject"] == "lunch"
    spam = event["spam"]
    assert spam["action"] == "no action", spam
    assert spam["score"] < 6.0 and spam["required_score"] == 15.0, spam
    assert all({"name", "score"} <= set(s) for s in spam["symbols"])
    assert len(receiver.requests) == 1, "the GTUBE mail was never accepted"


def test_gtube_is_quarantined_and_tagged_mail_delivered_with_its_score(request, rspamd, start_postwire, receiver):
    attach_logs(request, rspamd.process)
    dev = start_postwire(extra_tenant="spam = { quarantine_above = 10.0 }", extra=spam_section(rspamd.url))
    assert dev.send(mail("offer", f"Buy now.\r\n{GTUBE}"), mail_from="ann@example.com") == {}
    wait_until(lambda: quarantined(dev.config_path), timeout=60, what="the GTUBE mail in quarantine")
    held = quarantined(dev.config_path)
    dev.send(mail("lunch", "Shall we meet at noon on Thursday?"), mail_from="ann@example.com")
    event = receiver.wait_for(1)[0].json()
    assert event["message"]["subject"] == "lunch" and event["spam"]["score"] < 10.0
    assert len(held) == 1 and held[0]["tenant"] == "acme"
    assert held[0]["reason"].startswith("spam: rspamd scored 15"), held[0]
    assert len(receiver.requests) == 1, "the quarantined mail was not delivered"


def test_rspamd_unreachable_defers_at_smtp_and_holds_the_mail_in_the_worker(request, rspamd, start_postwire, receiver):
    """Nothing passes unscored: with `reject_above` the SMTP client gets 451 and retries;
    without it the mail is accepted, waits in MAIL while the worker's checks fail (logged,
    counted), and is delivered with its score once rspamd answers on the configured port."""
    attach_logs(request, rspamd.process)
    down, metrics_port = free_port(), free_port()
    dev = start_postwire(
        extra_tenant="spam = { quarantine_above = 50.0 }",
        extra=spam_section(f"http://127.0.0.1:{down}", retry_ms=300)
        + f'\n[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n',
    )
    assert dev.send(mail("waiting", "Shall we meet at noon on Thursday?"), mail_from="ann@example.com") == {}
    wait_until(lambda: dev.process.stderr().count("rspamd could not score a mail") >= 2, timeout=60,
               what="two failed rspamd checks")
    assert not receiver.requests, "nothing is delivered unscored"
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    assert 'postwire_spam_checks_total{at="worker",result="error"}' in metrics
    forwarder = Forwarder(down, rspamd.port)
    try:
        event = receiver.wait_for(1, timeout=60)[0].json()
    finally:
        forwarder.close()
    assert event["message"]["subject"] == "waiting"
    assert event["spam"]["action"] == "no action"


def test_rspamd_unreachable_at_smtp_time_is_a_451(start_postwire):
    down = free_port()
    dev = start_postwire(extra_tenant="spam = { reject_above = 15.0 }",
                         extra=spam_section(f"http://127.0.0.1:{down}"))
    with pytest.raises(smtplib.SMTPDataError) as e:
        dev.send(mail("hello", "Shall we meet at noon on Thursday?"), mail_from="ann@example.com")
    assert e.value.smtp_code == 451
    assert b"Cannot scan the message for spam now" in e.value.smtp_error
