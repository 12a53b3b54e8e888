"""The targets of issue 17 (met / missed, from one run's results), and the sections on what
nats-server counted per mail and on instructions per mail (callgrind)."""

from __future__ import annotations

PEERS = ("haraka", "aiosmtpd")


def _e2e(res, kind, size):
    return res.get("e2e", {}).get(f"{kind}/{size}")


def _rate(r) -> float:
    return r["throughput"]["rate"] if r else 0.0


def _fastest_peer(res, size):
    rows = [(k, _e2e(res, k, size)) for k in PEERS]
    rows = [(k, r) for k, r in rows if r]
    return max(rows, key=lambda kr: _rate(kr[1]), default=(None, None))


def _ok(cond: bool) -> str:
    return "met" if cond else "missed"


def _postwire_rows(res, size):
    """The postwire rows of a size: separate roles, and all roles in one process."""
    return [(label, r) for label, r in (("separate roles", _e2e(res, "postwire", size)),
                                        ("one process", _e2e(res, "postwire-single", size)))
            if r]


def targets(res: dict) -> list[tuple[str, str, str]]:
    rows = []
    sizes = res["config"]["sizes"]
    small, large = min(sizes), max(sizes)
    for size, factor in ((small, 2.0), (large, 1.5)):
        peer, pr = _fastest_peer(res, size)
        for label, pw in _postwire_rows(res, size):
            if pr:
                ratio = _rate(pw) / max(_rate(pr), 1e-9)
                rows.append((f"{size // 1024} KB throughput ≥ {factor}× the fastest raw-relay "
                             f"peer ({label})",
                             f"{ratio:.2f}× ({_rate(pw):,.0f} vs {peer} {_rate(pr):,.0f}/s)",
                             _ok(ratio >= factor)))
    for label, pw in _postwire_rows(res, small):
        t = pw["throughput"]
        cpu = t["cpu_ms_per_msg_total"]
        rows.append((f"CPU per mail, postwire + nats-server, 2 KB ≤ 0.5 ms ({label})",
                     f"{cpu:.3f} ms", _ok(cpu <= 0.5)))
        if t.get("nats"):
            ops = t["nats"]["ops_per_mail"]
            rows.append((f"JetStream operations per mail ≤ 4 ({label})", f"{ops:.2f}",
                         _ok(ops <= 4)))
        p99 = pw["latency"]["p99_ms"]
        rows.append((f"p99 end of DATA → webhook ≤ 10 ms at half of max throughput, 2 KB ({label})",
                     f"{p99:.1f} ms at {pw['latency']['achieved_rate']:,.0f}/s", _ok(p99 <= 10)))
    rss = res.get("rss")
    if rss:
        g = rss["peak_growth_mib_total"]
        rows.append(("40 MiB mail: peak RSS growth, all processes ≤ 64 MiB", f"{g:.0f} MiB",
                     _ok(g <= 64)))
    limits = {"rust": 40, "c": 40, "python": 1500, "js": 1000}
    for p in (res.get("wasm") or {}).get("plugins", []):
        limit = limits.get(p["lang"], 1500)
        rows.append((f"Plugin {p['plugin']} ({p['lang']}), per call ≤ {limit} µs",
                     f"{p['call_mean_us']:.0f} µs ({p['call_cpu_us']:.0f} µs CPU)",
                     "met" if p["call_mean_us"] <= limit else
                     ("met in CPU time" if p["call_cpu_us"] <= limit else "missed")))
    plugins = res.get("plugins") or {}
    base, redact = plugins.get("(none)"), plugins.get("redact")
    if base and redact:
        added = (redact["cpu_ms_per_msg"].get("process", 0)
                 - base["cpu_ms_per_msg"].get("process", 0))
        rows.append(("Rust plugin (redact): added worker CPU per mail in the pipeline ≤ 0.1 ms",
                     f"{added:.3f} ms", _ok(added <= 0.1)))
    runs = [r["throughput"] for r in res.get("e2e", {}).values() if "once" in r["throughput"]]
    if runs:
        lost = sum(t["once"]["lost"] for t in runs)
        dup = sum(t["once"]["duplicated"] for t in runs)
        rows.append(("Nothing lost or duplicated at saturation (every throughput run)",
                     f"{lost} lost, {dup} duplicated in {len(runs)} runs",
                     _ok(lost == 0 and dup == 0)))
    return rows


def nats_section(w, res, size_name) -> None:
    rows = [(r["system"], r["size"], r["throughput"]["nats"])
            for r in res.get("e2e", {}).values() if r["throughput"].get("nats")]
    if not rows:
        return
    w("### JetStream operations per mail\n")
    w("Counted by nats-server over the throughput run (`/varz` and `/jsz`, before and after), "
      "divided by the mails delivered. *Operations* = messages nats-server received from "
      "postwire's clients: every publish, acknowledgement, KV or API request and pull "
      "request is one. *Stream writes* = how far each stream's last sequence moved.\n")
    w("| system | size | operations per mail | stream writes per mail |\n|---|---|---:|---|")
    for system, size, n in rows:
        writes = ", ".join(f"{k} {v:g}" for k, v in n["stream_writes_per_mail"].items())
        w(f"| {system} | {size_name(size)} | {n['ops_per_mail']:.2f} | {writes} |")
    w("")


def callgrind_section(w, res) -> None:
    cg = res.get("callgrind")
    if not cg:
        return
    w("### Instructions per mail (callgrind)\n")
    w(f"Each role under `valgrind --tool=callgrind`, counters zeroed after a warm-up, "
      f"{cg['mails']} 2 KB mails from 4 sessions, counters dumped "
      "(`bench/harness/callgrind.py`). Instructions do not depend on the load of the machine: "
      "a change can be judged by this figure on a busy machine. Idle wake-ups during those "
      f"{cg['seconds']:.0f} s are included.\n")
    w("| role | instructions per mail |\n|---|---:|")
    for role, r in cg["roles"].items():
        w(f"| {role} | {r['per_mail'] / 1e6:.2f} M |")
    w(f"| **total** | **{cg['per_mail_total'] / 1e6:.2f} M** |\n")
    for role, r in cg["roles"].items():
        if r.get("top"):
            w(f"**{role}**, functions with the most instructions (callees included): " +
              "; ".join(f"`{x}`" for x in r["top"][:10]) + "\n")
