"""The soak and chaos harness (issue #18) behind `make soak` and test_soak.py: a three-node
JetStream cluster, the postwire roles as separate processes kept running by a supervisor,
paced SMTP senders that retry 4xx answers and dropped connections as an MTA does, slow and
malformed sessions mixed in, and the accounting of what was accepted and delivered.

Accounting, per numbered mail: `accepted` is the count of 250 answers; `uncertain` the count
of sends that ended after the message was handed over without a 250 (a 4xx to the end of
DATA, or a dropped connection): postwire may have stored those (a 451 when the PubAck came
late), so each may add one delivery. A mail is lost when it got a 250 and was never delivered;
double-delivered when it arrived under more webhook-ids than 250s plus uncertain sends.
"""

from __future__ import annotations

import os
import random
import signal
import smtplib
import socket
import threading
import time
import urllib.request
import json
from dataclasses import dataclass, field
from pathlib import Path

from support import (
    Process,
    child_env,
    nats_conf,
    nats_server_path,
    port_open,
    postwire_path,
    register_monitor,
)


# --- the cluster ----------------------------------------------------------------------------


@dataclass
class NatsNode:
    name: str
    client_port: int
    cluster_port: int
    http_port: int
    argv: list
    workdir: Path
    process: Process | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    def start(self) -> None:
        if self.process:
            self.process.stop()  # exited: this closes its log files
        self.starts += 1
        suffix = f"-{self.starts}" if self.starts > 1 else ""
        self.process = Process(f"nats-{self.name}{suffix}", self.argv, self.workdir)

    def monitor(self, path: str):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=2) as r:
                return json.load(r)
        except (OSError, ValueError):
            return None


def cluster(workdir: Path, ports) -> list[NatsNode]:
    """Three clustered nats-servers (durable: sync_interval always), not yet started."""
    routes = ",".join(f"nats://127.0.0.1:{c}" for _, c, _ in ports)
    conf = str(nats_conf(workdir))
    nodes = []
    for i, (client, cl, http) in enumerate(ports, start=1):
        name = f"n{i}"
        store = workdir / f"nats-{name}"
        store.mkdir(exist_ok=True)
        argv = [nats_server_path(), "-c", conf, "-js", "-a", "127.0.0.1", "-p", str(client),
                "-m", str(http), "-sd", str(store), "--server_name", name,
                "--cluster_name", "postwire-soak", "--cluster", f"nats://127.0.0.1:{cl}",
                "--routes", routes]
        register_monitor(f"nats://127.0.0.1:{client}", f"http://127.0.0.1:{http}")
        nodes.append(NatsNode(name, client, cl, http, argv, workdir))
    return nodes


def cluster_ready(nodes: list[NatsNode]) -> bool:
    live = [n for n in nodes if n.process and n.process.alive()]
    meta = [(n.monitor("/jsz") or {}).get("meta_cluster") or {} for n in live]
    return bool(live) and all(n.monitor("/healthz") == {"status": "ok"} for n in live) and all(
        m.get("leader") for m in meta)


# --- the roles, supervised ------------------------------------------------------------------


@dataclass
class Role:
    """One postwire role process, restarted when it exits (as systemd or compose would)."""
    name: str
    role: str
    config: Path
    workdir: Path
    process: Process | None = None
    starts: int = 0
    kills: int = 0
    first_stats: dict | None = None
    before_kill: list = field(default_factory=list)  # stats of each process just before kill -9
    history: list = field(default_factory=list)  # every process, for the logs

    def start(self) -> None:
        if self.process:
            self.process.stop()  # exited: this closes its log files
        self.starts += 1
        suffix = f"-{self.starts}" if self.starts > 1 else ""
        self.process = Process(f"{self.name}{suffix}", [postwire_path(), self.role, "--config",
                                                          str(self.config)],
                               self.workdir, env=child_env(RUST_LOG="info"))
        self.history.append(self.process)

    def kill9(self) -> None:
        if self.process and self.process.alive():
            self.before_kill.append(proc_stats(self.process.pid))
            self.process.proc.send_signal(signal.SIGKILL)
            self.process.proc.wait(timeout=10)
            self.kills += 1


def proc_stats(pid: int) -> dict:
    """RSS (KiB) and open file descriptors of a live process, from /proc."""
    try:
        rss = next(int(line.split()[1]) for line in open(f"/proc/{pid}/status")
                   if line.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return {"rss_kib": rss, "fds": fds}
    except (OSError, StopIteration, ValueError):
        return {}


class Supervisor(threading.Thread):
    """Restarts roles and NATS nodes that exited (a killed one comes back after `delay`)."""

    def __init__(self, roles: list[Role], nodes: list[NatsNode], delay: float = 1.0):
        super().__init__(name="supervisor", daemon=True)
        self.roles, self.nodes, self.delay = roles, nodes, delay
        self.stop_event = threading.Event()
        self.paused: set[str] = set()  # names held down on purpose (a NATS node for a while)
        self.restarts = 0

    def run(self) -> None:
        while not self.stop_event.wait(0.2):
            for r in self.roles:
                if r.process and not r.process.alive():
                    time.sleep(self.delay)
                    r.start()
                    self.restarts += 1
            for n in self.nodes:
                if n.name not in self.paused and n.process and not n.process.alive():
                    n.start()
                    self.restarts += 1


# --- the senders ------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the senders did, per mail number."""
    run_id: str
    accepted: dict = field(default_factory=dict)   # n -> count of 250s
    uncertain: dict = field(default_factory=dict)  # n -> sends that may have been stored
    refused: dict = field(default_factory=dict)    # n -> 5xx answer
    retries: int = 0
    answers: dict = field(default_factory=dict)    # "code detail" -> count
    lock: threading.Lock = field(default_factory=threading.Lock)

    def subject(self, n: int) -> str:
        return f"soak {self.run_id} #{n}"

    def note(self, what: str) -> None:
        with self.lock:
            self.answers[what] = self.answers.get(what, 0) + 1


def send_once(port: int, ledger: Ledger, n: int) -> str:
    """One SMTP transaction for mail `n`: 'ok', 'retry' (4xx or connection trouble) or
    'refused' (5xx). Records uncertain hand-overs."""
    msg = (f"From: Soak <soak@example.com>\r\nTo: support@acme.test\r\n"
           f"Subject: {ledger.subject(n)}\r\nMessage-ID: <{ledger.run_id}.{n}@example.com>\r\n"
           f"\r\nmessage {n}\r\n").encode()
    handed_over = False
    try:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as c:
            c.ehlo()
            for cmd in (lambda: c.mail("soak@example.com"), lambda: c.rcpt("support@acme.test")):
                code, text = cmd()
                if code != 250:
                    ledger.note(f"{code} {text[:40]!r}")
                    return "retry" if 400 <= code < 500 else "refused"
            handed_over = True
            code, text = c.data(msg)
            if code == 250:
                with ledger.lock:
                    ledger.accepted[n] = ledger.accepted.get(n, 0) + 1
                return "ok"
            raise smtplib.SMTPResponseException(code, text)
    except smtplib.SMTPResponseException as e:
        ledger.note(f"{e.smtp_code} {e.smtp_error[:40]!r}")
        if e.smtp_code >= 500:
            with ledger.lock:
                ledger.refused[n] = e.smtp_code
            return "refused"
    except (smtplib.SMTPException, OSError) as e:
        ledger.note(type(e).__name__)
    if handed_over:
        with ledger.lock:
            ledger.uncertain[n] = ledger.uncertain.get(n, 0) + 1
    return "retry"


def sender(port: int, ledger: Ledger, numbers, pause: float, stop: threading.Event) -> None:
    """Sends each number until it is accepted or refused, retrying with backoff (0.5 s doubling
    to 8 s) as an MTA does; `pause` between mails."""
    for n in numbers:
        if stop.is_set():
            return
        wait = 0.5
        while not stop.is_set():
            r = send_once(port, ledger, n)
            if r != "retry":
                break
            with ledger.lock:
                ledger.retries += 1
            time.sleep(wait)
            wait = min(wait * 2, 8.0)
        time.sleep(pause)


# --- troublemakers ----------------------------------------------------------------------------


@dataclass
class Trouble:
    slow_cut: int = 0        # trickling sessions the server closed with 421 4.4.2
    slow_other: int = 0      # trickling sessions that ended otherwise (ingest killed …)
    malformed: int = 0       # malformed sessions run
    malformed_answers: dict = field(default_factory=dict)


def trickle(port: int, t: Trouble, in_data: bool, limit: float = 60.0) -> None:
    """One byte every 0.5 s until the server closes (it must, at its deadline)."""
    got = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.settimeout(0.5)
            if in_data:
                s.sendall(b"EHLO slow.test\r\nMAIL FROM:<a@example.com>\r\n"
                          b"RCPT TO:<support@acme.test>\r\nDATA\r\n")
            end = time.monotonic() + limit
            while time.monotonic() < end:
                try:
                    s.sendall(b"x")
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                except socket.timeout:
                    continue
    except OSError:
        pass
    if b"421 4.4.2" in got:
        t.slow_cut += 1
    else:
        t.slow_other += 1


MALFORMED = [
    b"\x00\xff\xfe garbage \r\n" * 3,
    b"MAIL FROM:<early@example.com>\r\n",
    b"EHLO x\nMAIL FROM:<a@example.com>\n",
    b"EHLO x\r\n" + b"A" * 10_000 + b"\r\n",
    b"EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<nobody@acme.test>\r\n",
    b"EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<support@acme.test>\r\nDATA\r\n"
    b"Subject: smuggle\r\n\r\nx\n.\nMAIL FROM:<b@example.com>\r\n",  # closed mid-DATA
    bytes(random.Random(7).randrange(256) for _ in range(2048)),
]


def malformed(port: int, t: Trouble, i: int) -> None:
    payload = MALFORMED[i % len(MALFORMED)]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.settimeout(5)
            s.recv(512)
            s.sendall(payload)
            time.sleep(0.2)
            answer = s.recv(4096)[:3].decode(errors="replace") or "closed"
    except OSError as e:
        answer = type(e).__name__
    t.malformed += 1
    t.malformed_answers[answer] = t.malformed_answers.get(answer, 0) + 1


def troublemaker(port: int, t: Trouble, stop: threading.Event, every: float) -> None:
    i = 0
    while not stop.wait(every):
        threading.Thread(target=trickle, args=(port, t, i % 2 == 1), daemon=True).start()
        malformed(port, t, i)
        i += 1


def wait_port(port: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if port_open(port):
            return True
        time.sleep(0.1)
    return False
