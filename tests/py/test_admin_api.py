"""The admin API (docs/api.md) against a real `postwire dev` (and separate role processes):
every route needs a token, a tenant token never sees another tenant's data, errors are RFC 9457
problem details, the OpenAPI document validates and schemathesis finds no server error in it,
and a configuration change written through the API reaches a second running worker process,
changing the routing of the next mail without a restart."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from support import Process, attach_logs, child_env, dev_config, free_port, postwire_path

GLOBAL = "global-admin-token-0123456789"
ACME = "acme-tenant-token-0123456789"
BETA_SECRET = "whsec_YmV0YS1zZWNyZXQtYmV0YS1zZWNyZXQtYmV0YQ=="
MAIL = (b"From: a@example.com\r\nTo: {to}\r\nSubject: {subject}\r\n"
        b"Message-ID: <{subject}@example.com>\r\n\r\nhello\r\n")


def mail(to: str, subject: str) -> bytes:
    return MAIL.replace(b"{to}", to.encode()).replace(b"{subject}", subject.encode())


class Api:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, token: str | None = GLOBAL, body=None,
             headers: dict | None = None, raw: bytes | None = None):
        """(status, headers, parsed JSON or None)."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                text = r.read()
                return r.status, r.headers, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, e.headers, (json.loads(text) if text else None)


def is_problem(status: int, headers, body, code: int) -> None:
    assert status == code, (status, body)
    assert headers["Content-Type"] == "application/problem+json", headers["Content-Type"]
    assert body["status"] == code and body["title"] and body["detail"], body
    assert body["type"].startswith("https://postwire.dev/problems/"), body


def two_tenants(nats_url: str, smtp_port: int, hook: str, admin_port: int, dead_url: str) -> str:
    return dev_config(nats_url, smtp_port, hook, admin_port=admin_port) + f"""
[tenants.beta]
domains = ["beta.test"]

[[tenants.beta.routes]]
name = "all"
recipients = ["*"]
endpoints = ["gone"]

[tenants.beta.endpoints.gone]
url = "{dead_url}"
allow_http = true
secret = "{BETA_SECRET}"

[[admin.tokens]]
name = "acme-ops"
token_env = "ACME_ADMIN_TOKEN"
tenants = ["acme"]
"""


@pytest.fixture
def system(request, tmp_path, nats, receiver):
    """`postwire dev` with the admin API, tenants acme (delivering to the receiver) and beta
    (its endpoint refuses connections, so its mail ends in the DLQ)."""
    smtp_port, admin_port = free_port(), free_port()
    config = tmp_path / "postwire.toml"
    config.write_text(two_tenants(nats.url, smtp_port, receiver.url("/hook"), admin_port,
                                  f"http://127.0.0.1:{free_port()}/gone"))
    dev = Process("postwire-dev", [postwire_path(), "dev", "--config", str(config), "--no-sink"],
                  tmp_path, env=child_env(RUST_LOG="info", POSTWIRE_ADMIN_TOKEN=GLOBAL,
                                          ACME_ADMIN_TOKEN=ACME))
    attach_logs(request, dev)
    dev.wait_for_port(smtp_port)
    dev.wait_for_port(admin_port)
    yield smtp_port, Api(admin_port), config
    assert dev.stop(signal.SIGINT) in (0, 130)


def send(smtp_port: int, to: str, subject: str) -> None:
    import smtplib
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=20) as s:
        s.sendmail("a@example.com", [to], mail(to, subject))


def wait(fn, timeout: float = 20.0):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(0.1)


def test_openapi_document_validates_and_every_route_needs_a_token(system):
    from openapi_spec_validator import validate

    _, api, _ = system
    status, headers, doc = api.call("GET", "/api/openapi.json", token=None)
    assert status == 200
    validate(doc)
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    operations = [(m.upper(), p) for p, item in doc["paths"].items() for m in item]
    # Every route of docs/api.md is in the document.
    for want in ["/api/v1/tenants/{tenant}/endpoints/{endpoint}", "/api/v1/deliveries",
                 "/api/v1/dlq/replay", "/api/v1/quarantine/release", "/api/v1/keys/rotate",
                 "/api/v1/stats", "/api/v1/audit", "/api/v1/plugins", "/api/v1/whoami"]:
        assert want in doc["paths"], want
    assert len(operations) >= 30, operations
    for method, path in operations:
        concrete = re.sub(r"\{seq\}", "1", re.sub(r"\{tenant\}", "acme", path))
        concrete = re.sub(r"\{[a-z_]+\}", "x", concrete)
        body = {} if method in ("POST", "PUT") else None
        for token in (None, "wrong-token-0123456789"):
            st, h, b = api.call(method, concrete, token=token, body=body)
            is_problem(st, h, b, 401)
    # The dashboard and the public keys need no token.
    assert api.call("GET", "/.well-known/postwire-keys.json", token=None)[0] == 200


def test_tenant_token_never_sees_another_tenant(system, receiver):
    smtp_port, api, _ = system
    send(smtp_port, "support@acme.test", "for-acme")
    send(smtp_port, "anyone@beta.test", "for-beta")
    receiver.wait_for(1)
    dead = wait(lambda: api.call("GET", "/api/v1/dlq")[2]["dead_letters"])
    assert [d["tenant"] for d in dead] == ["beta"], dead
    beta_seq, beta_mail = dead[0]["seq"], dead[0]["mail_id"]
    delivered = wait(lambda: [d for d in api.call("GET", "/api/v1/deliveries")[2]["deliveries"]
                              if d["status"] == "delivered"])
    assert [d["tenant"] for d in delivered] == ["acme"]

    # The global token sees both; the dead delivery has its payload, and no secret anywhere.
    st, _, who = api.call("GET", "/api/v1/whoami")
    assert who == {"token": "admin", "global": True, "tenants": ["acme", "beta"]}
    all_deliveries = api.call("GET", "/api/v1/deliveries")[2]["deliveries"]
    beta = [d for d in all_deliveries if d["tenant"] == "beta"]
    assert beta and beta[0]["status"] == "dead" and beta[0]["dlq_seq"] == beta_seq
    st, _, detail = api.call("GET", f"/api/v1/deliveries/{beta[0]['delivery_id']}")
    assert st == 200 and detail["payload"]["mail_id"] == beta_mail, detail
    assert len(detail["attempts"]) == 3 and detail["headers"]
    st, _, tenant_doc = api.call("GET", "/api/v1/tenants/beta")
    assert tenant_doc["config"]["endpoints"]["gone"]["secret"] == "********"
    assert BETA_SECRET not in json.dumps([tenant_doc, detail, all_deliveries])

    # The acme token: beta does not exist for it.
    assert api.call("GET", "/api/v1/whoami", token=ACME)[2] == {
        "token": "acme-ops", "global": False, "tenants": ["acme"]}
    assert [t["name"] for t in api.call("GET", "/api/v1/tenants", token=ACME)[2]["tenants"]] == ["acme"]
    for method, path, body in [
        ("GET", "/api/v1/tenants/beta", None),
        ("PUT", "/api/v1/tenants/beta", {"domains": ["beta.test"]}),
        ("PUT", "/api/v1/tenants/beta/domains/more.test", None),
        ("GET", "/api/v1/tenants/beta/endpoints/gone", None),
        ("PUT", "/api/v1/tenants/beta/routes/all", {"recipients": ["*"], "endpoints": ["gone"]}),
        ("PUT", "/api/v1/tenants/newone", {"domains": ["new.test"]}),
        ("POST", "/api/v1/tenants/beta/endpoints/gone/disable", None),
        ("GET", "/api/v1/deliveries?tenant=beta", None),
        ("GET", "/api/v1/dlq?tenant=beta", None),
        ("GET", f"/api/v1/dlq/{beta_seq}", None),
        ("GET", "/api/v1/stats?tenant=beta", None),
        ("GET", "/api/v1/endpoints?tenant=beta", None),
        ("GET", "/api/v1/audit?tenant=beta", None),
        ("GET", f"/api/v1/deliveries/{beta[0]['delivery_id']}", None),
    ]:
        st, h, b = api.call(method, path, token=ACME, body=body)
        is_problem(st, h, b, 404)
    for method, path, body in [("DELETE", "/api/v1/tenants/acme", None),
                               ("GET", "/api/v1/keys", None),
                               ("POST", "/api/v1/keys/rotate", {"keyring": "/x"})]:
        st, h, b = api.call(method, path, token=ACME, body=body)
        is_problem(st, h, b, 403)
    # A clash with beta's domain does not name beta; plugin paths are the global token's.
    st, h, b = api.call("PUT", "/api/v1/tenants/acme/domains/beta.test", token=ACME)
    is_problem(st, h, b, 422)
    assert "belongs to another tenant" in b["detail"] and "tenant beta" not in b["detail"]
    acme_doc = api.call("GET", "/api/v1/tenants/acme", token=ACME)[2]["config"]
    acme_doc["plugins"] = [{"path": "/etc/passwd"}]
    st, h, b = api.call("PUT", "/api/v1/tenants/acme", token=ACME, body=acme_doc)
    is_problem(st, h, b, 403)
    # Server-side references (variables, key files) are the global token's: a tenant token
    # cannot have a server credential sent as its bearer token, or sign with another key.
    for signing in ({"scheme": "bearer", "token_env": "AWS_SECRET_ACCESS_KEY"},
                    {"scheme": "rfc9421", "alg": "ed25519", "keyring": "/etc/postwire/keys/beta"}):
        st, h, b = api.call("PUT", "/api/v1/tenants/acme/endpoints/grab", token=ACME, body={
            "url": "https://example.com/x", "secret": BETA_SECRET, "signing": [signing]})
        is_problem(st, h, b, 403)
    # The same change with the secret itself is fine for the tenant token.
    st, _, _ = api.call("PUT", "/api/v1/tenants/acme/endpoints/own", token=ACME, body={
        "url": "https://example.com/x", "secret": BETA_SECRET,
        "signing": [{"scheme": "bearer", "token": "its-own-bearer-token"}]})
    assert st == 200
    acme_view = api.call("GET", "/api/v1/deliveries", token=ACME)[2]["deliveries"]
    assert {d["tenant"] for d in acme_view} == {"acme"}
    assert api.call("GET", "/api/v1/dlq", token=ACME)[2] == {"dead_letters": []}
    assert api.call("GET", f"/api/v1/mails/{beta_mail}", token=ACME)[2]["deliveries"] == []
    assert {e["tenant"] for e in api.call("GET", "/api/v1/endpoints", token=ACME)[2]["endpoints"]} == {"acme"}
    # Selections that name beta's dead letter do nothing with the acme token...
    assert api.call("POST", "/api/v1/dlq/replay", token=ACME, body={"seqs": [beta_seq]})[2]["replayed"] == []
    assert api.call("POST", "/api/v1/dlq/purge", token=ACME, body={"seqs": [beta_seq]})[2]["purged"] == []
    assert [d["seq"] for d in api.call("GET", "/api/v1/dlq")[2]["dead_letters"]] == [beta_seq]
    # ...and the global token can purge it.
    assert api.call("POST", "/api/v1/dlq/purge", body={"seqs": [beta_seq]})[2]["purged"] == [beta_seq]
    assert api.call("GET", "/api/v1/dlq")[2] == {"dead_letters": []}
    # Charts: the acme token's stats count acme's mail only.
    stats = api.call("GET", "/api/v1/stats", token=ACME)[2]
    assert sum(b["received"] for b in stats["buckets"]) == 1
    assert sum(b["delivered"] for b in stats["buckets"]) == 1


def test_validation_errors_are_problem_details(system, receiver):
    smtp_port, api, _ = system
    ep = "/api/v1/tenants/acme/endpoints/second"
    cases = [
        ("PUT", ep, {"url": "not a url", "secret": BETA_SECRET}, 422, "tenants.acme.endpoints.second.url"),
        ("PUT", ep, {"url": "http://example.com/x", "secret": BETA_SECRET}, 422, "tenants.acme.endpoints.second.url"),
        ("PUT", ep, {"url": "http://example.com/x", "allow_http": True, "secret": BETA_SECRET}, 422, "tenants.acme.endpoints.second.allow_http"),
        ("PUT", ep, {"url": "https://example.com/x", "secret": "nope"}, 422, "tenants.acme.endpoints.second.secret"),
        ("PUT", ep, {"url": "https://example.com/x", "bogus": 1}, 422, "body"),
        ("PUT", "/api/v1/tenants/acme/routes/support", {"recipients": ["support@acme.test"], "endpoints": ["missing"]}, 422, "tenants.acme.routes[0].endpoints[0]"),
        ("PUT", "/api/v1/tenants/acme/domains/beta.test", None, 422, "tenants.acme.domains[1]"),
        ("PUT", "/api/v1/tenants/acme/domains/not_a%20domain", None, 422, "domain"),
        ("PUT", "/api/v1/tenants/Bad%20Name", {"domains": ["x.test"]}, 422, "tenant"),
        ("DELETE", "/api/v1/tenants/acme/endpoints/hook", None, 422, "tenants.acme.routes[0].endpoints[0]"),
    ]
    for method, path, body, code, field in cases:
        st, h, b = api.call(method, path, body=body)
        is_problem(st, h, b, code)
        assert b.get("field") == field, (path, b)
    st, h, b = api.call("PUT", ep, raw=b"{not json", headers={"Content-Type": "application/json"})
    is_problem(st, h, b, 400)
    st, h, b = api.call("PUT", ep, raw=b"url=x", headers={"Content-Type": "text/plain"})
    is_problem(st, h, b, 415)
    st, h, b = api.call("GET", "/api/v1/deliveries?since=yesterday-ish")
    is_problem(st, h, b, 400)
    st, h, b = api.call("POST", "/api/v1/dlq/replay", body={})
    is_problem(st, h, b, 400)
    is_problem(*api.call("GET", "/api/v1/no-such-thing"), 404)
    # A stale If-Match is a conflict; the current one is accepted.
    st, h, doc = api.call("GET", "/api/v1/tenants/acme")
    stale = int(h["ETag"].strip('"')) - 1
    st, h2, b = api.call("PUT", "/api/v1/tenants/acme", body=doc["config"], headers={"If-Match": f'"{stale}"'})
    is_problem(st, h2, b, 409)
    # Sending back the hidden secret keeps it: mail still verifies with the original secret.
    doc["config"]["rate_per_sec"] = 50
    st, _, after = api.call("PUT", "/api/v1/tenants/acme", body=doc["config"], headers={"If-Match": h["ETag"]})
    assert st == 200 and after["revision"] > doc["revision"] and after["updated_by"] == "admin"
    # Nothing invalid was written: the audit trail has the one accepted change.
    changes = api.call("GET", "/api/v1/audit?tenant=acme")[2]["changes"]
    assert [(c["by"], c["change"]) for c in changes] == [("admin", "put tenant")]
    assert changes[0]["after"]["rate_per_sec"] == 50 and changes[0]["before"]["rate_per_sec"] is None
    send(smtp_port, "support@acme.test", "after-change")
    got = receiver.wait_for(1)[0]
    from standardwebhooks import Webhook
    from support import SECRET
    Webhook(SECRET).verify(got.body, {k.lower(): v for k, v in got.headers.items()})


def test_config_change_reaches_a_second_worker_process(request, tmp_path, nats, receiver):
    """ingest, process worker, deliver worker and admin API as four processes: a route
    changed through the API is applied by the running worker for the next mail."""
    smtp_port, admin_port = free_port(), free_port()
    config = tmp_path / "postwire.toml"
    config.write_text(dev_config(nats.url, smtp_port, receiver.url("/hook"), admin_port=admin_port))
    env = child_env(RUST_LOG="info", POSTWIRE_ADMIN_TOKEN=GLOBAL)
    procs = {}
    for role in ("admin", "worker", "deliver", "ingest"):
        procs[role] = Process(f"postwire-{role}", [postwire_path(), role, "--config", str(config)],
                              tmp_path, env=env)
        attach_logs(request, procs[role])
    try:
        procs["ingest"].wait_for_port(smtp_port)
        procs["admin"].wait_for_port(admin_port)
        api = Api(admin_port)
        send(smtp_port, "support@acme.test", "before")
        assert receiver.wait_for(1)[0].path == "/hook"

        st, _, _ = api.call("PUT", "/api/v1/tenants/acme/endpoints/other",
                            body={"url": receiver.url("/other"), "allow_http": True, "secret": BETA_SECRET})
        assert st == 200
        st, _, doc = api.call("PUT", "/api/v1/tenants/acme/routes/support",
                              body={"recipients": ["support@acme.test"], "endpoints": ["other"]})
        assert st == 200 and doc["config"]["routes"][0]["endpoints"] == ["other"]
        # The worker process logs each change it applies (the route change is the second).
        deadline = time.time() + 20
        while procs["worker"].stderr().count("Applied a tenant configuration change") < 2:
            assert time.time() < deadline, "the worker did not apply the change"
            time.sleep(0.05)
        while procs["deliver"].stderr().count("Applied a tenant configuration change") < 2:
            assert time.time() < deadline, "the deliver worker did not apply the change"
            time.sleep(0.05)
        send(smtp_port, "support@acme.test", "after")
        second = receiver.wait_for(2)[1]
        assert second.path == "/other", second.path
        from standardwebhooks import Webhook
        Webhook(BETA_SECRET).verify(second.body, {k.lower(): v for k, v in second.headers.items()})
        nats.wait_idle()
        assert len(receiver.requests) == 2
        assert all(p.alive() for p in procs.values()), "no process restarted"
        changes = api.call("GET", "/api/v1/audit?tenant=acme")[2]["changes"]
        assert [c["change"] for c in changes] == ["put endpoint other", "put route support"]

        # A domain added through the API is accepted by the running ingest process.
        import smtplib
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            send(smtp_port, "sales@acme2.test", "refused")
        assert api.call("PUT", "/api/v1/tenants/acme/domains/acme2.test")[0] == 200
        assert api.call("PUT", "/api/v1/tenants/acme/routes/sales",
                        body={"recipients": ["*@acme2.test"], "endpoints": ["hook"]})[0] == 200
        while procs["ingest"].stderr().count("Applied a tenant configuration change") < 4:
            assert time.time() < deadline + 20, "ingest did not apply the change"
            time.sleep(0.05)
        send(smtp_port, "sales@acme2.test", "accepted")
        third = receiver.wait_for(3)[2]
        assert third.path == "/hook" and third.json()["envelope"]["rcpt_to"] == ["sales@acme2.test"]
    finally:
        for p in procs.values():
            p.stop(signal.SIGINT)


def test_schemathesis_finds_no_server_error(system, tmp_path):
    _, api, _ = system
    exe = Path(sys.executable).parent / "schemathesis"
    assert exe.exists(), "schemathesis is installed by scripts/tools.sh"
    r = subprocess.run(
        [exe, "run", f"{api.base}/api/openapi.json", "-H", f"Authorization: Bearer {GLOBAL}",
         "--checks", "not_a_server_error", "--max-examples", "25", "--seed", "1",
         "--workers", "2", "--request-timeout", "20", "--no-shrink"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    print(r.stdout[-4000:])
    assert r.returncode == 0, r.stdout[-8000:] + r.stderr[-2000:]
    assert re.search(r"Fuzzing .*\n\n\s+✅ \d+ passed", r.stdout), r.stdout[-3000:]
    assert "Server error" not in r.stdout


def test_cli_goes_through_the_api(system):
    """`postwire tenants` and `postwire api` script what the dashboard does."""
    _, api, _ = system

    def cli(*args, token=ACME):
        env = child_env(POSTWIRE_TOKEN=token, POSTWIRE_API=api.base)
        env.pop("POSTWIRE_ADMIN_TOKEN", None)
        return subprocess.run([postwire_path(), *args], capture_output=True, text=True,
                              timeout=60, env=env)

    r = cli("tenants", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert [t["name"] for t in json.loads(r.stdout)["tenants"]] == ["acme"]
    r = cli("tenants", "route", "acme", "sales", "--recipients", "sales@acme.test", "--endpoints", "hook")
    assert r.returncode == 0, r.stderr
    routes = api.call("GET", "/api/v1/tenants/acme")[2]["config"]["routes"]
    assert [x["name"] for x in routes] == ["support", "sales"]
    # A refused change is a readable error with the field, exit code 1.
    r = cli("tenants", "route", "acme", "sales", "--recipients", "sales@acme.test", "--endpoints", "nope")
    assert r.returncode == 1 and "422" in r.stderr and "tenants.acme.routes[1].endpoints[0]" in r.stderr, r.stderr
    r = cli("tenants", "get", "beta")
    assert r.returncode == 1 and "404" in r.stderr
    r = cli("api", "GET", "/api/v1/whoami")
    assert r.returncode == 0 and json.loads(r.stdout)["token"] == "acme-ops"
    r = cli("api", "POST", "/api/v1/dlq/replay", "--data", '{"tenant": "acme"}')
    assert r.returncode == 0 and json.loads(r.stdout) == {"replayed": [], "failed": []}
    r = cli("tenants", "list", token="wrong-token-0123456789")
    assert r.returncode == 1 and "401" in r.stderr


def test_plugin_upload_is_checked_versioned_and_runs(system, receiver):
    """An upload must compile and instantiate; an accepted version is stored in the object
    store, activated in the tenant's chain with a tenant token, and transforms the next mail;
    a second version replaces the first."""
    from support import REPO

    smtp_port, api, _ = system
    build = REPO / "plugins" / "build"
    slack, redact = (build / "slack.wasm").read_bytes(), (build / "redact.wasm").read_bytes()
    up = "/api/v1/tenants/acme/plugins/pretty"
    wasm = {"Content-Type": "application/wasm"}
    st, h, b = api.call("PUT", up, token=ACME, raw=b"not wasm at all", headers=wasm)
    is_problem(st, h, b, 400)
    st, h, b = api.call("PUT", up, token=ACME, raw=b"\0asm\x0d\0\x01\0garbage", headers=wasm)
    is_problem(st, h, b, 422)
    assert "does not load" in b["detail"]
    st, h, b = api.call("PUT", "/api/v1/tenants/beta/plugins/x", token=ACME, raw=slack, headers=wasm)
    is_problem(st, h, b, 404)

    import hashlib
    st, _, b = api.call("PUT", up + "?activate=true", token=ACME, raw=slack, headers=wasm)
    assert st == 201, b
    assert b["version"] == hashlib.sha256(slack).hexdigest() and b["activated"] is True
    listing = api.call("GET", "/api/v1/plugins", token=ACME)[2]
    assert [(u["name"], u["version"], u["active"], u["uploaded_by"]) for u in listing["uploaded"]] == [
        ("pretty", b["version"], True, "acme-ops")]
    assert [p["sha256"] for p in listing["plugins"]] == [b["version"]]

    send(smtp_port, "support@acme.test", "plugin-one")
    first = receiver.wait_for(1)[0].json()
    assert first["text"].startswith("New mail from") and "blocks" in first, first

    st, _, b2 = api.call("PUT", up + "?activate=true", token=ACME, raw=redact, headers=wasm)
    assert st == 201 and b2["version"] != b["version"]
    chain = api.call("GET", "/api/v1/tenants/acme")[2]["config"]["plugins"]
    assert len(chain) == 1 and chain[0]["path"].endswith(f"{b2['version']}.wasm"), chain
    send(smtp_port, "support@acme.test", "plugin-two")
    second = receiver.wait_for(2)[1].json()
    assert "blocks" not in second and second["message"]["subject"] == "plugin-two", second
    versions = {u["version"]: u["active"] for u in api.call("GET", "/api/v1/plugins")[2]["uploaded"]}
    assert versions == {b["version"]: False, b2["version"]: True}


def test_unrouted_mail_is_replayed_once_the_route_is_back(request, tmp_path, nats, receiver):
    """A route removed between SMTP and processing leaves the mail unrouted, in the DLQ
    (never dropped); with the route back (through the API), a replay processes it again."""
    smtp_port, admin_port = free_port(), free_port()
    config = tmp_path / "postwire.toml"
    config.write_text(dev_config(nats.url, smtp_port, receiver.url("/hook"), admin_port=admin_port))
    env = child_env(RUST_LOG="info", POSTWIRE_ADMIN_TOKEN=GLOBAL)

    def role(name):
        p = Process(f"postwire-{name}", [postwire_path(), name, "--config", str(config)], tmp_path, env=env)
        attach_logs(request, p)
        return p

    procs = [role("admin"), role("ingest"), role("deliver")]
    try:
        procs[1].wait_for_port(smtp_port)
        procs[0].wait_for_port(admin_port)
        api = Api(admin_port)
        send(smtp_port, "support@acme.test", "waits-for-a-route")  # accepted: the route exists
        route = api.call("GET", "/api/v1/tenants/acme/routes/support")[2]
        assert api.call("DELETE", "/api/v1/tenants/acme/routes/support")[0] == 200
        worker = role("worker")  # starts with the route gone
        procs.append(worker)
        dead = wait(lambda: api.call("GET", "/api/v1/dlq")[2]["dead_letters"])
        assert [(d["route"], d["last_error"]) for d in dead] == [("_unrouted", "no route matches these recipients")]
        assert receiver.requests == []
        assert api.call("PUT", "/api/v1/tenants/acme/routes/support",
                        body={"recipients": route["recipients"], "endpoints": route["endpoints"]})[0] == 200
        deadline = time.time() + 20
        while worker.stderr().count("Applied a tenant configuration change") < 1:
            assert time.time() < deadline, "the worker did not apply the change"
            time.sleep(0.05)
        replayed = api.call("POST", "/api/v1/dlq/replay", body={"seqs": [dead[0]["seq"]]})[2]
        assert replayed["failed"] == [] and len(replayed["replayed"]) == 1, replayed
        got = receiver.wait_for(1)[0].json()
        assert got["message"]["subject"] == "waits-for-a-route" and got["mail_id"] == dead[0]["mail_id"]
        assert api.call("GET", "/api/v1/dlq")[2] == {"dead_letters": []}
    finally:
        for p in procs:
            p.stop(signal.SIGINT)
