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


VARIANTS = (("defaults", "postwire"), ("every delivery through OUTBOX", "postwire-outbox"),
            ("one process", "postwire-single"))


def _postwire_rows(res, size):
    """The postwire rows of a size: separate roles with the defaults (the process worker makes
    the first attempt), with every delivery through OUTBOX, and every role in one process."""
    return [(label, r) for label, r in ((lb, _e2e(res, kind, size)) for lb, kind in VARIANTS)
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
            rows.append((f"JetStream operations per mail ≤ 4 ({label})", f"{ops:.3f}",
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
        added = p.get("added_cpu_per_mail_us")
        if p["lang"] == "rust" and added is not None:
            rows.append((f"Plugin {p['plugin']} (rust): added worker CPU per mail through the "
                         "transform stage (plugin-bench) ≤ 100 µs", f"{added:.0f} µs",
                         _ok(added <= 100)))
    plugins = res.get("plugins") or {}
    base, redact = plugins.get("(none)"), plugins.get("redact")
    if base and redact:
        added = (redact["cpu_ms_per_msg"].get("process", 0)
                 - base["cpu_ms_per_msg"].get("process", 0))
        rows.append(("Rust plugin (redact): added worker CPU per mail in the pipeline run ≤ 0.1 ms",
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
      "request is one. *Stream writes* = how far each stream's last sequence moved. A pull "
      "consumer asks for a batch of messages at a time: its pull requests are the fraction "
      "beyond the whole operations of each mail.\n")
    w("| system | size | operations per mail | stream writes per mail |\n|---|---|---:|---|")
    for system, size, n in rows:
        writes = ", ".join(f"{k} {v:g}" for k, v in n["stream_writes_per_mail"].items())
        w(f"| {system} | {size_name(size)} | {n['ops_per_mail']:.3f} | {writes} |")
    w("")
    sync_latency_section(w, res)
    spans_section(w, res)


def spans_section(w, res) -> None:
    s = res.get("spans")
    if not s or not s.get("parts"):
        return
    w("### Where a mail's latency goes (trace spans)\n")
    w(f"postwire with the defaults (separate roles, S3 on s3s-fs), its roles exporting their "
      f"trace spans (OTLP) to a collector of the bench, {s['mails']} paced 2 KB mails at "
      f"{s['rate']:.0f}/s (the latency run's rate); each mail's trace cut into its parts "
      "(`bench/harness/spans.py`). Exporting spans costs CPU and this is another run than the "
      "latency table's: compare the parts with each other. A stage that did not run for a mail "
      "is not shown.\n")
    w("| part of a mail's way | p50 ms | p99 ms |\n|---|---:|---:|")
    for name, r in s["parts"].items():
        w(f"| {name} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")
    w("")


def sync_latency_section(w, res) -> None:
    s = res.get("sync_latency")
    if not s:
        return
    w("### One synced write, alone\n")
    w(f"A nats-server by itself (the benchmark's config), one stream, {s['size']} B publishes "
      f"paced at {s['rate']:.0f}/s (the defaults' latency-run rate) for {s['synced']['n']} "
      "publishes, the time from each publish to its PubAck (`bench/harness/sync_latency.py`). "
      "Every mail waits for one such write before its `250`, so it is the part of the "
      "end-to-end latency that durability sets.\n")
    w("| nats-server | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|")
    for name, label in (("synced", "`sync_interval: always`"), ("unsynced", "default timer")):
        r = s[name]
        w(f"| {label} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} | "
          f"{r['max_ms']:.1f} |")
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


def capacity_section(w, res, size_name) -> None:
    """Mails per second per core of each role, from its CPU per mail, and what the model
    predicts for this machine against what the throughput and scaling runs measured."""
    small = min(res["config"]["sizes"])
    pw = _e2e(res, "postwire", small)
    if not pw:
        return
    t = pw["throughput"]
    cpu = t["cpu_ms_per_msg"]
    w("### Capacity model\n")
    w(f"From the CPU per mail of each process in the `postwire` throughput run ({size_name(small)}): "
      "a role needs `rate × ms / 1000` cores, so one core carries `1000 / ms` mails per second "
      "of it. docs/operations.md (\"Capacity\") explains how to size replicas and NATS nodes "
      "with these figures.\n")
    w("| process | CPU ms per mail | mails/s per core |\n|---|---:|---:|")
    cpu = {g: ms for g, ms in cpu.items() if g != "receiver (nginx)" and ms > 0}
    for g, ms in cpu.items():
        w(f"| {g} | {ms:.3f} | {1000 / ms:,.0f} |")
    total = sum(cpu.values())
    cores = res.get("machine_cores") or 2
    w(f"| **all (S3 server included; receiver and load generator not)** | **{total:.3f}** | "
      f"**{1000 / total:,.0f}** |\n")
    predicted = cores * 1000 / total
    w(f"On this machine's {cores} cores the model predicts at most {predicted:,.0f} mails/s if "
      f"nothing else ran; the run measured {t['rate']:,.0f}/s, with smtp-source sharing the cores "
      f"({t['rate'] / predicted:.0%} of the prediction).")
    sc = res.get("scaling") or {}
    if sc:
        w(" The scaling run: " + ", ".join(
            f"{n} worker{'s' if int(n) > 1 else ''} {sc[n]['rate']:,.0f}/s"
            for n in sorted(sc, key=int)) +
          " — on 2 cores more workers cannot add CPU, only contend for it.")
    w("")
