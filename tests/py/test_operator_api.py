"""The operator's API (docs/api.md) against a real `postwire dev`: finding a mail by address,
subject or id (the summary of each mail is its `received` audit record), resending a
delivered one from its kept payload (same webhook-id, a new signed attempt), recovering an
endpoint's failed deliveries, a signed test event, and charts whose period fits the data.
The CLI commands over the same API: `postwire deliveries resend`, `postwire endpoints test`."""

from __future__ import annotations

import os
import subprocess

from standardwebhooks.webhooks import Webhook

from support import SECRET, postwire_path

from admin_support import GLOBAL, ACME, is_problem, system, send, wait  # noqa: F401 (system is a fixture)


def deliveries(api, query: str = "", token: str = GLOBAL) -> list:
    status, _, body = api.call("GET", f"/api/v1/deliveries{query}", token=token)
    assert status == 200, body
    return body["deliveries"]


def verify(secret: str, request) -> dict:
    return Webhook(secret).verify(request.body, request.headers)


def test_a_fresh_instance_has_no_data_and_then_a_period_that_shows_it(system):
    smtp_port, api, _ = system
    st, _, stats = api.call("GET", "/api/v1/stats")
    assert st == 200 and stats["empty"] is True and stats["hours"] == 24, stats
    send(smtp_port, "support@acme.test", "first-mail")
    stats = wait(lambda: (lambda s: s if not s["empty"] else None)(api.call("GET", "/api/v1/stats")[2]))
    assert stats, "the mail never showed in the stats"
    # Data minutes old: the last hour, in one-minute buckets, the last one holding now.
    assert stats["hours"] == 1 and stats["bucket_secs"] == 60, stats
    assert len(stats["buckets"]) == 60
    assert stats["buckets"][-1]["t"] <= stats["end"] and stats["start"] == stats["buckets"][0]["t"]
    assert sum(b["received"] for b in stats["buckets"]) == 1
    # Asked for a day: hourly buckets ending now.
    day = api.call("GET", "/api/v1/stats?hours=24")[2]
    assert day["hours"] == 24 and day["bucket_secs"] == 3600 and len(day["buckets"]) == 24, day


def test_find_a_mail_by_address_subject_or_id_and_resend_it(system, receiver):
    smtp_port, api, _ = system
    send(smtp_port, "support@acme.test", "invoice-4711")
    send(smtp_port, "support@acme.test", "hello-there")
    receiver.wait_for(2)
    found = wait(lambda: [d for d in deliveries(api, "?subject=INVOICE") if d["status"] == "delivered"])
    assert len(found) == 1, found
    d = found[0]
    m = d["mail"]
    assert m["subject"] == "invoice-4711" and m["mail_from"] == "a@example.com", m
    assert m["rcpt_to"] == ["support@acme.test"] and m["from"] == ["a@example.com"], m
    assert m["size"] > 0 and m["attachments"] == 0 and m["routes"] == ["support"], m
    # The search box's text finds it by subject, id or address; other filters narrow it.
    assert [x["delivery_id"] for x in deliveries(api, "?q=invoice")] == [d["delivery_id"]]
    assert [x["delivery_id"] for x in deliveries(api, f"?q={d['mail_id']}")] == [d["delivery_id"]]
    assert [x["delivery_id"] for x in deliveries(api, f"?delivery_id={d['delivery_id']}")] == [d["delivery_id"]]
    # The second mail's attempt record lands a moment after its POST (a loaded `make test`
    # once listed 1 of 2 here): wait for both, as for the first.
    assert wait(lambda: len(deliveries(api, "?address=a@EXAMPLE.com")) == 2), \
        deliveries(api, "?address=a@EXAMPLE.com")
    assert deliveries(api, "?address=nobody@example.com") == []
    assert deliveries(api, "?subject=invoice&status=dead") == []
    assert deliveries(api, "?subject=invoice&endpoint=other") == []
    assert len(deliveries(api, "?q=invoice", token=ACME)) == 1
    is_problem(*api.call("GET", "/api/v1/deliveries?q=" + "x" * 201), 400)

    # Its payload is kept: the details show it.
    st, _, shown = api.call("GET", f"/api/v1/deliveries/{d['delivery_id']}")
    assert st == 200 and shown["payload"]["message"]["subject"] == "invoice-4711", shown
    first = next(r for r in receiver.requests if r.headers["webhook-id"] == d["delivery_id"])

    # Resend: a new attempt with the same webhook-id, signed at that attempt.
    st, _, r = api.call("POST", f"/api/v1/deliveries/{d['delivery_id']}/resend", token=ACME)
    assert st == 202 and r == {"delivery_id": d["delivery_id"], "tenant": "acme", "from": "payload"}, r
    again = receiver.wait_for(3)[2]
    assert again.headers["webhook-id"] == d["delivery_id"]
    assert again.body == first.body
    assert int(again.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"])
    assert verify(SECRET, again)["id"] == d["delivery_id"]
    shown = wait(lambda: (lambda x: x if len(x["attempts"]) == 2 else None)(
        api.call("GET", f"/api/v1/deliveries/{d['delivery_id']}")[2]))
    assert shown and [a["result"] for a in shown["attempts"]] == ["delivered", "delivered"], shown
    # The resend is in the audit trail.
    changes = api.call("GET", "/api/v1/audit?tenant=acme")[2]["changes"]
    assert any(c["change"] == f"resend delivery {d['delivery_id']}" and c["by"] == "acme-ops"
               for c in changes), changes

    # Nothing to resend, or not an id.
    is_problem(*api.call("POST", "/api/v1/deliveries/msg_00000000000000000000000000000000/resend"), 404)
    is_problem(*api.call("POST", "/api/v1/deliveries/not.an.id/resend"), 400)


def test_recover_resends_the_failed_deliveries_of_an_endpoint(system):
    smtp_port, api, _ = system
    # beta keeps no payloads: what it can resend is what the DLQ holds.
    doc = api.call("GET", "/api/v1/tenants/beta")[2]
    st, _, body = api.call("PUT", "/api/v1/tenants/beta",
                           body={**doc["config"], "payload_retention_days": 0})
    assert st == 200 and body["config"]["payload_retention_days"] == 0, body
    send(smtp_port, "anyone@beta.test", "to-beta")
    dead = wait(lambda: deliveries(api, "?status=dead"))
    assert len(dead) == 1 and dead[0]["endpoint"] == "gone", dead
    seq = dead[0]["dlq_seq"]
    st, _, r = api.call("POST", "/api/v1/tenants/beta/endpoints/gone/recover", body={"since": "1h"})
    assert st == 200 and [x["delivery_id"] for x in r["resent"]] == [dead[0]["delivery_id"]], r
    assert r["resent"][0]["from"] == "dlq" and r["failed"] == [], r
    # Sent again (and dead again: the endpoint still refuses), as a new dead letter.
    again = wait(lambda: [d for d in deliveries(api, "?status=dead") if d["dlq_seq"] != seq])
    assert again and again[0]["delivery_id"] == dead[0]["delivery_id"], again
    # One delivery again, from the DLQ; once purged, nothing is kept to send.
    st, _, r = api.call("POST", f"/api/v1/deliveries/{dead[0]['delivery_id']}/resend")
    assert st == 202 and r["from"] == "dlq", r
    held = wait(lambda: api.call("GET", "/api/v1/dlq?tenant=beta")[2]["dead_letters"], timeout=30)
    assert api.call("POST", "/api/v1/dlq/purge", body={"seqs": [d["seq"] for d in held]})[0] == 200
    is_problem(*api.call("POST", f"/api/v1/deliveries/{dead[0]['delivery_id']}/resend"), 404)
    # A tenant token cannot recover another tenant's endpoint; bad input is a problem.
    is_problem(*api.call("POST", "/api/v1/tenants/beta/endpoints/gone/recover", token=ACME,
                         body={"since": "1h"}), 404)
    is_problem(*api.call("POST", "/api/v1/tenants/beta/endpoints/nope/recover", body={"since": "1h"}), 404)
    is_problem(*api.call("POST", "/api/v1/tenants/beta/endpoints/gone/recover", body={"since": "soon"}), 400)


def test_a_test_event_is_signed_like_a_delivery_and_reports_the_answer(system, receiver):
    _, api, _ = system
    st, _, r = api.call("POST", "/api/v1/tenants/acme/endpoints/hook/test", token=ACME)
    assert st == 200 and r["result"] == "delivered" and r["status"] == 204, r
    assert r["webhook_id"].startswith("msg_test_") and r["duration_ms"] >= 0, r
    got = receiver.wait_for(1)[0]
    assert got.headers["webhook-id"] == r["webhook_id"]
    event = verify(SECRET, got)
    assert event["test"] is True and event["tenant"] == "acme", event
    assert event["message"]["subject"] == "postwire test event"
    # An endpoint that does not answer: the error, no status.
    st, _, r = api.call("POST", "/api/v1/tenants/beta/endpoints/gone/test")
    assert st == 200 and r["result"] == "failed" and r["status"] is None and r["error"], r
    is_problem(*api.call("POST", "/api/v1/tenants/beta/endpoints/gone/test", token=ACME), 404)
    changes = api.call("GET", "/api/v1/audit?tenant=beta")[2]["changes"]
    assert any(c["change"] == "test event to endpoint gone" for c in changes), changes


def test_the_cli_resends_and_sends_a_test_event(system, receiver):
    smtp_port, api, _ = system
    env = {**os.environ, "POSTWIRE_TOKEN": ACME, "POSTWIRE_API": api.base}
    send(smtp_port, "support@acme.test", "cli-resend")
    first = receiver.wait_for(1)[0]
    wait(lambda: deliveries(api, "?status=delivered"))
    out = subprocess.run([postwire_path(), "deliveries", "resend", first.headers["webhook-id"]],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "same webhook-id" in out.stderr
    assert receiver.wait_for(2)[1].headers["webhook-id"] == first.headers["webhook-id"]
    out = subprocess.run([postwire_path(), "endpoints", "test", "acme", "hook"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("delivered: HTTP 204 in "), (out.stdout, out.stderr)
    test_id = receiver.wait_for(3)[2].headers["webhook-id"]
    assert test_id.startswith("msg_test_") and test_id in out.stdout
    out = subprocess.run([postwire_path(), "deliveries", "recover", "acme", "hook", "--since", "1h"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and '"resent": []' in out.stdout, (out.stdout, out.stderr)
    # Exit 1 when the endpoint does not take it; 2 on a usage error.
    env["POSTWIRE_TOKEN"] = GLOBAL
    out = subprocess.run([postwire_path(), "endpoints", "test", "beta", "gone"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stdout.startswith("failed: no answer"), (out.stdout, out.stderr)
    del env["POSTWIRE_TOKEN"]
    env = {k: v for k, v in env.items() if k != "POSTWIRE_ADMIN_TOKEN"}
    out = subprocess.run([postwire_path(), "deliveries", "resend", "x"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
