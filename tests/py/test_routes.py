"""Routes beyond the recipient, against the real binary: header conditions, priority, stop
and fan-out on mail sent over SMTP; a recipient no route could take refused at RCPT; the
README's mistake (a route added after the catch-all) refused by the admin API and the CLI
with a problem naming the catch-all, and by `postwire config check`; `--before` fixing it."""

from __future__ import annotations

import json
import smtplib
import subprocess

import pytest

from admin_support import ACME, send, system  # noqa: F401 (system is a fixture)
from support import child_env, dev_config, free_port, postwire_path

CONDITIONAL = r'''
[[tenants.acme.routes]]
name = "lists"
recipients = ["support@acme.test"]
headers = [{ name = "List-Id", regex = "dev\\.lists\\.example" }]
stop = false
priority = -10
endpoints = ["hook"]

[[tenants.acme.routes]]
name = "invoices"
recipients = ["/^inv-[0-9]+@acme\\.test$/"]
headers = [{ name = "Subject", regex = "(?i)invoice" }]
priority = -5
endpoints = ["hook"]
'''


def message(to: str, subject: str, extra: str = "") -> bytes:
    return (f"From: a@example.com\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}"
            f"Message-ID: <{subject.replace(' ', '-')}@example.com>\r\n\r\nhello\r\n").encode()


def test_headers_priority_stop_and_fan_out(start_postwire, receiver, nats):
    dev = start_postwire(extra=CONDITIONAL)
    # RCPT: the regex takes inv-42 (its conditions wait for the worker); nobody@ no route takes.
    with dev.smtp() as c:
        c.ehlo()
        c.mail("a@example.com")
        assert c.rcpt("nobody@acme.test")[0] == 550
        assert c.rcpt("inv-42@acme.test")[0] == 250
    dev.send(message("inv-42@acme.test", "Invoice 7"), rcpt=["inv-42@acme.test"])
    dev.send(message("support@acme.test", "list post", "List-Id: Dev <dev.lists.example>\r\n"))
    dev.send(message("support@acme.test", "plain question"))
    dev.send(message("inv-43@acme.test", "hello"), rcpt=["inv-43@acme.test"])
    receiver.wait_for(4)
    nats.wait_idle()
    got = sorted((r.json()["route"], r.json()["message"]["subject"]) for r in receiver.requests)
    assert got == [
        ("invoices", "Invoice 7"),            # regex + Subject; stop before support
        ("lists", "list post"),               # List-Id matches, stop = false: fan-out ...
        ("support", "list post"),             # ... to the next matching route
        ("support", "plain question"),        # no List-Id: lists does not match
    ], got
    # inv-43 matched no route's conditions: kept as an unrouted dead letter, not delivered.
    out = subprocess.run([postwire_path(), "dlq", "list", "--json", "--config", str(dev.config_path)],
                         capture_output=True, text=True, timeout=60, env=child_env())
    assert out.returncode == 0, out.stderr
    dead = json.loads(out.stdout)
    assert [d["route"] for d in dead] == ["_unrouted"], dead


def test_route_after_the_catch_all_is_refused_and_before_works(system, receiver):
    smtp_port, api, _ = system

    def cli(*args):
        env = child_env(POSTWIRE_TOKEN=ACME, POSTWIRE_API=api.base)
        env.pop("POSTWIRE_ADMIN_TOKEN", None)
        return subprocess.run([postwire_path(), *args], capture_output=True, text=True, timeout=60, env=env)

    st, _, _ = api.call("PUT", "/api/v1/tenants/acme/routes/catchall",
                        body={"recipients": ["*@acme.test"], "endpoints": ["hook"]})
    assert st == 200
    # What the README used to show: appended after the catch-all, it could never match.
    st, _, problem = api.call("PUT", "/api/v1/tenants/acme/routes/sales",
                              body={"recipients": ["sales@acme.test"], "endpoints": ["hook"]})
    assert st == 422, problem
    assert problem["field"] == "tenants.acme.routes[2]", problem
    assert "route catchall" in problem["detail"] and "never match" in problem["detail"], problem
    r = cli("tenants", "route", "acme", "sales", "--recipients", "sales@acme.test", "--endpoints", "hook")
    assert r.returncode == 1 and "catchall" in r.stderr, r.stderr
    r = cli("tenants", "route", "acme", "sales", "--recipients", "sales@acme.test", "--endpoints", "hook",
            "--before", "catchall")
    assert r.returncode == 0, r.stderr
    routes = api.call("GET", "/api/v1/tenants/acme/routes")[2]["routes"]
    assert [(x["name"], x["priority"], x["stop"], x["position"], x["shadowed_by"]) for x in routes] == [
        ("support", 0, True, 0, []), ("sales", 0, True, 1, []), ("catchall", 0, True, 2, [])]
    r = cli("tenants", "routes", "acme")
    assert r.returncode == 0 and r.stdout.splitlines()[1].startswith("sales\tpriority 0\tstop"), r.stdout
    # Moved by priority instead: the list follows.
    r = cli("tenants", "route", "acme", "catchall", "--recipients", "*@acme.test", "--endpoints", "hook",
            "--priority", "10")
    assert r.returncode == 0, r.stderr
    # Conditions from the command line land in the route as the API stores them.
    r = cli("tenants", "route", "acme", "invoices", "--recipients", r"/^inv-[0-9]+@acme\.test$/",
            "--header", "Subject:(?i)invoice", "--verdict", "dmarc=pass", "--verdict", "dkim=pass",
            "--no-stop", "--priority", "-10", "--endpoints", "hook")
    assert r.returncode == 0, r.stderr
    inv = api.call("GET", "/api/v1/tenants/acme/routes/invoices")[2]
    assert inv["headers"] == [{"name": "Subject", "regex": "(?i)invoice"}], inv
    assert inv["verdicts"] == {"dkim": ["pass"], "dmarc": ["pass"]} and inv["stop"] is False, inv
    assert api.call("GET", "/api/v1/tenants/acme/routes")[2]["routes"][0]["name"] == "invoices"
    r = cli("tenants", "route", "acme", "bad", "--recipients", "x@acme.test", "--verdict", "dmarc=passed",
            "--endpoints", "hook")
    assert r.returncode == 1 and "verdicts.dmarc" in r.stderr, r.stderr
    send(smtp_port, "sales@acme.test", "to-sales")
    send(smtp_port, "someone@acme.test", "to-anyone")
    got = sorted((x.json()["route"], x.json()["message"]["subject"]) for x in receiver.wait_for(2))
    assert got == [("catchall", "to-anyone"), ("sales", "to-sales")]


@pytest.mark.parametrize("routes, ok", [
    ('[[tenants.acme.routes]]\nname = "all"\nrecipients = ["*@acme.test"]\nendpoints = ["hook"]\n', False),
    ('[[tenants.acme.routes]]\nname = "all"\nrecipients = ["*@acme.test"]\nendpoints = ["hook"]\npriority = 1\n', True),
])
def test_config_check_refuses_a_shadowed_route(tmp_path, routes, ok):
    text = dev_config("nats://127.0.0.1:4222", free_port(), "http://127.0.0.1:1/hook")
    # `all` comes first in the file; `support` follows it (in dev_config) unless priority moves `all`.
    text = text.replace("[[tenants.acme.routes]]", routes + "\n[[tenants.acme.routes]]", 1)
    path = tmp_path / "postwire.toml"
    path.write_text(text)
    r = subprocess.run([postwire_path(), "config", "check", "--config", str(path)],
                       capture_output=True, text=True, timeout=60, env=child_env())
    if ok:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
        assert "tenants.acme.routes[1]" in r.stderr and "route all" in r.stderr, r.stderr
