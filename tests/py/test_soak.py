"""Soak and chaos (issue #18): the roles as separate processes on a three-node JetStream
cluster, a paced load of unique numbered mails from several SMTP clients that retry 4xx and
dropped connections, a receiver that fails for a while, slow and malformed sessions mixed in,
and kill -9 of each role and of one NATS node at random times (each comes back, as under a
supervisor). At the end: nothing accepted is lost, nothing is delivered under two webhook-ids.

`make test` runs it for 60 s; `make soak` for POSTWIRE_SOAK_SECS (default 600), printing the
report (also written as JSON to POSTWIRE_SOAK_REPORT when set). See docs/operations.md."""

from __future__ import annotations

import itertools
import collections
import json
import os
import random
import signal
import subprocess
import threading
import time
import uuid

import pytest

from soak_harness import (
    Ledger, Role, Supervisor, Trouble, cluster, cluster_ready, proc_stats, sender,
    troublemaker, wait_port,
)
from support import attach_logs, child_env, dev_config, free_port, postwire_path, wait_idle, wait_until

SOAK_SECS = float(os.environ.get("POSTWIRE_SOAK_SECS", "60"))
SENDERS = int(os.environ.get("POSTWIRE_SOAK_SENDERS", "3"))
PAUSE = float(os.environ.get("POSTWIRE_SOAK_PAUSE", "0.2"))  # per sender, between mails
SEED = int(os.environ.get("POSTWIRE_SOAK_SEED", str(random.randrange(1 << 30))))


def chaos_plan(rng: random.Random, roles, nodes) -> list[tuple[float, str, object]]:
    """(at seconds, what, target): each role and one NATS node killed once per round, at
    random times in the first 80 % of the run; one round per 150 s (at least one)."""
    plan = []
    rounds = max(1, int(SOAK_SECS // 150))
    for r in range(rounds):
        lo, hi = SOAK_SECS * (0.05 + 0.75 * r / rounds), SOAK_SECS * (0.05 + 0.75 * (r + 1) / rounds)
        for role in roles:
            plan.append((rng.uniform(lo, hi), "kill", role))
        plan.append((rng.uniform(lo, hi), "nats", rng.choice(nodes)))
    return sorted(plan, key=lambda p: p[0])


@pytest.mark.timeout(int(SOAK_SECS) + 900)
def test_soak_loses_nothing_and_delivers_nothing_twice(request, tmp_path, receiver, capsys):
    rng = random.Random(SEED)
    nodes = cluster(tmp_path, [(free_port(), free_port(), free_port()) for _ in range(3)])
    smtp_port = free_port()
    roles: list[Role] = []
    sup = Supervisor(roles, nodes)
    try:
        for n in nodes:
            n.start()
            attach_logs(request, n.process)
        wait_until(lambda: cluster_ready(nodes), 60, "the NATS cluster was not ready")
        servers = ",".join(n.url for n in nodes)
        config = tmp_path / "postwire.toml"
        config.write_text(dev_config(
            servers, smtp_port, receiver.url("/hook"), extra_nats="stream_replicas = 3",
            extra_delivery="ack_wait_secs = 10",
            extra_smtp="command_timeout_secs = 5\ndata_timeout_secs = 5",
            retry_schedule=("200ms", "1s", "2s", "5s", "10s", "20s", "30s", "60s")))
        for name, role in [("ingest", "ingest"), ("worker-1", "worker"), ("worker-2", "worker"),
                           ("deliver", "deliver")]:
            roles.append(Role(f"postwire-{name}", role, config, tmp_path))
        # The first start creates the R3 streams; a role that could not reach JetStream in
        # time exits 1 and the supervisor starts it again.
        for r in roles:
            r.start()
            attach_logs(request, r.process)
        sup.start()
        wait_until(lambda: wait_port(smtp_port, 1), 120, "ingest did not listen")
        wait_until(lambda: all("is running" in r.process.stderr() for r in roles[1:]), 120,
                   "the workers did not start")
        for r in roles:
            r.first_stats = proc_stats(r.process.pid)

        ledger = Ledger(uuid.uuid4().hex[:10])
        trouble = Trouble()
        stop = threading.Event()
        threads = [threading.Thread(target=sender, daemon=True,
                                    args=(smtp_port, ledger, itertools.count(k, SENDERS), PAUSE, stop))
                   for k in range(SENDERS)]
        threads.append(threading.Thread(target=troublemaker, daemon=True,
                                        args=(smtp_port, trouble, stop, 2.0)))
        for t in threads:
            t.start()
        started = time.monotonic()
        plan = chaos_plan(rng, roles, nodes)
        events = []
        fail_window = (SOAK_SECS * 0.4, SOAK_SECS * 0.5)
        nats_down: list = []  # (node, until)
        while (now := time.monotonic() - started) < SOAK_SECS:
            receiver.status = 503 if fail_window[0] <= now < fail_window[1] else 204
            while plan and plan[0][0] <= now:
                _, what, target = plan.pop(0)
                if what == "kill":
                    target.kill9()
                    events.append(f"{now:6.1f}s kill -9 {target.name}")
                elif not nats_down:
                    sup.paused.add(target.name)
                    target.process.proc.send_signal(signal.SIGKILL)
                    nats_down.append((target, now + rng.uniform(5, 15)))
                    events.append(f"{now:6.1f}s kill -9 nats {target.name}")
            for node, until in list(nats_down):
                if now >= until:
                    sup.paused.discard(node.name)
                    nats_down.remove((node, until))
                    events.append(f"{now:6.1f}s nats {node.name} back")
            time.sleep(0.1)
        stop.set()
        receiver.status = 204
        for node, _ in nats_down:
            sup.paused.discard(node.name)
        for t in threads[:SENDERS]:
            t.join(timeout=120)
        sent = len(set(ledger.accepted) | set(ledger.uncertain) | set(ledger.refused))

        def delivered() -> dict[int, set[str]]:
            prefix = f"soak {ledger.run_id} #"
            seen: dict[int, set[str]] = {}
            with receiver.cond:
                reqs = list(receiver.requests)
            for r in reqs:
                subject = r.json()["message"]["subject"]
                assert subject.startswith(prefix), f"a delivery nobody sent: {subject!r}"
                seen.setdefault(int(subject[len(prefix):]), set()).add(r.headers["webhook-id"])
            return seen

        wait_until(lambda: cluster_ready(nodes) and all(n.process.alive() for n in nodes), 120,
                   "the NATS cluster did not recover")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not set(ledger.accepted) <= delivered().keys():
            time.sleep(0.5)
        wait_idle([n.http_port for n in nodes], timeout=180)
        seen = delivered()
        drained_at = time.monotonic() - started
        dlq = subprocess.run([postwire_path(), "dlq", "list", "--json", "--config", str(config)],
                             capture_output=True, text=True, timeout=60, env=child_env())
        entries = json.loads(dlq.stdout) if dlq.returncode == 0 and dlq.stdout.strip() else None
        dead = len(entries) if entries is not None else -1
        # Why mail went to the dead letter, so that a failing run explains itself.
        dead_reasons = collections.Counter(
            f"{e.get('route')} {e.get('attempts')} attempts, {e.get('last_status')}: "
            f"{str(e.get('last_error'))[:160]}" for e in (entries or []))
        lost = sorted(n for n in ledger.accepted if n not in seen)
        double = sorted(n for n, ids in seen.items()
                        if len(ids) > ledger.accepted.get(n, 0) + ledger.uncertain.get(n, 0))
        unexplained = sorted(n for n in seen if n not in ledger.accepted and n not in ledger.uncertain)
        with receiver.cond:
            posts = len(receiver.requests)
            ok_ids = [r.headers["webhook-id"] for r in receiver.requests if r.status < 300]
        ids = sum(len(v) for v in seen.values())
        stats = {r.name: {"start": r.first_stats, "before_kill": r.before_kill,
                          "end": proc_stats(r.process.pid), "kills": r.kills, "starts": r.starts}
                 for r in roles}
        stats.update({f"nats-{n.name}": {"end": proc_stats(n.process.pid), "starts": n.starts}
                      for n in nodes})
        report = {
            "seconds": SOAK_SECS, "seed": SEED, "senders": SENDERS, "pause_s": PAUSE,
            "mails_sent": sent, "accepted": len(ledger.accepted),
            "accepted_twice": sum(1 for c in ledger.accepted.values() if c > 1),
            "uncertain_sends": sum(ledger.uncertain.values()), "refused_5xx": len(ledger.refused),
            "smtp_retries": ledger.retries, "delivered": len(seen), "lost": len(lost),
            "double_delivered": len(double), "unexplained": len(unexplained),
            "repeated_posts": posts - ids, "posts": posts,
            "repeated_after_2xx": len(ok_ids) - len(set(ok_ids)), "dlq_entries": dead,
            "dlq_reasons": dict(dead_reasons.most_common(10)),
            "slow_sessions_cut": trouble.slow_cut, "slow_sessions_other": trouble.slow_other,
            "malformed_sessions": trouble.malformed, "malformed_answers": trouble.malformed_answers,
            "answers_other_than_250": ledger.answers, "restarts": sup.restarts,
            "drained_after_s": round(drained_at, 1), "events": events, "processes": stats,
        }
        with capsys.disabled():
            print("\nsoak report:\n" + json.dumps(report, indent=2))
        if os.environ.get("POSTWIRE_SOAK_REPORT"):
            with open(os.environ["POSTWIRE_SOAK_REPORT"], "w") as f:
                json.dump(report, f, indent=2)
        assert not lost, f"accepted (250) but never delivered: {lost[:50]}"
        assert not double, f"delivered under more webhook-ids than sends: {double[:50]}"
        assert not unexplained, f"delivered but never handed over: {unexplained[:50]}"
        assert not ledger.refused, f"5xx answers to valid mail: {ledger.refused}"
        assert len(ledger.accepted) > 0 and trouble.slow_cut > 0, report
    finally:
        sup.stop_event.set()
        for r in roles:
            if r.process:
                r.process.stop(signal.SIGINT)
        for n in nodes:
            if n.process:
                n.process.stop(signal.SIGTERM)
