"""A real, tiny authoritative DNS server on loopback UDP for the authentication tests, built
on dnslib's wire format. Tests add records; unknown names answer NXDOMAIN. `hang_for(s)`
makes it drop every query for `s` seconds (a DNS timeout as postwire sees one)."""

from __future__ import annotations

import socket
import threading
import time

from dnslib import PTR, QTYPE, RCODE, RR, TXT, A, DNSRecord


class DnsServer:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list] = {}
        self.queries: list[tuple[str, str]] = []
        self.dropped = 0
        self._hang_until = 0.0
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def txt(self, name: str, value: str) -> None:
        chunks = [value[i:i + 255].encode() for i in range(0, len(value), 255)] or [b""]
        self._add(name, "TXT", TXT(chunks))

    def a(self, name: str, ip: str) -> None:
        self._add(name, "A", A(ip))

    def ptr(self, ip: str, host: str) -> None:
        rev = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
        self._add(rev, "PTR", PTR(host + "."))

    def hang_for(self, seconds: float) -> None:
        with self._lock:
            self._hang_until = time.monotonic() + seconds

    def _add(self, name: str, qtype: str, rdata) -> None:
        with self._lock:
            self.records.setdefault((name.lower().rstrip("."), qtype), []).append(rdata)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            try:
                request = DNSRecord.parse(data)
            except Exception:  # noqa: BLE001 - garbage in, nothing out
                continue
            name = str(request.q.qname).lower().rstrip(".")
            qtype = QTYPE[request.q.qtype]
            with self._lock:
                self.queries.append((name, qtype))
                if time.monotonic() < self._hang_until:
                    self.dropped += 1
                    continue
                answers = list(self.records.get((name, qtype), []))
                known = any(n == name for n, _ in self.records)
            reply = request.reply()
            for rdata in answers:
                reply.add_answer(RR(request.q.qname, getattr(QTYPE, qtype), rdata=rdata, ttl=60))
            if not answers and not known:
                reply.header.rcode = RCODE.NXDOMAIN
            try:
                self.sock.sendto(reply.pack(), peer)
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
