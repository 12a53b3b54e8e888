"""Where one mail's latency goes, from postwire's own trace spans: the roles export OTLP to a
collector here while paced mail flows at a low rate; each mail's trace is cut into the time
ingest waits for the `MAIL` PubAck, the wait until the process worker takes the mail, each
fused stage, the first attempt's POST, and (when it went through `OUTBOX`) the hop to the
deliver worker. p50 and p99 over the mails, in ms."""

from __future__ import annotations

import statistics
import time

from otlp_receiver import OtlpReceiver  # tests/py, on the path bench/run.py sets

# The fields of a span as OtlpReceiver keeps it.
NAME, TRACE, SPAN, PARENT, START, END = 1, 2, 3, 4, 6, 7
STAGES = ("verify", "spam", "parse", "scan", "store", "route", "transform", "prepare")


class Collector(OtlpReceiver):
    """The tests' OTLP receiver (tests/py/otlp_receiver.py), with the environment that makes
    postwire's roles export to it."""

    def env(self) -> dict:
        # The spans are at level info: a `warn` filter would drop them before export.
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.url, "OTEL_BSP_SCHEDULE_DELAY": "200",
                "RUST_LOG": "warn,postwire=info,postwire_ingest=info,postwire_stages=info"}


def _parts(spans: list[tuple]) -> dict[str, float] | None:
    """The parts of one mail's trace (ms), or None when it is incomplete."""
    by = {}
    for s in spans:
        by.setdefault(s[NAME], []).append(s)
    try:
        (smtp,), (publish,), (process,) = by["smtp.transaction"], by["ingest.publish"], by["process"]
    except (KeyError, ValueError):
        return None
    delivers = sorted(by.get("deliver", []), key=lambda s: s[START])
    # `ingest.publish` starts when the mail is complete and is the parent of the rest; the
    # transaction's span ends with the `250`, which follows the synced `MAIL` write.
    out = {
        "mail complete → 250 (the synced MAIL write)": smtp[END] - publish[START],
        "250 → the process worker starts": process[START] - smtp[END],
    }
    for st in STAGES:
        if st in by:
            out[f"stage {st}"] = sum(s[END] - s[START] for s in by[st])
    out["process worker, whole (stages, attempt, acks)"] = process[END] - process[START]
    if not delivers:
        return out
    first = delivers[0]
    if first[PARENT] == process[SPAN] and first[START] < process[END]:
        out["first attempt (POST, in the worker)"] = first[END] - first[START]
    else:
        out["OUTBOX → deliver worker starts"] = first[START] - process[END]
        out["attempt (POST, deliver worker)"] = first[END] - first[START]
    out["total: mail complete → first attempt answered"] = first[END] - publish[START]
    return out


def analyse(spans: list[tuple]) -> dict:
    traces: dict[str, list[tuple]] = {}
    for s in spans:
        traces.setdefault(s[TRACE], []).append(s)
    parts = [p for p in (_parts(t) for t in traces.values()) if p]
    out: dict = {"mails": len(parts), "parts": {}}
    names = []
    for p in parts:
        names += [k for k in p if k not in names]
    for name in names:
        vals = sorted(p[name] for p in parts if name in p)
        if len(vals) < 2:
            continue
        q = statistics.quantiles(vals, n=100, method="inclusive")
        out["parts"][name] = {"n": len(vals), "p50_ms": q[49], "p99_ms": q[98]}
    return out


def wait_quiet(c: Collector, settle: float = 2.0, timeout: float = 30.0) -> None:
    """Until no span arrived for `settle` seconds (the roles export in batches)."""
    deadline = time.monotonic() + timeout
    last, seen = time.monotonic(), len(c.spans)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if len(c.spans) != seen:
            last, seen = time.monotonic(), len(c.spans)
        elif time.monotonic() - last > settle:
            return
