"""An OTLP/HTTP trace receiver (protobuf, `/v1/traces`) for the tests and the benchmark: every
span it is sent, as (service, name, trace_id, span_id, parent_span_id, attrs, start_ms,
end_ms), times in milliseconds since the epoch."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[tuple] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                with outer.lock:
                    for rs in req.resource_spans:
                        service = next((a.value.string_value for a in rs.resource.attributes
                                        if a.key == "service.name"), "")
                        for ss in rs.scope_spans:
                            for s in ss.spans:
                                attrs = {a.key: (a.value.string_value or a.value.int_value)
                                         for a in s.attributes}
                                outer.spans.append((service, s.name, s.trace_id.hex(),
                                                    s.span_id.hex(), s.parent_span_id.hex(),
                                                    attrs, s.start_time_unix_nano / 1e6,
                                                    s.end_time_unix_nano / 1e6))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def named(self, name: str) -> list[tuple]:
        with self.lock:
            return [s for s in self.spans if s[1] == name]

    def close(self) -> None:
        self.server.shutdown()
