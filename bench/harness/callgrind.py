"""Instructions per mail of each postwire role, counted by valgrind's callgrind: a figure that
does not depend on what else the machine is doing, so a change can be judged on a busy
machine too.

Each role runs under `valgrind --tool=callgrind` (every role at once, each in its own process,
as in the throughput run). After a warm-up the counters are zeroed (`callgrind_control -z`),
`count` mails pass, and the counters are dumped (`callgrind_control -d`): the dump's total of
instructions (`Ir`), divided by the mails, is what one mail costs that role, its idle wake-ups
over those seconds included. The functions with the most instructions (callees included)
come from `callgrind_annotate`.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from . import load
from .receiver import Nginx

VALGRIND = ["valgrind", "--tool=callgrind", "--dump-instr=no", "--compress-strings=no"]
TOTALS = re.compile(r"^(?:totals|summary):\s+(\d+)", re.M)


def wrap(out_dir: Path, role: str) -> list[str]:
    return VALGRIND + [f"--callgrind-out-file={out_dir}/callgrind.{role}.%p"]


def _control(flag: str, pid: int) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], capture_output=True, timeout=120,
                   check=True)


def _dumps(out_dir: Path, role: str, pid: int) -> list[Path]:
    return sorted(out_dir.glob(f"callgrind.{role}.{pid}*"), key=lambda p: p.stat().st_mtime)


def _total(dump: Path) -> int:
    m = TOTALS.search(dump.read_text(errors="replace"))
    return int(m.group(1)) if m else 0


# Frames worth naming: postwire's stages and the libraries doing the work (the runtime's and
# std's frames wrap everything and say nothing).
NAMED = re.compile(r"postwire_\w+::|mail_auth::|mail_parser::|ammonia::|html5ever::|async_nats::"
                   r"|object_store::|reqwest::|hyper::|serde_json::|ring::|aws_lc|rsa::|sha2::")


def _top(dump: Path, n: int = 15) -> list[str]:
    """The named functions with the most instructions, their callees included."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(dump)],
                         capture_output=True, text=True, timeout=300).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+\S*?:(.+?)(?: \[.*\])?$", line)
        if m and NAMED.search(m.group(3)) and "{{closure}}" not in m.group(3):
            rows.append(f"{m.group(2)} % {m.group(3).strip()[:120]}")
            if len(rows) >= n:
                break
    return rows


def measure(system, nginx: Nginx, msg_file: Path, out_dir: Path, count: int,
            sessions: int, warm_file: Path) -> dict:
    """`system` was started with its roles wrapped by [`wrap`]."""
    roles = {name: pid for name, pid in system.pids().items() if name != "nats-server"}
    start = nginx.mark()
    load.smtp_source(system.port, warm_file, 50, 4)
    nginx.wait_for(start, 50, timeout=600, idle=120)
    time.sleep(2)
    for pid in roles.values():
        _control("-z", pid)
    start = nginx.mark()
    t0 = time.time()
    load.smtp_source(system.port, msg_file, count, sessions)
    hits = nginx.wait_for(start, count, timeout=1800, idle=300)
    seconds = time.time() - t0
    time.sleep(2)
    result = {"mails": len(hits), "seconds": seconds, "roles": {}}
    for name, pid in roles.items():
        role = name.removeprefix("postwire-").rstrip("-1234567890") or name
        before = set(_dumps(out_dir, role, pid))
        _control("-d", pid)
        new = [d for d in _dumps(out_dir, role, pid) if d not in before]
        if not new:
            continue
        total = _total(new[-1])
        result["roles"][name] = {
            "instructions": total,
            "per_mail": total / max(len(hits), 1),
            "top": _top(new[-1]),
        }
    result["per_mail_total"] = sum(r["per_mail"] for r in result["roles"].values())
    return result
