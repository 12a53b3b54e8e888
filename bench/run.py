#!/usr/bin/env python3
"""`make bench`: measures postwire and its peers on this machine and writes
docs/benchmarks.md (+ plots and the raw results in docs/benchmarks/).

Settings (environment variables, defaults in brackets):
  BENCH_MESSAGES [5000]        messages per throughput run, 2 KB
  BENCH_MESSAGES_LARGE [1000]  messages per throughput run, 100 KB
  BENCH_SECONDS [20]           length of each latency run (paced at half the throughput)
  BENCH_SESSIONS [20]          concurrent SMTP sessions
  BENCH_SYSTEMS [postwire,postwire-outbox,postwire-single,postwire-1thread,postwire-unsynced,
                haraka,aiosmtpd,postfix]
                               (postwire-unsynced: nats-server's default sync timer instead of
                               sync_interval: always, to show what durability costs)
  BENCH_SIZES [2048,102400]    message sizes in bytes
  BENCH_WORKERS [1,2,4]        postwire process-worker counts for the scaling run
  BENCH_PARTS [e2e,synclat,spans,scaling,plugins,rss,profile,callgrind,wasm]
  BENCH_CALLGRIND_MESSAGES [300] mails counted under callgrind
  BENCH_TIMEOUT [180]          longest wait for one run's deliveries, seconds
  BENCH_STORAGE_DIR [$TMPDIR]   where postwire's fs storage backend writes
  BENCH_POSTWIRE_BIN, PLUGIN_BENCH_BIN [$CARGO_TARGET_DIR/release/…], POSTWIRE_NATS_SERVER,
  BENCH_OUT [docs]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "tests/py"))  # dns_server.py

from harness import callgrind, load, phases, profile, report, spans, sync_latency  # noqa: E402
from harness.procs import loadavg  # noqa: E402
from harness.receiver import Nginx  # noqa: E402
from harness.systems import (  # noqa: E402
    Aiosmtpd, Haraka, PostfixPipe, Postwire, remove_blob_dirs)


def env_list(name: str, default: str) -> list[str]:
    return [x.strip() for x in os.environ.get(name, default).split(",") if x.strip()]


TOOLS = Path(os.environ.get("POSTWIRE_TOOLS",
                            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "postwire"))
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", TOOLS / "target"))
CFG = {
    "messages": int(os.environ.get("BENCH_MESSAGES", 5000)),
    "messages_large": int(os.environ.get("BENCH_MESSAGES_LARGE", 1000)),
    "seconds": float(os.environ.get("BENCH_SECONDS", 20)),
    "sessions": int(os.environ.get("BENCH_SESSIONS", 20)),
    "systems": env_list("BENCH_SYSTEMS",
                        "postwire,postwire-outbox,postwire-single,postwire-1thread,"
                        "postwire-unsynced,haraka,aiosmtpd,postfix"),
    "sizes": [int(s) for s in env_list("BENCH_SIZES", "2048,102400")],
    "workers": [int(s) for s in env_list("BENCH_WORKERS", "1,2,4")],
    "parts": env_list("BENCH_PARTS", "e2e,synclat,spans,scaling,plugins,rss,profile,callgrind,wasm"),
    "timeout": float(os.environ.get("BENCH_TIMEOUT", 180)),
}
POSTWIRE = Path(os.environ.get("BENCH_POSTWIRE_BIN", TARGET / "release/postwire"))
PLUGIN_BENCH = Path(os.environ.get("PLUGIN_BENCH_BIN", TARGET / "release/plugin-bench"))
NATS = os.environ.get("POSTWIRE_NATS_SERVER", str(TOOLS / "venv/bin/nats-server"))
HARAKA = TOOLS / "haraka/node_modules/.bin/haraka"
S3S_FS = TOOLS / "cargo/bin/s3s-fs"
PYTHON = TOOLS / "bench-venv/bin/python"
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "docs"))
PLUGIN_CACHE = TOOLS / "bench/plugin-cache"
# The postwire rows: separate role processes with the defaults (the process worker makes each
# delivery's first attempt); the same with every delivery through OUTBOX to the deliver worker
# (`inline_attempt_ms = 0`); every role in one process (`postwire dev`); one runtime thread per
# role; and nats-server's default sync timer (what durability costs).
POSTWIRE_KINDS = {
    "postwire": {},
    "postwire-outbox": {"inline_ms": 0},
    "postwire-single": {"single": True},
    "postwire-1thread": {"threads": 1},
    "postwire-unsynced": {"durable": False},
}
PLUGINS = {"redact": "rust", "slack": "rust", "route": "rust", "triage": "python", "digest": "js",
           "stamp": "c"}


def say(*a) -> None:
    print(time.strftime("%H:%M:%S"), *a, flush=True)


class Bench:
    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="pwbench-"))
        self.logs = self.work / "logs"
        self.logs.mkdir()
        from dns_server import DnsServer
        self.dns = DnsServer()
        keys = load.dkim_keys(self.work)
        load.zone(self.dns, keys)
        self.keys = keys
        self.messages = {}
        self.warm = {}
        for size in CFG["sizes"]:
            body = load.message(size, keys)
            f = self.work / f"msg-{size}.eml"
            f.write_bytes(body.replace(b"\r\n", b"\n"))  # smtp-source adds the CR
            warm = self.work / f"warm-{size}.eml"  # differs from f: not a duplicate of it
            warm.write_bytes(b"X-Bench-Warm-Up: yes\n" + f.read_bytes())
            self.messages[size] = (f, body)
            self.warm[size] = warm
        self.nginx = Nginx(self.work / "nginx", self.logs)
        self.probe = 0
        self.results: dict = {"config": CFG, "started": time.time(), "loadavg_start": loadavg(),
                              "e2e": {}, "scaling": {}, "plugins": {}, "errors": []}

    def system(self, kind: str, **kw):
        url, logs = self.nginx.url, self.logs
        if kind in POSTWIRE_KINDS:
            return Postwire(POSTWIRE, NATS, url, self.dns.address, logs, plugin_cache=PLUGIN_CACHE,
                            s3s_fs=S3S_FS, **POSTWIRE_KINDS[kind], **kw)
        if kind == "haraka":
            return Haraka(HARAKA, url, logs)
        if kind == "aiosmtpd":
            return Aiosmtpd(PYTHON, url, logs)
        if kind == "postfix":
            return PostfixPipe(url, logs)
        raise ValueError(kind)

    def count(self, size: int) -> int:
        return CFG["messages"] if size <= 8192 else CFG["messages_large"]

    def guarded(self, what: str, fn):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - one failed run must not lose the others
            say(f"FAILED {what}: {e}")
            traceback.print_exc()
            self.results["errors"].append(f"{what}: {e}")
            return None

    def e2e(self, kind: str, size: int) -> dict:
        msg_file, body = self.messages[size]
        sysm = self.system(kind)
        try:
            phases.warm_up(sysm, self.nginx, self.warm[size], self.count(size), CFG["sessions"])
            say(f"{sysm.name} {size} B: throughput, {self.count(size)} messages")
            t = phases.throughput(sysm, self.nginx, msg_file, self.count(size), CFG["sessions"],
                                  CFG["timeout"])
            say(f"  {t['rate']:.0f}/s end to end (accepted {t['accept_rate']:.0f}/s), "
                f"CPU {t['cpu_ms_per_msg_total']:.3f} ms/msg {t['cpu_ms_per_msg']}")
            rate = max(t["rate"] / 2, 1)
            say(f"  latency at {rate:.0f}/s for {CFG['seconds']:.0f} s")
            lat = phases.latency(sysm, self.nginx, body, rate, CFG["seconds"], CFG["sessions"],
                                 self.probe)
            self.probe += lat["sent"] + 1
            say(f"  p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms "
                f"({lat['delivered']}/{lat['accepted']} delivered)")
            return {"system": sysm.name, "size": size, "throughput": t, "latency": lat}
        finally:
            sysm.stop()

    def run(self) -> None:
        parts = CFG["parts"]
        small = min(CFG["sizes"])
        if "wasm" in parts:
            self.guarded("wasm plugin bench", self.wasm)
        if "e2e" in parts:
            for size in CFG["sizes"]:
                for kind in CFG["systems"]:
                    r = self.guarded(f"{kind} {size}", lambda: self.e2e(kind, size))
                    if r:
                        self.results["e2e"][f"{kind}/{size}"] = r
        if "synclat" in parts:
            lat = self.results["e2e"].get(f"postwire/{small}", {}).get("latency", {})
            rate = lat.get("target_rate") or 200.0
            self.results["sync_latency"] = self.guarded("sync latency", lambda: sync_latency.measure(
                NATS, self.logs, rate, CFG["seconds"] / 2))
        if "spans" in parts:
            self.results["spans"] = self.guarded("spans", self.spans)
        if "scaling" in parts:
            for n in CFG["workers"]:
                r = self.guarded(f"scaling {n}", lambda: self.postwire_throughput(
                    small, workers=n))
                if r:
                    self.results["scaling"][str(n)] = r
        if "plugins" in parts:
            for name in ["(none)", "redact", "triage", "digest"]:
                path = [] if name == "(none)" else [ROOT / f"plugins/build/{name}.wasm"]
                r = self.guarded(f"plugin {name}", lambda: self.postwire_throughput(
                    small, plugins=path, count=max(CFG["messages"] // 3, 100)))
                if r:
                    self.results["plugins"][name] = r
        if "rss" in parts:
            self.results["rss"] = self.guarded("rss", self.rss)
        if "profile" in parts:
            self.results["profile"] = self.guarded("profile", self.profile)
        if "callgrind" in parts:
            self.results["callgrind"] = self.guarded("callgrind", self.callgrind)
        self.results["finished"] = time.time()
        self.results["loadavg_end"] = loadavg()

    def postwire_throughput(self, size: int, count: int | None = None, **kw) -> dict:
        msg_file, _ = self.messages[size]
        sysm = self.system("postwire", **kw)
        try:
            n = count or self.count(size)
            phases.warm_up(sysm, self.nginx, self.warm[size], n, CFG["sessions"])
            say(f"postwire {kw}: throughput, {n} messages")
            t = phases.throughput(sysm, self.nginx, msg_file, n, CFG["sessions"], CFG["timeout"])
            say(f"  {t['rate']:.0f}/s, CPU {t['cpu_ms_per_msg_total']:.3f} ms/msg "
                f"{t['cpu_ms_per_msg']}")
            return t
        finally:
            sysm.stop()

    def rss(self) -> dict:
        msg = load.message(4096, self.keys, attachment_bytes=30 * 1024 * 1024)
        sysm = self.system("postwire")
        try:
            phases.warm_up(sysm, self.nginx, self.warm[min(CFG["sizes"])], 200, 4)
            say(f"postwire: peak RSS for one {len(msg) / 2**20:.1f} MiB message")
            r = phases.peak_rss(sysm, self.nginx, msg)
            say(f"  growth {r['peak_growth_mib']} MiB")
            return r
        finally:
            sysm.stop()

    def spans(self) -> dict:
        """Where a mail's latency goes (`harness.spans`): the defaults at the latency run's
        rate, with the roles exporting their spans."""
        size = min(CFG["sizes"])
        lat = self.results["e2e"].get(f"postwire/{size}", {}).get("latency", {})
        rate = lat.get("target_rate") or 100.0
        collector = spans.Collector()
        sysm = self.system("postwire", env_extra=collector.env())
        try:
            phases.warm_up(sysm, self.nginx, self.warm[size], 1000, CFG["sessions"])
            spans.wait_quiet(collector)
            collector.spans.clear()
            say(f"postwire: spans at {rate:.0f}/s for {CFG['seconds'] / 2:.0f} s")
            sent = load.paced(sysm.port, rate, CFG["seconds"] / 2, CFG["sessions"],
                              self.messages[size][1], self.probe)
            self.probe += len(sent) + 1
            spans.wait_quiet(collector)
            r = spans.analyse(collector.spans)
            r["rate"] = rate
            total = r["parts"].get("total: mail complete → first attempt answered", {})
            say(f"  {r['mails']} traces; total p50 {total.get('p50_ms', 0):.1f} ms, "
                f"p99 {total.get('p99_ms', 0):.1f} ms")
            return r
        finally:
            sysm.stop()
            collector.close()

    def profile(self) -> dict | None:
        size = min(CFG["sizes"])
        sysm = self.system("postwire")
        try:
            phases.warm_up(sysm, self.nginx, self.warm[size], self.count(size), CFG["sessions"])
            say("postwire: perf profile")
            data = phases.perf_profile(sysm, self.nginx, self.messages[size][0],
                                       max(CFG["messages"] // 2, 200), CFG["sessions"],
                                       self.work / "perf.data")
            roles = {pid: name for name, pid in sysm.pids().items()}
        finally:
            sysm.stop()
        if data is None:
            return None
        return profile.analyse(data, roles)

    def callgrind(self) -> dict:
        size = min(CFG["sizes"])
        out = self.work / "callgrind"
        out.mkdir(exist_ok=True)
        sysm = self.system("postwire", wrap=lambda role: callgrind.wrap(out, role))
        try:
            n = int(os.environ.get("BENCH_CALLGRIND_MESSAGES", 300))
            say(f"postwire under callgrind: instructions per mail, {n} messages")
            r = callgrind.measure(sysm, self.nginx, self.messages[size][0], out, n, 4,
                                  self.warm[size])
            say(f"  {r['per_mail_total'] / 1e6:.2f} M instructions per mail: " + ", ".join(
                f"{k} {v['per_mail'] / 1e6:.2f} M" for k, v in r["roles"].items()))
            return r
        finally:
            sysm.stop()

    def wasm(self) -> dict:
        import subprocess
        # The event of the run's own small mail (as the worker builds it), with the worker's
        # engine settings (fuel on), and the added worker CPU through the transform stage.
        args = [str(PLUGIN_BENCH), "--cache-dir", str(PLUGIN_CACHE), "--eml",
                str(self.messages[min(CFG["sizes"])][0]), "--json", str(self.work / "wasm.json")]
        args += ["--config", 'route={"rules": [{"subject_contains": "invoice", '
                 '"routes": ["billing", "archive"]}]}']
        args += [f"{ROOT}/plugins/build/{p}.wasm:{lang}" for p, lang in PLUGINS.items()]
        say("plugin host: per-message cost and cached load")
        load0 = loadavg()
        r = subprocess.run(args, capture_output=True, text=True, timeout=1800)
        print(r.stdout, r.stderr[-2000:], flush=True)
        r.check_returncode()
        res = json.loads((self.work / "wasm.json").read_text())
        res["loadavg_before"], res["loadavg_after"] = load0, loadavg()
        res["command"] = " ".join(a.replace(str(ROOT) + "/", "").replace(str(Path.home()), "~")
                                  for a in args)
        self.results["wasm"] = res
        return res

    def close(self) -> None:
        remove_blob_dirs()
        self.nginx.stop()
        self.dns.close()


def main() -> None:
    if sys.argv[1:] == ["--report-only"]:  # re-render docs/benchmarks.md from results.json
        res = json.loads((OUT / "benchmarks/results.json").read_text())
        report.write(res, OUT, ROOT, {"postwire": POSTWIRE, "nats": NATS, "haraka": HARAKA,
                                      "python": PYTHON})
        return
    for p, what in [(POSTWIRE, "postwire (make bench builds it)"), (NATS, "nats-server")]:
        if not Path(p).exists():
            sys.exit(f"bench: {what} not found at {p}")
    b = Bench()
    say(f"work folder {b.work}; config {CFG}")
    try:
        b.run()
    finally:
        b.close()
    OUT.mkdir(parents=True, exist_ok=True)
    report.write(b.results, OUT, ROOT, {"postwire": POSTWIRE, "nats": NATS, "haraka": HARAKA,
                                        "python": PYTHON})
    say(f"wrote {OUT / 'benchmarks.md'} (logs: {b.logs})")


if __name__ == "__main__":
    main()
