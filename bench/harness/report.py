"""Writes docs/benchmarks.md, its plots (docs/benchmarks/*.png) and the raw figures
(docs/benchmarks/results.json) from one run's results."""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
from pathlib import Path

from .phases import APART
from .report_durability import durability_section
from .report_targets import callgrind_section, capacity_section, nats_section, targets

SIZE_NAMES = {2048: "2 KB", 102400: "100 KB"}
# Issue 17: per plugin call, by language (µs).
PLUGIN_CALL_TARGET_US = {"rust": 40, "c": 40, "python": 1500, "js": 1000}
SYSTEM_ORDER = ["postwire", "postwire (every delivery through OUTBOX)",
                "postwire (one process)",
                "postwire (1 runtime thread per role)",
                "postwire (unsynced)", "haraka",
                "aiosmtpd+aiohttp", "postfix+pipe+curl"]


def _sh(*cmd: str) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (r.stdout or r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def size_name(size: int) -> str:
    return SIZE_NAMES.get(size, f"{size} B")


def machine() -> dict:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    mem = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1))
    osr = re.search(r'PRETTY_NAME="(.*)"', Path("/etc/os-release").read_text())
    return {
        "cpu": cpu.group(1) if cpu else "?",
        "cores": os.cpu_count(),
        "memory_gib": round(mem / 2**20, 1),
        "kernel": platform.release(),
        "os": osr.group(1) if osr else "?",
    }


def versions(root: Path, bins: dict) -> dict:
    haraka_pkg = Path(bins["haraka"]).resolve().parents[1] / "package.json"
    py = str(bins["python"])
    return {
        "postwire": f"{_sh(str(bins['postwire']), '--version')} "
                    f"(git {_sh('git', '-C', str(root), 'rev-parse', '--short', 'HEAD')}"
                    f"{', modified' if _sh('git', '-C', str(root), 'status', '--porcelain', '--untracked-files=no') else ''})",
        "rustc": _sh("rustc", "--version"),
        "nats-server": _sh(str(bins["nats"]), "--version"),
        "postfix": _sh("postconf", "-h", "mail_version"),
        "curl": _sh("curl", "--version").splitlines()[0] if _sh("curl", "--version") else "?",
        "haraka": json.loads(haraka_pkg.read_text())["version"] if haraka_pkg.exists() else "?",
        "node": _sh("node", "--version"),
        "python": _sh(py, "--version"),
        "aiosmtpd / aiohttp": _sh(py, "-c", "import aiosmtpd, aiohttp; print(aiosmtpd.__version__, '/', aiohttp.__version__)"),
        "nginx (receiver)": _sh("nginx", "-v").replace("nginx version: ", ""),
        "smtp-source": "Postfix " + _sh("postconf", "-h", "mail_version"),
    }


def f(x, nd=1) -> str:
    if x is None or x != x:  # None or NaN
        return "–"
    return f"{x:,.{nd}f}"


def ms(x) -> str:
    """A latency from $msec (millisecond resolution, read from nginx's cached clock)."""
    if x is not None and x == x and x < 1:
        return "< 1"
    return f(x)


def load_str(before, after=None) -> str:
    s = " / ".join(f"{v:.1f}" for v in before)
    return s if after is None else f"{before[0]:.1f} → {after[0]:.1f}"


# --- plots ------------------------------------------------------------------------------------

def plots(res: dict, out: Path) -> list[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    e2e = res.get("e2e", {})
    sizes = sorted({r["size"] for r in e2e.values()})
    systems = [s for s in SYSTEM_ORDER if any(r["system"] == s for r in e2e.values())]

    def get(system, size):
        return next((r for r in e2e.values() if r["system"] == system and r["size"] == size), None)

    if e2e:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        width = 0.8 / max(len(sizes), 1)
        for i, size in enumerate(sizes):
            xs = [j + i * width for j in range(len(systems))]
            tp = [(get(s, size) or {}).get("throughput", {}).get("rate", 0) for s in systems]
            axes[0].bar(xs, tp, width, label=size_name(size))
            p99 = [(get(s, size) or {}).get("latency", {}).get("p99_ms", 0) for s in systems]
            p50 = [(get(s, size) or {}).get("latency", {}).get("p50_ms", 0) for s in systems]
            axes[1].bar(xs, p99, width, label=f"p99, {size_name(size)}", alpha=0.55)
            axes[1].bar(xs, p50, width, label=f"p50, {size_name(size)}")
        for ax, title, unit in ((axes[0], "End-to-end throughput", "messages/s"),
                                (axes[1], "End of DATA → webhook, at half of max throughput", "ms")):
            ax.set_xticks([j + width * (len(sizes) - 1) / 2 for j in range(len(systems))])
            ax.set_xticklabels(systems, fontsize=8)
            ax.set_title(title, fontsize=10)
            ax.set_ylabel(unit)
            ax.legend(fontsize=7)
        axes[1].axhline(25, color="red", linestyle=":", linewidth=1)
        fig.tight_layout()
        fig.savefig(out / "e2e.png", dpi=110)
        plt.close(fig)
        made.append("e2e.png")

        have_samples = any((r.get("latency") or {}).get("samples_ms") for r in e2e.values())
        fig, ax = plt.subplots(figsize=(6, 4))
        for s in systems if have_samples else []:
            r = get(s, min(sizes))
            lat = (r or {}).get("latency", {}).get("samples_ms") or []
            if lat:
                ax.plot(lat, [(i + 1) / len(lat) for i in range(len(lat))], label=s)
        ax.set_xscale("log")
        ax.set_xlabel("end of DATA → webhook (ms, log)")
        ax.set_ylabel("fraction of messages")
        ax.set_title(f"Latency distribution, {size_name(min(sizes))}, half load", fontsize=10)
        ax.axvline(25, color="red", linestyle=":", linewidth=1)
        ax.legend(fontsize=7)
        fig.tight_layout()
        if have_samples:  # not when re-rendering from results.json (no samples there)
            fig.savefig(out / "latency-cdf.png", dpi=110)
        plt.close(fig)
        if (out / "latency-cdf.png").exists():
            made.append("latency-cdf.png")

        fig, ax = plt.subplots(figsize=(7, 4))
        bottoms = [0.0] * len(systems)
        groups = []
        for s in systems:
            for g in (get(s, min(sizes)) or {}).get("throughput", {}).get("cpu_ms_per_msg", {}):
                if g not in groups and g not in APART:
                    groups.append(g)
        for g in groups:
            vals = [(get(s, min(sizes)) or {}).get("throughput", {}).get("cpu_ms_per_msg", {})
                    .get(g, 0) for s in systems]
            ax.bar(systems, vals, bottom=bottoms, label=g)
            bottoms = [b + v for b, v in zip(bottoms, vals)]
        ax.axhline(0.5, color="red", linestyle=":", linewidth=1)
        ax.set_ylabel("CPU ms per message")
        ax.set_title(f"CPU per message by process, {size_name(min(sizes))}", fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "cpu.png", dpi=110)
        plt.close(fig)
        made.append("cpu.png")

    sc = res.get("scaling") or {}
    if sc:
        ns = sorted(sc, key=int)
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot([int(n) for n in ns], [sc[n]["rate"] for n in ns], marker="o")
        ax.set_xticks([int(n) for n in ns])
        ax.set_xlabel("process workers")
        ax.set_ylabel("messages/s end to end")
        ax.set_ylim(bottom=0)
        ax.set_title("postwire scaling (2 KB, 1 ingest, 1 deliver)", fontsize=10)
        fig.tight_layout()
        fig.savefig(out / "scaling.png", dpi=110)
        plt.close(fig)
        made.append("scaling.png")
    return made


# --- the document -----------------------------------------------------------------------------

def write(res: dict, out: Path, root: Path, bins: dict) -> None:
    pics = out / "benchmarks"
    pics.mkdir(parents=True, exist_ok=True)
    made = plots(res, pics)
    cfg = res["config"]
    mach, vers = machine(), versions(root, bins)
    res["machine_cores"] = mach["cores"]
    start_load = res["loadavg_start"]
    # The run's own processes raise the load average by its end: only what ran before it
    # started says whether the machine was shared.
    loaded = start_load[0] > 0.7
    when = datetime.datetime.fromtimestamp(res["started"]).strftime("%Y-%m-%d %H:%M")
    minutes = (res.get("finished", res["started"]) - res["started"]) / 60
    L = []
    w = L.append
    w("# Benchmarks\n")
    w(f"Generated by `make bench` on {when} in {minutes:.0f} minutes "
      f"(`bench/run.py`; raw figures in [benchmarks/results.json](benchmarks/results.json)).\n")
    if loaded:
        w(f"> **Taken under load.** Other processes were using the CPUs when this run started "
          f"(load average {load_str(start_load)} at the start, {load_str(res.get('loadavg_end', []))} "
          "at the end; each table gives the load of its runs). Throughput and latency, which "
          "are wall-clock figures, are lower and noisier than on a quiet machine, and ratios "
          "between systems are distorted by how the scheduler shared the CPUs. CPU time per "
          "message is much less affected. Rerun `make bench` on a quiet machine for the "
          "reference figures.\n")
    w("## Summary: the targets\n")
    w("| target | measured | |\n|---|---|---|")
    for t, m, ok in targets(res):
        w(f"| {t} | {m} | {'✅' if ok.startswith('met') else '❌'} {ok} |")
    w("")
    if res.get("errors"):
        w("Runs that failed: " + "; ".join(f"`{e}`" for e in res["errors"]) + "\n")

    w("## How to rerun\n")
    w("```sh\nmake bench                     # everything below, then writes this file\n"
      "BENCH_MESSAGES=5000 BENCH_SECONDS=30 make bench   # longer runs\n"
      "BENCH_PARTS=e2e BENCH_SYSTEMS=postwire,haraka make bench   # a subset\n```\n")
    w("`make bench` builds `postwire` and `plugin-bench` in release, the plugins "
      "(`make plugins`), and installs what it needs into the tools folder "
      "(`bench/setup.sh`: nginx with apt-get, Haraka from npm, a venv with aiosmtpd, aiohttp, "
      "dnslib, dkimpy, matplotlib from `bench/requirements.txt`). Postfix and `smtp-source` "
      "come from `make tools`. Settings (environment variables):\n")
    w("| variable | this run | meaning |\n|---|---|---|")
    for var, key, meaning in [
        ("BENCH_MESSAGES", "messages", "messages per throughput run, 2 KB"),
        ("BENCH_MESSAGES_LARGE", "messages_large", "messages per throughput run, 100 KB"),
        ("BENCH_SECONDS", "seconds", "length of each latency run"),
        ("BENCH_SESSIONS", "sessions", "concurrent SMTP sessions"),
        ("BENCH_SYSTEMS", "systems", "systems compared"),
        ("BENCH_SIZES", "sizes", "message sizes, bytes"),
        ("BENCH_WORKERS", "workers", "process-worker counts of the scaling run"),
        ("BENCH_PARTS", "parts", "parts to run"),
        ("BENCH_TIMEOUT", "timeout", "longest wait for one run's deliveries, s")]:
        v = cfg[key]
        w(f"| `{var}` | `{','.join(map(str, v)) if isinstance(v, list) else v}` | {meaning} |")
    w("| `BENCH_STORAGE_DIR` | `" + os.environ.get("BENCH_STORAGE_DIR", "$TMPDIR") + "` | "
      "where postwire's filesystem storage writes (a disk, not tmpfs, for realistic figures) |")
    w("")
    w("Logs of every process of a run are kept in the work folder the run prints "
      "(`/tmp/pwbench-*/logs`).\n")

    w("## Machine and versions\n")
    w("| | |\n|---|---|")
    w(f"| CPU | {mach['cpu']}, {mach['cores']} cores |")
    w(f"| memory | {mach['memory_gib']} GiB |")
    w(f"| OS, kernel | {mach['os']}, Linux {mach['kernel']} |")
    w(f"| load average (1/5/15 min) | start {load_str(start_load)}, end "
      f"{load_str(res.get('loadavg_end', start_load))} |")
    for k, v in vers.items():
        w(f"| {k} | {v} |")
    w("")

    w((root / "bench/method.md").read_text())

    e2e = res.get("e2e", {})
    if e2e:
        w("## 1. End to end: throughput and latency\n")
        if "e2e.png" in made:
            w("![throughput and latency](benchmarks/e2e.png)\n")
        w("| system | size | throughput (msg/s) | SMTP accepted (msg/s) | CPU ms/msg | "
          "latency run (msg/s) | p50 ms | p90 ms | p99 ms | max ms | load (1 min) |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for size in cfg["sizes"]:
            for s in SYSTEM_ORDER:
                r = next((r for r in e2e.values() if r["system"] == s and r["size"] == size), None)
                if not r:
                    continue
                t, lat = r["throughput"], r["latency"]
                note = "" if t["delivered"] >= t["messages"] else f" ({t['delivered']}/{t['messages']} delivered)"
                w(f"| {s} | {size_name(size)} | {f(t['rate'], 0)}{note} | {f(t['accept_rate'], 0)} | "
                  f"{t['cpu_ms_per_msg_total']:.3f} | {f(lat['achieved_rate'], 0)} | "
                  f"{ms(lat['p50_ms'])} | {ms(lat['p90_ms'])} | {ms(lat['p99_ms'])} | {ms(lat['max_ms'])} | "
                  f"{load_str(t['loadavg_before'], lat['loadavg_after'])} |")
        w("")
        if "latency-cdf.png" in made:
            w("![latency distribution](benchmarks/latency-cdf.png)\n")

        durability_section(w, e2e, cfg, f, ms, size_name)

        w("## 2. CPU per message, by process and by stage\n")
        w("CPU time (user + system, from `/proc/<pid>/stat`, children included) of each "
          "process group during the throughput run, divided by the messages delivered. "
          "postwire runs as separate processes, one per role; the receiver (nginx) is "
          "shown for scale and not counted in totals.\n")
        if "cpu.png" in made:
            w("![CPU per message](benchmarks/cpu.png)\n")
        w("| system | size | process | CPU ms/msg |\n|---|---|---|---:|")
        for size in cfg["sizes"]:
            for s in SYSTEM_ORDER:
                r = next((r for r in e2e.values() if r["system"] == s and r["size"] == size), None)
                if not r:
                    continue
                for g, v in r["throughput"]["cpu_ms_per_msg"].items():
                    w(f"| {s} | {size_name(size)} | {g} | {v:.3f} |")
                w(f"| {s} | {size_name(size)} | **total** | **{r['throughput']['cpu_ms_per_msg_total']:.3f}** |")
        w("")
        nats_section(w, res, size_name)
        capacity_section(w, res, size_name)
    prof = res.get("profile")
    if prof:
        w("### Inside postwire's processes (perf profile)\n")
        w("`perf record -F 499 --call-graph dwarf` on the role processes during a 2 KB "
          "throughput run; each sample is charged to the innermost postwire stage (or "
          "library) on its stack.\n")
        for role, p in sorted(prof.items()):
            w(f"**{role}** ({p['samples']} samples)\n")
            w("| where | share |\n|---|---:|")
            for k, v in p["stages"].items():
                w(f"| {k} | {v:.1f} % |")
            w("\nTop functions (self time): " + ", ".join(
                f"`{k[:70]}` {v:.1f} %" for k, v in p["top"][:8]) + "\n")

    callgrind_section(w, res)

    plugins = res.get("plugins") or {}
    wasm = res.get("wasm")
    if plugins or wasm:
        w("## 3. WebAssembly plugins\n")
    if plugins:
        base = plugins.get("(none)")
        w("In the pipeline: the tenant's chain holds one plugin; 2 KB messages, same "
          "load as the throughput run. Overhead = process-worker CPU minus the run without "
          "plugin.\n")
        w("| plugin | throughput (msg/s) | process worker CPU ms/msg | overhead ms/msg | total CPU ms/msg | load |")
        w("|---|---:|---:|---:|---:|---|")
        for name, t in plugins.items():
            pw = t["cpu_ms_per_msg"].get("process", 0)
            over = pw - base["cpu_ms_per_msg"].get("process", 0) if base else None
            w(f"| {name} | {f(t['rate'], 0)} | {pw:.3f} | {f(over, 3) if name != '(none)' else '–'} | "
              f"{t['cpu_ms_per_msg_total']:.3f} | {load_str(t['loadavg_before'], t['loadavg_after'])} |")
        w("")
    if wasm:
        w("The host alone (`bench/plugin-host`, release build; `" + wasm["command"] + "`): per "
          "message = a fresh store and instance from the cached `InstancePre`, the call on "
          "the event the worker builds from the run's 2 KB mail (`--eml`) with the worker's "
          "engine settings (fuel on), and the decoded result; CPU = the calling thread's CPU "
          "time. Added worker CPU = the process's CPU time per mail through the transform "
          "stage (`stage::apply` on a tokio runtime: serialising, the hop to a blocking "
          "thread, the chain, the deliveries) with the plugin minus without. "
          "Cold load = a new engine loading the plugin from the precompiled cache (read, hash, "
          f"deserialise, `InstancePre`). Load average {load_str(wasm['loadavg_before'], wasm['loadavg_after'])}.\n")
        w("| plugin | language | .wasm | per message (mean) | p50 | p99 | CPU per message | target | added worker CPU per mail | cached load (median) | max | CPU | first load |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for p in wasm["plugins"]:
            target = f"{PLUGIN_CALL_TARGET_US[p['lang']] / 1000:g} ms"
            added = p.get("added_cpu_per_mail_us")
            added = "–" if added is None else f"{added:.0f} µs"
            w(f"| {p['plugin']} | {p['lang']} | {p['wasm_bytes'] / 2**20:.1f} MiB | "
              f"{p['call_mean_us']:.0f} µs | {p['call_p50_us']:.0f} µs | {p['call_p99_us']:.0f} µs | "
              f"{p['call_cpu_us']:.0f} µs | {target} | {added} | {p['load_median_ms']:.1f} ms | "
              f"{p['load_max_ms']:.1f} ms | {p['load_cpu_ms']:.1f} ms | "
              f"{p['first_load_ms']:.0f} ms ({p['first_load_source']}) |")
        w("")

    rss = res.get("rss")
    if rss:
        w("## 4. Peak memory for a 40 MiB message\n")
        w(f"One message of {rss['message_bytes'] / 2**20:.1f} MiB (text and a 30 MiB binary "
          "attachment, base64) sent to a fresh postwire after a warm-up; per process, the "
          "peak resident set (`VmHWM`, reset with `clear_refs` before sending) minus the "
          f"resident set before. Accepted in {f(rss['accept_seconds'], 2)} s, delivered "
          f"{f(rss['delivered_seconds'], 2)} s after the start; load {load_str(rss['loadavg'])}.\n")
        w("| process | RSS before (MiB) | peak growth (MiB) |\n|---|---:|---:|")
        for n, g in rss["peak_growth_mib"].items():
            w(f"| {n} | {rss['rss_before_mib'][n]:.0f} | {g:.0f} |")
        w(f"| **total** | | **{rss['peak_growth_mib_total']:.0f}** |\n")

    sc = res.get("scaling") or {}
    if sc:
        w("## 5. Scaling with process workers\n")
        w("1 ingest, N `postwire worker`, 1 `postwire deliver`, one nats-server; 2 KB.\n")
        if "scaling.png" in made:
            w("![scaling](benchmarks/scaling.png)\n")
        w("| process workers | throughput (msg/s) | CPU ms/msg total | of which process workers | load |")
        w("|---:|---:|---:|---:|---|")
        for n in sorted(sc, key=int):
            t = sc[n]
            w(f"| {n} | {f(t['rate'], 0)} | {t['cpu_ms_per_msg_total']:.3f} | "
              f"{t['cpu_ms_per_msg'].get('process', 0):.3f} | "
              f"{load_str(t['loadavg_before'], t['loadavg_after'])} |")
        w("")

    for extra in ("bench/findings.md", "bench/ingest_memory.md", "bench/worker_memory.md"):
        if (root / extra).exists():
            w((root / extra).read_text())

    (out / "benchmarks.md").write_text("\n".join(L).rstrip() + "\n")
    slim = json.loads(json.dumps(res, default=str))
    for r in slim.get("e2e", {}).values():
        r.get("latency", {}).pop("samples_ms", None)
    slim["machine"], slim["versions"] = mach, vers
    (pics / "results.json").write_text(json.dumps(slim, indent=1) + "\n")
