"""Scale-out on a 3-node JetStream cluster, with a node killed while mail flows.

The test starts three `nats-server -js` processes clustered over loopback (R3 streams), and
postwire as separate role processes: one `ingest`, two `worker`, one `deliver`. A thread sends
mail over SMTP continuously; part-way through, the NATS node the ingest process is connected
to, which also leads the MAIL stream, is killed with SIGKILL. The clients reconnect to the
survivors and the streams elect new leaders; until MAIL has one, ingest answers 451 (no
PubAck), and sending goes on until it accepts again. The rule under test: every message answered 250 reaches the receiver, exactly once
by webhook-id. A message answered 4xx during the failover is fine (a real MTA retries it);
those are counted and printed, as are repeated requests carrying the same webhook-id
(allowed: receivers deduplicate on it).
"""

from __future__ import annotations

import json
import signal
import smtplib
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support import (
    Process,
    attach_logs,
    child_env,
    dev_config,
    free_port,
    monitor_urls_for,
    nats_conf,
    nats_server_path,
    postwire_path,
    register_monitor,
    wait_idle,
)

MESSAGES = 200  # sent at least; more until the last RECOVERED after the kill were all 250
MAX_MESSAGES = 1000
RECOVERED = 25
KILL_AFTER = 60  # messages answered (any answer) before a node is killed
PAUSE_SECS = 0.05  # between two messages


# --- the cluster --------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    client_port: int
    cluster_port: int
    http_port: int
    process: Process

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    def monitor(self, path: str):
        """GET on the monitoring port; the parsed JSON, or None when unreachable."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=2) as r:
                return json.load(r)
        except (OSError, ValueError):
            return None


def start_cluster(request, tmp_path, size: int = 3) -> list[Node]:
    ports = [(free_port(), free_port(), free_port()) for _ in range(size)]
    routes = ",".join(f"nats://127.0.0.1:{cluster}" for _, cluster, _ in ports)
    nodes = []
    # sync_interval: always, as the cluster config in docs/operations.md
    conf = str(nats_conf(tmp_path))
    for i, (client, cluster, http) in enumerate(ports, start=1):
        name = f"n{i}"
        store = tmp_path / f"nats-{name}"
        store.mkdir()
        process = Process(
            f"nats-{name}",
            [
                nats_server_path(), "-c", conf, "-js",
                "-a", "127.0.0.1", "-p", str(client), "-m", str(http),
                "-sd", str(store),
                "--server_name", name,
                "--cluster_name", "postwire-test",
                "--cluster", f"nats://127.0.0.1:{cluster}",
                "--routes", routes,
            ],
            tmp_path,
        )
        attach_logs(request, process)
        register_monitor(f"nats://127.0.0.1:{client}", f"http://127.0.0.1:{http}")
        nodes.append(Node(name, client, cluster, http, process))
    return nodes


def wait_cluster_ready(nodes: list[Node], timeout: float = 60.0) -> None:
    """Until every node is healthy and the JetStream meta group has a leader and all peers."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for node in nodes:
            if not node.process.alive():
                pytest.fail(f"{node.name} exited at start\n{node.process.logs()}")
        health = [node.monitor("/healthz") for node in nodes]
        meta = [(node.monitor("/jsz") or {}).get("meta_cluster") or {} for node in nodes]
        last = (health, meta)
        if all(h == {"status": "ok"} for h in health) and all(
            m.get("leader") and m.get("cluster_size") == len(nodes) for m in meta
        ):
            return
        time.sleep(0.2)
    pytest.fail(f"the NATS cluster was not ready within {timeout} s: {last!r}")


def connected_node(nodes: list[Node], connection_name: str) -> Node | None:
    for node in nodes:
        connz = node.monitor("/connz") or {}
        if any(c.get("name") == connection_name for c in connz.get("connections", [])):
            return node
    return None


def stream_leaders(nodes: list[Node]) -> dict[str, str]:
    """Stream name → name of its leader, as one live node reports it."""
    for node in nodes:
        if not node.process.alive():
            continue
        jsz = node.monitor("/jsz?streams=true") or {}
        leaders = {}
        for account in jsz.get("account_details", []):
            for stream in account.get("stream_detail", []):
                leaders[stream["name"]] = (stream.get("cluster") or {}).get("leader", "?")
        if leaders:
            return leaders
    return {}


@pytest.fixture
def cluster(request, tmp_path):
    nodes = start_cluster(request, tmp_path)
    try:
        for node in nodes:
            node.process.wait_for_port(node.client_port, timeout=30)
        wait_cluster_ready(nodes)
        yield nodes
    finally:
        for node in nodes:
            node.process.stop(signal.SIGTERM)


# --- the sender ---------------------------------------------------------------------------


@dataclass
class Outcome:
    index: int
    sent_at: float
    code: int | None  # SMTP reply code to DATA (250 = accepted); None: no reply
    detail: str = ""


@dataclass
class Sender:
    smtp_port: int
    run_id: str
    outcomes: list = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    killed_at: float | None = None  # set by the test when it killed the node

    def recovered(self) -> bool:
        """Whether the last RECOVERED messages, all sent after the kill, were accepted."""
        with self.cond:
            last = self.outcomes[-RECOVERED:]
        return (self.killed_at is not None and len(last) == RECOVERED
                and all(o.sent_at >= self.killed_at and o.code == 250 for o in last))

    def subject(self, i: int) -> str:
        return f"cluster {self.run_id} #{i}"

    def message(self, i: int) -> bytes:
        return (
            f"From: Sender <sender@example.com>\r\nTo: support@acme.test\r\n"
            f"Subject: {self.subject(i)}\r\n"
            f"Message-ID: <{self.run_id}.{i}@example.com>\r\n\r\nmessage {i}\r\n"
        ).encode()

    def send_one(self, i: int) -> Outcome:
        start = time.monotonic()
        try:
            with smtplib.SMTP("127.0.0.1", self.smtp_port, local_hostname="client.test",
                              timeout=30) as client:
                refused = client.sendmail("sender@example.com", ["support@acme.test"],
                                          self.message(i))
            if refused:
                return Outcome(i, start, None, f"refused: {refused!r}")
            return Outcome(i, start, 250)
        except smtplib.SMTPResponseException as err:
            return Outcome(i, start, err.smtp_code, err.smtp_error.decode(errors="replace"))
        except (smtplib.SMTPException, OSError) as err:
            return Outcome(i, start, None, f"{type(err).__name__}: {err}")

    def run(self) -> None:
        for i in range(MAX_MESSAGES):
            outcome = self.send_one(i)
            with self.cond:
                self.outcomes.append(outcome)
                self.cond.notify_all()
            if i + 1 >= MESSAGES and self.recovered():
                return
            time.sleep(PAUSE_SECS)

    def wait_for(self, n: int, timeout: float) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.outcomes) >= n, timeout=timeout):
                raise AssertionError(f"only {len(self.outcomes)} of {n} messages answered "
                                     f"within {timeout} s")


# --- the test -----------------------------------------------------------------------------


def start_role(request, tmp_path, name: str, role: str, config) -> Process:
    process = Process(name, [postwire_path(), role, "--config", str(config)], tmp_path,
                      env=child_env(RUST_LOG="info"))
    attach_logs(request, process)
    return process


def start_supervised(request, tmp_path, name: str, role: str, config, ready,
                     attempts: int = 3) -> tuple[Process, int]:
    """Starts a role and waits with `ready(process)`; restarts it when it exited with 1 (could
    not reach JetStream in time), as systemd or compose would. Returns it and the restarts."""
    for attempt in range(attempts):
        process = start_role(request, tmp_path, f"{name}-{attempt}" if attempt else name,
                             role, config)
        try:
            ready(process)
            return process, attempt
        except pytest.fail.Exception:
            process.stop(signal.SIGINT)
            if process.proc.returncode != 1 or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def wait_for_log(process: Process, needle: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while needle not in process.stderr():
        if not process.alive():
            pytest.fail(f"{process.name} exited with {process.proc.returncode}\n{process.logs()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{process.name} did not log {needle!r} within {timeout} s\n"
                        f"{process.logs()}")
        time.sleep(0.1)


@pytest.mark.timeout(420)
def test_node_killed_mid_run_loses_and_duplicates_nothing(request, tmp_path, cluster, receiver,
                                                          capsys):
    smtp_port = free_port()
    # Every role lists all three servers, the seed first.
    def write_config(seed: Node) -> Path:
        servers = ",".join([seed.url] + [n.url for n in cluster if n is not seed])
        path = tmp_path / f"postwire-{seed.name}.toml"
        path.write_text(dev_config(servers, smtp_port, receiver.url("/hook"),
                                   extra_delivery="ack_wait_secs = 10",
                                   extra_nats="stream_replicas = 3",
                                   retry_schedule=("200ms", "1s", "2s", "5s", "10s")))
        return path

    roles: list[Process] = []
    try:
        # A first worker creates the R3 streams (as an operator's first start would) and stops.
        # Creating them can take longer on a fresh cluster than a role waits at start (it then
        # exits 1); a supervisor would restart it, and so does this test, counting restarts.
        setup, restarts = start_supervised(
            request, tmp_path, "postwire-setup", "worker", write_config(cluster[0]),
            lambda p: wait_for_log(p, "Process worker is running.", 60))
        setup.stop(signal.SIGINT)
        # The roles then start from the node that leads MAIL, so the node killed below is
        # both the one ingest is connected to and the leader its PubAcks come from.
        mail_leader = stream_leaders(cluster).get("MAIL")
        seed = next((n for n in cluster if n.name == mail_leader), cluster[0])
        config = write_config(seed)
        for name, role, ready in [
            ("postwire-ingest", "ingest", lambda p: p.wait_for_port(smtp_port, 60)),
            ("postwire-worker-1", "worker",
             lambda p: wait_for_log(p, "Process worker is running.", 60)),
            ("postwire-worker-2", "worker",
             lambda p: wait_for_log(p, "Process worker is running.", 60)),
            ("postwire-deliver", "deliver",
             lambda p: wait_for_log(p, "Deliver worker is running.", 60)),
        ]:
            process, more = start_supervised(request, tmp_path, name, role, config, ready)
            roles.append(process)
            restarts += more

        sender = Sender(smtp_port, uuid.uuid4().hex[:12])
        thread = threading.Thread(target=sender.run, name="smtp-sender", daemon=True)
        thread.start()

        sender.wait_for(KILL_AFTER, timeout=120)
        connected = connected_node(cluster, "postwire-ingest")
        victim = connected or seed
        leaders_before = stream_leaders(cluster)
        killed_at = time.monotonic()
        victim.process.proc.send_signal(signal.SIGKILL)
        victim.process.proc.wait(timeout=10)
        sender.killed_at = killed_at

        thread.join(timeout=240)
        assert not thread.is_alive(), "the sender did not finish within 240 s"
        outcomes = sorted(sender.outcomes, key=lambda o: o.index)
        sent = len(outcomes)

        accepted = {o.index for o in outcomes if o.code == 250}
        temporary = [o for o in outcomes if o.code is not None and 400 <= o.code < 500]
        permanent = [o for o in outcomes if o.code is not None and o.code >= 500]
        no_reply = [o for o in outcomes if o.code is None]
        after_kill = [o for o in outcomes if o.sent_at >= killed_at]
        recovery = min((o.sent_at for o in after_kill if o.code == 250), default=float("nan"))
        recovery -= killed_at

        # Everything accepted must arrive; wait for the last of them.
        by_subject = {sender.subject(i): i for i in range(sent)}

        def delivered() -> dict[int, set[str]]:
            seen: dict[int, set[str]] = {}
            with receiver.cond:
                requests = list(receiver.requests)
            for r in requests:
                index = by_subject.get(r.json()["message"]["subject"])
                assert index is not None, f"a delivery of a message never sent: {r.body[:300]!r}"
                seen.setdefault(index, set()).add(r.headers["webhook-id"])
            return seen

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not accepted <= delivered().keys():
            time.sleep(0.25)
        # Late duplicates, if any, would be pending or unacknowledged in JetStream now: wait
        # until every surviving node reports both work queues drained and acknowledged.
        wait_idle([n.http_port for n in cluster if n.process.alive()], timeout=60)
        seen = delivered()
        requests = len(receiver.requests)
        webhook_ids = {wid for wids in seen.values() for wid in wids}
        temporary_delivered = sorted({o.index for o in temporary} & seen.keys())

        summary = (
            f"\ncluster failover: killed {victim.name} (ingest was connected to it: "
            f"{victim is connected}) "
            f"after {KILL_AFTER} messages; stream leaders before: {leaders_before}, "
            f"after: {stream_leaders(cluster)}\n"
            f"  roles restarted at start (JetStream not ready in time): {restarts}\n"
            f"  sent {sent}: accepted (250) {len(accepted)}, 4xx {len(temporary)}, "
            f"5xx {len(permanent)}, no reply {len(no_reply)}; "
            f"sent after the kill {len(after_kill)}, of them accepted "
            f"{sum(1 for o in after_kill if o.code == 250)}; first 250 after the kill came "
            f"{recovery:.1f} s after it\n"
            f"  delivered: {len(seen)} distinct messages, {len(webhook_ids)} distinct "
            f"webhook-ids, {requests} requests ({requests - len(webhook_ids)} repeated "
            f"webhook-ids); 4xx-answered messages delivered anyway: {len(temporary_delivered)}"
        )
        kinds: dict[tuple, list[int]] = {}
        for o in temporary + permanent + no_reply:
            kinds.setdefault((o.code, o.detail), []).append(o.index)
        for (code, detail), indexes in kinds.items():
            summary += f"\n  {len(indexes)} x {code} {detail} (#{indexes[0]}..#{indexes[-1]})"
        with capsys.disabled():  # the numbers belong in every run's output, passed or not
            print(summary)

        missing = sorted(accepted - seen.keys())
        assert not missing, f"accepted (250) but never delivered: {missing}"
        twice = {i: sorted(seen[i]) for i in accepted if len(seen[i]) != 1}
        assert not twice, f"accepted messages delivered under several webhook-ids: {twice}"
        assert not permanent, f"5xx answers: {permanent}"
        assert not no_reply, f"messages without an SMTP answer: {no_reply}"
        unexplained = sorted(seen.keys() - accepted - {o.index for o in temporary})
        assert not unexplained, f"delivered although neither accepted nor 4xx: {unexplained}"
        assert len(webhook_ids) == len(accepted) + len(temporary_delivered)
        assert sender.recovered(), (
            f"ingest had not recovered after {sent} messages: {outcomes[-RECOVERED:]}"
        )
        for process in roles:
            assert process.alive(), f"{process.name} exited during the failover"
    finally:
        for process in roles:
            process.stop(signal.SIGINT)


def test_nats_url_list_is_accepted(request, tmp_path, nats, receiver):
    """`url = "nats://a,nats://b"`: a role starts with the first server up, the second down."""
    down = free_port()
    config = tmp_path / "postwire.toml"
    config.write_text(dev_config(f"{nats.url},nats://127.0.0.1:{down}", free_port(),
                                 receiver.url()))
    worker = start_role(request, tmp_path, "postwire-worker", "worker", config)
    try:
        wait_for_log(worker, "Process worker is running.", timeout=30)
    finally:
        worker.stop(signal.SIGINT)
