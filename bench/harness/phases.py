"""One measurement each: throughput (+ CPU per message), latency at a given rate, peak RSS
for one large message, and a perf profile of postwire's roles."""

from __future__ import annotations

import signal
import smtplib
import statistics
import subprocess
import time
from pathlib import Path

from . import load
from .procs import cpu_snapshot, loadavg, reset_peak_rss, status_kib
from .receiver import Nginx
from .systems import System


# Measured, but not charged to the system: the webhook receiver, and the S3 server postwire
# stores in (infrastructure, like MinIO in compose.yaml).
APART = ("receiver (nginx)", "storage (s3s-fs)")


def warm_up(system: System, nginx: Nginx, msg_file: Path, n: int, sessions: int,
            timeout: float = 300) -> None:
    """As many mails as the measured run, at its concurrency (a different message, so no
    system can take the measured mails for retries of these): a fresh Node or Python process
    spends its first thousands of mails compiling and filling caches, every system alike."""
    start = nginx.mark()
    load.smtp_source(system.port, msg_file, n, sessions)
    hits = nginx.wait_for(start, n, timeout=timeout, idle=30)
    if len(hits) < n:
        raise RuntimeError(f"{system.name}: only {len(hits)} of {n} warm-up mails arrived")


def once(hits: list, count: int) -> dict:
    """Did every mail of a run arrive exactly once? smtp-source numbers the recipients
    1..count; the receiver logs each request's number (the peers' X-Rcpt-To header,
    postwire's payload)."""
    seen: dict[int, int] = {}
    for h in hits:
        if h.rcpt is not None:
            seen[h.rcpt] = seen.get(h.rcpt, 0) + 1
    return {
        "unnumbered": sum(1 for h in hits if h.rcpt is None),
        "lost": sum(1 for n in range(1, count + 1) if n not in seen),
        "duplicated": sum(1 for c in seen.values() if c > 1),
        "extra_requests": sum(c - 1 for c in seen.values() if c > 1),
    }


def nats_per_mail(before: dict, after: dict, mails: int) -> dict:
    """nats-server's counters over a run, per mail delivered."""
    m = max(mails, 1)
    writes = {s: (after["streams"].get(s, 0) - before["streams"].get(s, 0)) / m
              for s in after["streams"]}
    return {
        "ops_per_mail": (after["in_msgs"] - before["in_msgs"]) / m,
        "stream_writes_per_mail": {s: round(v, 3) for s, v in sorted(writes.items()) if v},
    }


def throughput(system: System, nginx: Nginx, msg_file: Path, count: int, sessions: int,
               timeout: float) -> dict:
    """`count` messages from smtp-source over `sessions` sessions; the time from the start
    to the last request at the receiver, and the CPU each process group used meanwhile."""
    groups = {**system.groups(), "receiver (nginx)": [nginx.proc.pid]}
    start = nginx.mark()
    load0 = loadavg()
    cpu0 = cpu_snapshot(groups)
    counters = getattr(system, "nats_counters", None)
    nats0 = counters() if counters else None
    t0 = time.time()
    src = load.smtp_source(system.port, msg_file, count, sessions)
    t_sent = time.time()
    hits = nginx.wait_for(start, count, timeout=timeout, idle=min(60, timeout))
    cpu1 = cpu_snapshot(groups)
    time.sleep(1)  # the acks and audit records that follow the last POST; a second POST
    nats1 = counters() if counters else None
    hits = nginx.wait_for(start, count, timeout=0)
    arrived = once(hits, count)
    delivered = len(hits) - arrived["extra_requests"]
    t_last = max((h.at for h in hits), default=t_sent)
    bad = sum(1 for h in hits if h.status != 200)
    cpu_ms = {g: (cpu1[g] - cpu0[g]) * 1e3 / max(delivered, 1) for g in groups}
    return {
        "messages": count,
        "delivered": delivered,
        "non_200": bad,
        "smtp_source_rc": src.returncode,
        "smtp_source_err": src.stderr[-500:],
        "accept_seconds": t_sent - t0,
        "accept_rate": count / max(t_sent - t0, 1e-9),
        "seconds": t_last - t0,
        "rate": delivered / max(t_last - t0, 1e-9),
        "cpu_ms_per_msg": cpu_ms,
        "cpu_ms_per_msg_total": sum(v for g, v in cpu_ms.items() if g not in APART),
        "loadavg_before": load0,
        "loadavg_after": loadavg(),
        "once": arrived,
        "nats": nats_per_mail(nats0, nats1, delivered) if nats0 else None,
    }


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round((len(s) - 1) * p))]


def latency(system: System, nginx: Nginx, base: bytes, rate: float, seconds: float,
            sessions: int, first: int) -> dict:
    """Paced load at `rate`/s; latency = receiver's $msec - end of DATA, per message."""
    start = nginx.mark()
    load0 = loadavg()
    sent = load.paced(system.port, rate, seconds, sessions, base, first)
    ok = {s.n: s for s in sent if s.code == 250}
    hits = nginx.wait_for(start, len(ok), timeout=60, idle=15)
    lat = [(h.at - ok[h.probe].end_of_data) * 1e3 for h in hits if h.probe in ok]
    smtp = [(s.replied - s.end_of_data) * 1e3 for s in ok.values()]
    span = (max(s.replied for s in sent) - min(s.end_of_data for s in sent)) if sent else 1
    return {
        "target_rate": rate,
        "sent": len(sent),
        "accepted": len(ok),
        "refused": len(sent) - len(ok),
        "delivered": len(lat),
        "achieved_rate": len(ok) / max(span, 1e-9),
        "p50_ms": _pct(lat, 0.5),
        "p90_ms": _pct(lat, 0.9),
        "p99_ms": _pct(lat, 0.99),
        "max_ms": max(lat) if lat else float("nan"),
        "mean_ms": statistics.fmean(lat) if lat else float("nan"),
        "smtp_reply_p50_ms": _pct(smtp, 0.5),
        "smtp_reply_p99_ms": _pct(smtp, 0.99),
        "samples_ms": sorted(lat),
        "loadavg_before": load0,
        "loadavg_after": loadavg(),
    }


def peak_rss(system, nginx: Nginx, message: bytes, timeout: float = 300) -> dict:
    """Sends one large message; per process: VmHWM after - VmRSS before (peak reset)."""
    pids = system.pids()
    before = {}
    for name, pid in pids.items():
        reset_peak_rss(pid)
        before[name] = status_kib(pid, "VmRSS")
    start = nginx.mark()
    t0 = time.time()
    with smtplib.SMTP("127.0.0.1", system.port, local_hostname=load.HELO, timeout=300) as c:
        c.sendmail(load.MAIL_FROM, [load.RCPT], message)
    accepted = time.time() - t0
    hits = nginx.wait_for(start, 1, timeout=timeout)
    time.sleep(1)
    growth = {n: (status_kib(p, "VmHWM") - before[n]) / 1024 for n, p in pids.items()}
    return {
        "message_bytes": len(message),
        "delivered": len(hits),
        "accept_seconds": accepted,
        "delivered_seconds": (hits[0].at - t0) if hits else None,
        "request_bytes": hits[0].size if hits else None,
        "rss_before_mib": {n: v / 1024 for n, v in before.items()},
        "peak_growth_mib": growth,
        "peak_growth_mib_total": sum(growth.values()),
        "loadavg": loadavg(),
    }


def perf_profile(system, nginx: Nginx, msg_file: Path, count: int, sessions: int,
                 out: Path) -> Path | None:
    """Records postwire's roles with perf (DWARF call graphs) while `count` messages pass."""
    pids = ",".join(str(p) for p in system.pids().values())
    rec = subprocess.Popen(["perf", "record", "-q", "-F", "499", "--call-graph", "dwarf,16384",
                            "-p", pids, "-o", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1)
    if rec.poll() is not None:
        return None
    start = nginx.mark()
    load.smtp_source(system.port, msg_file, count, sessions)
    nginx.wait_for(start, count, timeout=300, idle=30)
    rec.send_signal(signal.SIGINT)
    rec.wait(60)
    return out if out.exists() else None
