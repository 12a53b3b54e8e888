"""Where one mail's latency goes, from postwire's own trace spans: the roles export OTLP to a
collector here while paced mail flows at a low rate; each mail's trace is cut into the time
ingest waits for the `MAIL` PubAck, the wait until the process worker takes the mail, each
fused stage, the first attempt's POST, and (when it went through `OUTBOX`) the hop to the
deliver worker. p50 and p99 over the mails, in ms."""

from __future__ import annotations

import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STAGES = ("verify", "spam", "parse", "scan", "store", "route", "transform", "prepare")


class Collector:
    """Receives OTLP/HTTP protobuf trace exports: (name, trace, span, parent, start, end) with
    times in ms since the epoch."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
        self.spans: list[tuple] = []
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                with lock:
                    for rs in req.resource_spans:
                        for ss in rs.scope_spans:
                            for s in ss.spans:
                                outer.spans.append((s.name, s.trace_id.hex(), s.span_id.hex(),
                                                    s.parent_span_id.hex(),
                                                    s.start_time_unix_nano / 1e6,
                                                    s.end_time_unix_nano / 1e6))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def env(self) -> dict:
        # The spans are at level info: a `warn` filter would drop them before export.
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.url, "OTEL_BSP_SCHEDULE_DELAY": "200",
                "RUST_LOG": "warn,postwire=info,postwire_ingest=info,postwire_stages=info"}

    def close(self) -> None:
        self.server.shutdown()


def _parts(spans: list[tuple]) -> dict[str, float] | None:
    """The parts of one mail's trace (ms), or None when it is incomplete."""
    by = {}
    for s in spans:
        by.setdefault(s[0], []).append(s)
    try:
        (smtp,), (publish,), (process,) = by["smtp.transaction"], by["ingest.publish"], by["process"]
    except (KeyError, ValueError):
        return None
    delivers = sorted(by.get("deliver", []), key=lambda s: s[4])
    # `ingest.publish` starts when the mail is complete and is the parent of the rest; the
    # transaction's span ends with the `250`, which follows the synced `MAIL` write.
    out = {
        "mail complete → 250 (the synced MAIL write)": smtp[5] - publish[4],
        "250 → the process worker starts": process[4] - smtp[5],
    }
    for st in STAGES:
        if st in by:
            out[f"stage {st}"] = sum(s[5] - s[4] for s in by[st])
    out["process worker, whole (stages, attempt, acks)"] = process[5] - process[4]
    if not delivers:
        return out
    first = delivers[0]
    if first[3] == process[2] and first[4] < process[5]:
        out["first attempt (POST, in the worker)"] = first[5] - first[4]
    else:
        out["OUTBOX → deliver worker starts"] = first[4] - process[5]
        out["attempt (POST, deliver worker)"] = first[5] - first[4]
    out["total: mail complete → first attempt answered"] = first[5] - publish[4]
    return out


def analyse(spans: list[tuple]) -> dict:
    traces: dict[str, list[tuple]] = {}
    for s in spans:
        traces.setdefault(s[1], []).append(s)
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
