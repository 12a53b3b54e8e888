"""`postwire plugin try`: a candidate plugin version over a tenant's last stored raw mails,
through the admin API, without delivering anything; a clear refusal when raw mail is not
stored. The candidate is `redact` from `make plugins`."""

from __future__ import annotations

import json
import signal
import subprocess

from admin_support import GLOBAL, Api, send
from support import REPO, Process, attach_logs, child_env, dev_config, free_port, postwire_path

REDACT = REPO / "plugins" / "build" / "redact.wasm"
STAMP = REPO / "plugins" / "build" / "stamp.wasm"
CARD = "4111111111111111"


def start(request, tmp_path, nats, receiver, storage: bool, tenant: str = ""):
    smtp_port, admin_port, blob_port = free_port(), free_port(), free_port()
    text = dev_config(nats.url, smtp_port, receiver.url("/hook"), admin_port=admin_port,
                      extra_tenant=tenant)
    text += "\n[tenants.beta]\ndomains = [\"beta.test\"]\n"
    if storage:
        text += f"""
[storage]
backend = "fs"
path = "{tmp_path / 'blobs'}"
listen = "127.0.0.1:{blob_port}"
public_url = "http://127.0.0.1:{blob_port}"
"""
    config = tmp_path / "postwire.toml"
    config.write_text(text)
    dev = Process("postwire-dev", [postwire_path(), "dev", "--config", str(config), "--no-sink"],
                  tmp_path, env=child_env(RUST_LOG="info", POSTWIRE_ADMIN_TOKEN=GLOBAL,
                                          POSTWIRE_BLOB_KEY="k" * 40))
    attach_logs(request, dev)
    dev.wait_for_port(smtp_port)
    dev.wait_for_port(admin_port)
    return dev, smtp_port, Api(admin_port)


def plugin_try(api: Api, tenant: str, *extra: str, file=REDACT) -> subprocess.CompletedProcess:
    env = child_env(POSTWIRE_TOKEN=GLOBAL, POSTWIRE_API=api.base)
    return subprocess.run([postwire_path(), "plugin", "try", "--tenant", tenant,
                           "--file", str(file), *extra],
                          capture_output=True, text=True, env=env, timeout=120)


def test_plugin_try_diffs_the_candidate_over_stored_mail_and_delivers_nothing(
        request, tmp_path, nats, receiver):
    assert REDACT.is_file(), f"{REDACT} is missing: run `make plugins` (make test does)"
    dev, smtp_port, api = start(request, tmp_path, nats, receiver, storage=True)
    subjects = [f"card {CARD} one", "no number here", f"card {CARD} three"]
    for i, s in enumerate(subjects):
        send(smtp_port, "support@acme.test", s)
        receiver.wait_for(i + 1)
    nats.wait_idle()
    delivered = len(receiver.requests)
    assert delivered == 3

    out = plugin_try(api, "acme", "--last", "2", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["name"] == "redact" and report["placement"] == "added", report
    mails = report["mails"]
    # The last two stored, newest first.
    assert [m["subject"] for m in mails] == [subjects[2], subjects[1]], mails
    card, plain = mails
    assert card["active"]["outcome"] == card["candidate"]["outcome"] == "deliver"
    by_path = {c["path"]: c for c in card["changes"]}
    subject = by_path["/payload/message/subject"]
    assert subject["before"] == subjects[2] and subject["after"] == "card [card] three", by_path
    assert CARD not in card["candidate"]["payload"]["message"]["subject"], card["candidate"]
    assert all("/payload/message/subject" != c["path"] for c in plain["changes"]), plain

    text = plugin_try(api, "acme", "--last", "3")
    assert text.returncode == 0, text.stderr
    assert "candidate redact" in text.stdout and "nothing delivered" in text.stdout, text.stdout
    assert f'/payload/message/subject: "{subjects[0]}" -> "card [card] one"' in text.stdout, text.stdout

    # Nothing new reached the receiver, nothing is waiting to be delivered.
    nats.wait_idle()
    assert len(receiver.requests) == delivered

    # A tenant with no stored mail: a clear refusal (409, exit 1).
    none = plugin_try(api, "beta")
    assert none.returncode == 1, (none.stdout, none.stderr)
    assert 'no raw mail of tenant "beta" is stored' in none.stderr, none.stderr
    status, _, doc = api.call("POST", "/api/v1/tenants/beta/plugins/redact/try?last=1",
                              raw=REDACT.read_bytes(), headers={"Content-Type": "application/wasm"})
    assert status == 409 and doc["type"].endswith("/no-raw-mail"), doc
    assert dev.stop(signal.SIGINT) in (0, 130)


def test_plugin_try_refuses_clearly_when_raw_mail_is_not_stored(request, tmp_path, nats, receiver):
    dev, smtp_port, api = start(request, tmp_path, nats, receiver, storage=False)
    send(smtp_port, "support@acme.test", f"card {CARD}")
    receiver.wait_for(1)
    out = plugin_try(api, "acme", "--last", "1")
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert 'raw mail is not stored: storage.backend is "none"' in out.stderr, out.stderr
    assert dev.stop(signal.SIGINT) in (0, 130)


def test_plugin_try_puts_the_candidate_in_place_of_the_plugin_of_its_name(
        request, tmp_path, nats, receiver):
    """The active chain runs `stamp` (C) with its config; the candidate named `stamp` (here
    the redact component) takes its place: stamp's field and its `[bulk]` drop go away,
    redact's change appears."""
    dev, smtp_port, api = start(request, tmp_path, nats, receiver, storage=True,
                                tenant=f'plugins = [{{ path = "{STAMP}", config = {{ tag = "v1" }} }}]')
    send(smtp_port, "support@acme.test", f"card {CARD}")
    receiver.wait_for(1)
    send(smtp_port, "support@acme.test", "[bulk] offer")
    nats.wait_idle()
    assert len(receiver.requests) == 1, "stamp dropped the bulk mail"
    # stamp's own field is outside the payload schema, as the plugin intends.
    assert all("stamped_by" in v for v in receiver.violations), receiver.violations
    receiver.violations.clear()
    candidate = tmp_path / "cand" / "stamp.wasm"
    candidate.parent.mkdir()
    candidate.write_bytes(REDACT.read_bytes())
    out = plugin_try(api, "acme", "--last", "2", "--json", file=candidate)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["placement"] == "replaced" and report["replaced"] == str(STAMP), report
    bulk, card = report["mails"]
    assert bulk["active"]["outcome"] == "drop" and bulk["candidate"]["outcome"] == "deliver", bulk
    assert {"path": "/outcome", "before": "drop", "after": "deliver"} in bulk["changes"], bulk
    by_path = {c["path"]: c for c in card["changes"]}
    assert by_path["/payload/stamped_by"] == {"path": "/payload/stamped_by", "before": "v1"}, by_path
    assert by_path["/payload/message/subject"]["after"] == "card [card]", by_path
    nats.wait_idle()
    assert len(receiver.requests) == 1
    assert dev.stop(signal.SIGINT) in (0, 130)
