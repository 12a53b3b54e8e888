"""Mail relayed by a real Postfix (its own instance on loopback, `relayhost` pointing at
postwire) arrives at the webhook: proof against a production MTA's behaviour — pipelining,
8BITMIME, and its retry after our 4xx when the bus is down."""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from support import (
    Process,
    attach_logs,
    child_env,
    deliveries,
    dev_config,
    free_port,
    port_open,
    postwire_path,
)

POSTFIX = "/usr/sbin/postfix"
pytestmark = pytest.mark.skipif(
    not os.path.exists(POSTFIX) or os.geteuid() != 0,
    reason="needs Debian's postfix (make tools installs it) and root to run an instance",
)


def run_tty(*args: str) -> str:
    # Postfix commands report to stderr only when it is a terminal; `script` gives them one.
    r = subprocess.run(["script", "-qc", " ".join(args), "/dev/null"], capture_output=True, text=True, timeout=60)
    return r.stdout


class Postfix:
    def __init__(self, relay_port: int):
        # Postfix daemons run as the postfix user: its directories must be reachable by it,
        # which pytest's private tmp dirs are not.
        self.root = Path(tempfile.mkdtemp(prefix="postwire-postfix-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.etc, self.spool, self.data = self.root / "etc", self.root / "spool", self.root / "data"
        for d in (self.etc, self.spool, self.data):
            d.mkdir()
        shutil.chown(self.data, user="postfix")
        self.port = free_port()
        self.maillog = self.root / "maillog"
        (self.etc / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {self.spool}
data_directory = {self.data}
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = relay.test
mydestination =
relayhost = [127.0.0.1]:{relay_port}
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
maillog_file = {self.maillog}
maillog_file_prefixes = /tmp
smtp_tls_security_level = none
minimal_backoff_time = 600s
maximal_backoff_time = 600s
""")
        shutil.copy("/etc/postfix/master.cf", self.etc / "master.cf")
        subprocess.run(["postconf", "-c", str(self.etc), "-M", f"smtp/inet=127.0.0.1:{self.port} inet n - n - - smtpd"], check=True)
        subprocess.run(["postconf", "-c", str(self.etc), "-F", "*/*/chroot = n"], check=True)

    def start(self):
        out = run_tty(POSTFIX, "-c", str(self.etc), "start")
        deadline = time.monotonic() + 20
        while not port_open(self.port):
            assert time.monotonic() < deadline, f"postfix did not start: {out}\n{self.log()}"
            time.sleep(0.1)

    def flush(self):
        run_tty(POSTFIX, "-c", str(self.etc), "flush")

    def log(self) -> str:
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def stop(self):
        run_tty(POSTFIX, "-c", str(self.etc), "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def relay(request, tmp_path, nats, receiver):
    smtp_port = free_port()
    config = tmp_path / "postwire.toml"
    config.write_text(dev_config(nats.url, smtp_port, receiver.url()))
    dev = Process("dev", [postwire_path(), "dev", "--config", str(config), "--no-sink"], tmp_path,
                  env=child_env(RUST_LOG="info"))
    attach_logs(request, dev)
    dev.wait_for_port(smtp_port)
    pf = Postfix(smtp_port)
    pf.start()
    yield pf
    print(pf.log()[-4000:])
    pf.stop()
    dev.stop(signal.SIGINT)


def submit(pf: Postfix, subject: str, body: str = "hello") -> None:
    msg = f"From: a@example.com\r\nTo: support@acme.test\r\nSubject: {subject}\r\n" \
          f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    with smtplib.SMTP("127.0.0.1", pf.port, local_hostname="client.test") as c:
        c.sendmail("a@example.com", ["support@acme.test"], msg.encode(), mail_options=["BODY=8BITMIME"])


def test_postfix_relays_to_postwire(relay, receiver):
    for i in range(3):
        submit(relay, f"relayed {i}", "Grüße über Postfix")
    got = receiver.wait_for(3, timeout=30)
    events = sorted((r.json() for r in got), key=lambda e: e["message"]["subject"])
    assert [e["message"]["subject"] for e in events] == ["relayed 0", "relayed 1", "relayed 2"]
    assert all("Grüße über Postfix" in e["message"]["text"] for e in events), "8-bit content intact"
    assert all(e["envelope"]["helo"] == "relay.test" for e in events), "it came through Postfix"
    assert all(e["envelope"]["body"] == "8BITMIME" for e in events)
    assert "status=sent" in relay.log()


def test_postfix_retries_after_451_and_delivers_once(relay, nats, receiver):
    argv = nats.process.argv
    clients = nats.connections()
    assert clients > 0
    nats.process.stop(signal.SIGTERM)
    submit(relay, "deferred")
    deadline = time.monotonic() + 30
    while "451 4.3.0" not in relay.log():
        assert time.monotonic() < deadline, f"postfix never got our 451:\n{relay.log()}"
        time.sleep(0.2)
    assert "status=deferred" in relay.log()
    assert receiver.requests == []
    restarted = Process("nats-again", argv, Path(tempfile.mkdtemp()))
    try:
        restarted.wait_for_port(int(argv[argv.index("-p") + 1]))
        restarted.wait_for_port(nats.monitor_port)
        # postwire's clients reconnected: the one ingest publishes with among them.
        deadline = time.monotonic() + 30
        while nats.connections() < clients:
            assert time.monotonic() < deadline, "postwire did not reconnect to NATS"
            time.sleep(0.1)
        # `postfix flush` does nothing for a message the queue manager still holds as active
        # (a retry of its own that was deferred just now, with the 600 s backoff): flush
        # again until the message comes through. Postfix never delivers one queue file twice
        # at once, so the exactly-once checks below still hold.
        deadline = time.monotonic() + 30
        while not receiver.requests:
            assert time.monotonic() < deadline, f"postfix did not deliver after flush:\n{relay.log()}"
            relay.flush()
            with receiver.cond:
                receiver.cond.wait_for(lambda: receiver.requests, timeout=2)
        got = receiver.wait_for(1)
        state = nats.wait_idle()
        assert state["MAIL"]["state"]["last_seq"] == 1, "stored once"
        assert deliveries(state, "process", "MAIL") == (1, 1, 1), "processed once"
        # Delivered by the worker's first attempt (the default): nothing went to OUTBOX.
        assert state["OUTBOX"]["state"]["last_seq"] == 0, state["OUTBOX"]
        assert len(receiver.requests) == 1, "delivered exactly once"
        assert got[0].json()["message"]["subject"] == "deferred"
    finally:
        restarted.stop(signal.SIGTERM)
