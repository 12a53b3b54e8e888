"""Reads `perf script` output of a postwire profile: where each role's CPU goes, by stage
(the innermost postwire frame of each sample) and by function (self time)."""

from __future__ import annotations

import re
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

# Innermost match wins; checked in this order on each frame.
CATEGORIES = [
    ("verify (SPF/DKIM/DMARC/ARC/iprev)", re.compile(r"postwire_stages::verify|mail_auth::")),
    ("parse + sanitise", re.compile(r"postwire_stages::parse|mail_parser::|ammonia::|html5ever")),
    ("store (fs)", re.compile(r"postwire_stages::store|object_store::")),
    ("transform (wasm)", re.compile(r"postwire_stages::transform|wasmtime")),
    ("prepare (payload JSON)", re.compile(r"postwire_stages::prepare")),
    ("sign", re.compile(r"postwire_stages::deliver::sign|postwire_sign::")),
    ("HTTP client", re.compile(r"reqwest::|hyper::|hyper_util::|h2::")),
    ("deliver (other)", re.compile(r"postwire_stages::deliver")),
    ("SMTP session", re.compile(r"postwire_ingest::")),
    ("NATS client", re.compile(r"async_nats::")),
    ("JSON (serde)", re.compile(r"serde_json::")),
    ("tokio runtime", re.compile(r"tokio::")),
]
CLEAN = re.compile(r"::h[0-9a-f]{16}$")


def _name(sym: str) -> str:
    return CLEAN.sub("", sym)


def analyse(perf_data: Path, roles: dict[int, str]) -> dict:
    """`roles`: pid -> role name. Returns {role: {"samples", "stages": {..%}, "top": [...]}}."""
    out = subprocess.run(["perf", "script", "-i", str(perf_data), "-F", "pid,ip,sym", "--no-inline"],
                         capture_output=True, text=True, errors="replace", timeout=900).stdout
    stages: dict[str, Counter] = defaultdict(Counter)
    selfs: dict[str, Counter] = defaultdict(Counter)
    samples: Counter = Counter()
    role, frames = None, []

    def flush():
        if role is None:
            return
        samples[role] += 1
        selfs[role][_name(frames[0]) if frames else "[unknown]"] += 1
        for frame in frames:  # leaf first: the innermost match
            for cat, rx in CATEGORIES:
                if rx.search(frame):
                    stages[role][cat] += 1
                    return
        stages[role]["other (kernel, libc, allocator)"] += 1

    for line in out.splitlines():
        if not line.strip():
            flush()
            role, frames = None, []
        elif not line.startswith((" ", "\t")):
            flush()
            frames = []
            pid = int(line.split()[0]) if line.split()[0].isdigit() else -1
            role = roles.get(pid, f"pid {pid}")
        else:
            parts = line.strip().split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else parts[0])
    flush()
    result = {}
    for r, n in samples.items():
        result[r] = {
            "samples": n,
            "stages": {k: 100 * v / n for k, v in stages[r].most_common()},
            "top": [(k, 100 * v / n) for k, v in selfs[r].most_common(12)],
        }
    return result
