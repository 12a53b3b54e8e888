"""Authentication verdicts against an outside implementation: messages DKIM-signed by
dkimpy, DNS records served by a real DNS server on loopback (dns_server.py) that postwire
uses as its resolver. Covers DKIM pass / tampered body / wrong key / missing record, SPF
pass / softfail / fail, DMARC reject / quarantine / none, relaxed and strict alignment, the
tenant policies tag / quarantine / reject, and DNS timeouts (retried, never a failure)."""

from __future__ import annotations

import json
import smtplib
import subprocess
import time

import pytest

from auth_support import arc_seal, by_subject, message, rsa_key, sign, verify_section
from support import postwire_path


@pytest.fixture(scope="module")
def keys():
    return rsa_key(), rsa_key()


@pytest.fixture
def zone(dns, keys):
    """The DNS data every test here shares."""
    good, _ = keys
    for domain, dmarc in [
        ("pass.test", "v=DMARC1; p=reject"),
        ("rej.test", "v=DMARC1; p=reject"),
        ("quar.test", "v=DMARC1; p=quarantine"),
        ("none.test", "v=DMARC1; p=none"),
        ("relaxed.test", "v=DMARC1; p=reject; adkim=r; aspf=r"),
        ("strict.test", "v=DMARC1; p=reject; adkim=s; aspf=s"),
    ]:
        dns.txt(f"_dmarc.{domain}", dmarc)
        dns.txt(f"sel._domainkey.{domain}", good.record)
    dns.txt("pass.test", "v=spf1 ip4:127.0.0.1 -all")
    dns.txt("softfail.test", "v=spf1 ~all")
    dns.txt("fail.test", "v=spf1 -all")
    return dns


def test_dkim_spf_and_dmarc_verdicts(start_postwire, zone, keys):
    good, other = keys
    dev = start_postwire(verify=verify_section(zone.address))
    signed = sign(message("ann@pass.test", "dkim pass"), good, "pass.test")
    tampered = sign(message("ann@pass.test", "dkim tampered"), good, "pass.test")
    tampered = tampered.replace(b"Hello from", b"Hullo from")
    wrong_key = sign(message("ann@pass.test", "dkim wrong key"), other, "pass.test")
    no_record = sign(message("ann@pass.test", "dkim no record"), good, "pass.test", "gone")
    sends = [
        (signed, "bounce@pass.test"),
        (tampered, "bounce@softfail.test"),
        (wrong_key, "bounce@fail.test"),
        (no_record, "bounce@nowhere.test"),
    ]
    for raw, mail_from in sends:
        assert dev.send(raw, mail_from=mail_from) == {}
    got = by_subject(dev.receiver.wait_for(len(sends), timeout=30))

    ok = got["dkim pass"]["auth"]
    assert ok["dkim"] == [{"result": "pass", "domain": "pass.test", "selector": "sel"}]
    assert ok["spf"] == {"result": "pass", "domain": "pass.test"}
    assert ok["dmarc"]["result"] == "pass" and ok["dmarc"]["aligned"] is True
    assert ok["dmarc"]["policy"] == "reject"
    # hickory answers loopback PTR queries itself (RFC 6761): 127.0.0.1 is localhost.
    assert ok["iprev"] == {"result": "pass", "ptr": ["localhost"]}
    ar = ok["authentication_results"]
    assert ar.startswith("mx.test;") and "dkim=pass" in ar and "header.i=@pass.test" in ar, ar
    assert "spf=pass" in ar and "dmarc=pass" in ar, ar

    bad_body = got["dkim tampered"]["auth"]
    # mail-auth reports a body hash mismatch as neutral (see docs/decisions.md).
    assert bad_body["dkim"][0]["result"] == "neutral", bad_body
    assert "body hash" in bad_body["dkim"][0]["reason"].lower(), bad_body
    assert bad_body["spf"]["result"] == "softfail"
    assert bad_body["dmarc"]["result"] == "fail" and bad_body["dmarc"]["aligned"] is False

    bad_key = got["dkim wrong key"]["auth"]
    assert bad_key["dkim"][0]["result"] == "fail", bad_key
    assert "body" not in bad_key["dkim"][0]["reason"].lower(), bad_key
    assert bad_key["spf"]["result"] == "fail"

    missing = got["dkim no record"]["auth"]
    assert missing["dkim"][0]["result"] == "permerror", missing
    assert missing["dkim"][0]["selector"] == "gone"
    assert missing["spf"]["result"] == "none"
    for event in got.values():
        assert all(d["result"] != "temperror" for d in event["auth"]["dkim"])


def test_dmarc_policies_and_alignment(start_postwire, zone, keys):
    good, _ = keys
    dev = start_postwire(verify=verify_section(zone.address))
    cases = {
        "dmarc reject": message("x@rej.test", "dmarc reject"),
        "dmarc quarantine": message("x@quar.test", "dmarc quarantine"),
        "dmarc none": message("x@none.test", "dmarc none"),
        "relaxed": sign(message("x@news.relaxed.test", "relaxed"), good, "relaxed.test"),
        "strict": sign(message("x@news.strict.test", "strict"), good, "strict.test"),
    }
    for raw in cases.values():
        assert dev.send(raw, mail_from="bounce@elsewhere.test") == {}
    got = by_subject(dev.receiver.wait_for(len(cases), timeout=30))
    dmarc = {subject: event["auth"]["dmarc"] for subject, event in got.items()}
    assert dmarc["dmarc reject"]["result"] == "fail"
    assert dmarc["dmarc reject"]["policy"] == "reject"
    assert dmarc["dmarc quarantine"]["policy"] == "quarantine"
    assert dmarc["dmarc none"]["policy"] == "none"
    assert dmarc["dmarc none"]["result"] == "fail"
    assert got["relaxed"]["auth"]["dkim"][0]["result"] == "pass"
    assert dmarc["relaxed"]["result"] == "pass" and dmarc["relaxed"]["dkim_aligned"] is True
    assert got["strict"]["auth"]["dkim"][0]["result"] == "pass"
    assert dmarc["strict"]["result"] == "fail" and dmarc["strict"]["dkim_aligned"] is False


def test_quarantine_policy_holds_then_releases(start_postwire, zone, keys):
    good, _ = keys
    dev = start_postwire(verify=verify_section(zone.address), auth_policy="quarantine")
    assert dev.send(message("x@rej.test", "held back"), mail_from="b@elsewhere.test") == {}
    assert dev.send(message("x@none.test", "p none passes"), mail_from="b@elsewhere.test") == {}
    signed = sign(message("ann@pass.test", "signed passes"), good, "pass.test")
    assert dev.send(signed, mail_from="bounce@pass.test") == {}
    got = by_subject(dev.receiver.wait_for(2, timeout=30))
    assert set(got) == {"p none passes", "signed passes"}

    cfg = str(dev.config_path)
    listed = []
    for _ in range(50):
        out = subprocess.run([postwire_path(), "quarantine", "list", "--config", cfg, "--json"],
                             capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        listed = [json.loads(line) for line in out.stdout.splitlines()]
        if listed:
            break
        time.sleep(0.1)
    assert len(listed) == 1, listed
    assert listed[0]["tenant"] == "acme" and "rej.test" in listed[0]["reason"]
    dev.nats.wait_idle()
    assert len(dev.receiver.requests) == 2, "a quarantined mail is not delivered"

    out = subprocess.run([postwire_path(), "quarantine", "release", "--config", cfg,
                          str(listed[0]["seq"])], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    released = by_subject(dev.receiver.wait_for(3, timeout=30))["held back"]
    assert released["auth"]["dmarc"]["result"] == "fail"
    out = subprocess.run([postwire_path(), "quarantine", "list", "--config", cfg, "--json"],
                         capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == ""


def test_quarantine_through_the_admin_api(start_postwire, zone, keys):
    """List, show (with the verdicts), release and purge quarantined mail over the API."""
    import urllib.request
    from support import free_port

    admin, token = free_port(), "quarantine-admin-token-0123"
    dev = start_postwire(verify=verify_section(zone.address), auth_policy="quarantine",
                         admin_port=admin, env={"POSTWIRE_ADMIN_TOKEN": token})

    def api(method, path, body=None):
        req = urllib.request.Request(
            f"http://127.0.0.1:{admin}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    for subject in ("held one", "held two"):
        assert dev.send(message("x@rej.test", subject), mail_from="b@elsewhere.test") == {}
    held = []
    for _ in range(100):
        held = api("GET", "/api/v1/quarantine?tenant=acme")[1]["quarantined"]
        if len(held) == 2:
            break
        time.sleep(0.1)
    assert len(held) == 2 and all("rej.test" in h["reason"] for h in held), held
    status, one = api("GET", f"/api/v1/quarantine/{held[0]['seq']}")
    assert status == 200 and one["auth"]["dmarc"]["result"] == "fail" and one["mail_id"] == held[0]["mail_id"]
    assert api("POST", "/api/v1/quarantine/release", {"seqs": [held[0]["seq"]]})[1]["done"] == [held[0]["seq"]]
    assert api("POST", "/api/v1/quarantine/purge", {"seqs": [held[1]["seq"]]})[1]["done"] == [held[1]["seq"]]
    # The worker may have held them back in either order: the released one is held[0].
    released = dev.receiver.wait_for(1, timeout=30)[0].json()
    assert released["mail_id"] == held[0]["mail_id"]
    assert released["message"]["subject"] in ("held one", "held two")
    assert api("GET", "/api/v1/quarantine")[1]["quarantined"] == []
    assert api("GET", f"/api/v1/quarantine/{held[1]['seq']}")[0] == 404
    dev.nats.wait_idle()
    assert len(dev.receiver.requests) == 1, "the purged mail is never delivered"
    # Both actions are in the audit trail: who, what, which mail.
    ops = [c for c in api("GET", "/api/v1/audit")[1]["changes"] if c.get("kind") == "operation"]
    assert [(c["tenant"], c["by"], c["change"], c["detail"]["items"]) for c in ops] == [
        ("acme", "admin", "quarantine.release", [{"seq": held[0]["seq"]}]),
        ("acme", "admin", "quarantine.purge", [{"seq": held[1]["seq"]}])], ops


def test_reject_policy_refuses_at_data(start_postwire, zone, keys):
    good, _ = keys
    dev = start_postwire(verify=verify_section(zone.address), auth_policy="reject")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        dev.send(message("x@rej.test", "refused"), mail_from="b@elsewhere.test")
    assert refused.value.smtp_code == 550, refused.value
    assert refused.value.smtp_error.startswith(b"5.7.1"), refused.value
    # p=quarantine under a reject ceiling: accepted, but held back.
    assert dev.send(message("x@quar.test", "held"), mail_from="b@elsewhere.test") == {}
    signed = sign(message("ann@pass.test", "signed passes"), good, "pass.test")
    assert dev.send(signed, mail_from="bounce@pass.test") == {}
    [delivered] = dev.receiver.wait_for(1, timeout=30)
    assert delivered.json()["message"]["subject"] == "signed passes"
    assert delivered.json()["auth"]["dmarc"]["result"] == "pass"

    zone.hang_for(5)
    with pytest.raises(smtplib.SMTPDataError) as deferred:
        dev.send(message("x@rej.test", "dns down"), mail_from="b@elsewhere.test")
    assert deferred.value.smtp_code == 451, deferred.value
    assert deferred.value.smtp_error.startswith(b"4.7.5"), deferred.value
    state = dev.nats.wait_idle()
    assert state["MAIL"]["state"]["last_seq"] == 2, "only the two mails answered 250 were stored"
    assert len(dev.receiver.requests) == 1


def test_dns_timeout_is_retried_never_fail(start_postwire, zone, keys):
    good, _ = keys
    dev = start_postwire(verify=verify_section(zone.address))
    zone.hang_for(2.5)
    signed = sign(message("ann@pass.test", "after the outage"), good, "pass.test")
    assert dev.send(signed, mail_from="bounce@pass.test") == {}
    [request] = dev.receiver.wait_for(1, timeout=40)
    auth = request.json()["auth"]
    assert zone.dropped > 0, "the DNS server never timed out a query"
    assert auth["dkim"][0]["result"] == "pass", auth
    assert auth["spf"]["result"] == "pass" and auth["dmarc"]["result"] == "pass", auth
    assert "retrying" in dev.process.logs().lower()


def test_arc_chain_is_validated(start_postwire, zone, keys):
    good, other = keys
    zone.txt("sel._domainkey.relay.test", good.record)
    dev = start_postwire(verify=verify_section(zone.address))
    sealed = arc_seal(message("ann@pass.test", "arc sealed"), good, "relay.test")
    forged = arc_seal(message("ann@pass.test", "arc forged"), other, "relay.test")
    plain = message("ann@pass.test", "no arc")
    for raw in (sealed, forged, plain):
        assert dev.send(raw, mail_from="bounce@pass.test") == {}
    got = by_subject(dev.receiver.wait_for(3, timeout=30))
    assert got["arc sealed"]["auth"]["arc"] == {"result": "pass", "sets": 1}, got["arc sealed"]
    assert got["arc forged"]["auth"]["arc"]["result"] in ("fail", "neutral"), got["arc forged"]
    assert "arc" not in got["no arc"]["auth"]
    assert "arc=pass" in got["arc sealed"]["auth"]["authentication_results"]


def test_auth_command_prints_verdicts(tmp_path, zone, keys):
    good, _ = keys
    config = tmp_path / "verify.toml"
    config.write_text(verify_section(zone.address))
    signed = tmp_path / "signed.eml"
    signed.write_bytes(sign(message("ann@pass.test", "cli"), good, "pass.test"))
    failing = tmp_path / "failing.eml"
    failing.write_bytes(message("x@rej.test", "cli fail"))
    args = ["--config", str(config), "--client-ip", "127.0.0.1", "--helo", "client.test"]
    ok = subprocess.run([postwire_path(), "auth", str(signed), *args,
                         "--mail-from", "bounce@pass.test"],
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    auth = json.loads(ok.stdout)
    assert auth["dkim"][0]["result"] == "pass" and auth["dmarc"]["result"] == "pass"
    bad = subprocess.run([postwire_path(), "auth", str(failing), *args,
                          "--mail-from", "b@elsewhere.test"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1, bad
    assert json.loads(bad.stdout)["dmarc"]["result"] == "fail"
    assert "DMARC fails for rej.test" in bad.stderr
