"""The admin API with postwire's roles as separate processes (ingest, process worker,
deliver worker, admin API): a configuration change written through the API reaches the
running worker and changes the routing of the next mail without a restart; unrouted mail is
replayed once its route is back."""

from __future__ import annotations

import signal
import time

import pytest

from support import Process, attach_logs, child_env, dev_config, free_port, postwire_path

from admin_support import GLOBAL, BETA_SECRET, Api, send, wait


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
