"""What one synced JetStream write costs in latency on this machine: a nats-server alone (the
benchmark's config, `sync_interval: always`, and its default timer for comparison), one
stream, 2 KB publishes paced at a given rate, the time from each PUB to its PubAck. Every mail
waits for at least one such write (the `MAIL` publish before the `250`) and its
acknowledgement, so the end-to-end p99 cannot be below this write's p99.

A minimal NATS client over the text protocol (PUB with a reply subject, the PubAck comes back
as a MSG), so the bench venv needs no NATS library."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from .procs import Proc, free_port, wait_port
from .systems import NATS_DURABLE, NATS_UNSYNCED


class _Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer
        self.waiting: dict[str, asyncio.Future] = {}
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, port: int) -> "_Client":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()  # INFO
        writer.write(b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\n'
                     b"SUB _R.* 1\r\n")
        await writer.drain()
        return cls(reader, writer)

    async def _read(self) -> None:
        while True:
            line = await self.r.readline()
            if not line:
                return
            if line.startswith(b"PING"):
                self.w.write(b"PONG\r\n")
            elif line.startswith(b"MSG "):
                _, _subject, _sid, reply, *size = line.split()
                size = size[-1] if size else reply
                body = await self.r.readexactly(int(size) + 2)
                fut = self.waiting.pop(_subject.decode(), None)
                if fut and not fut.done():
                    fut.set_result(body[:-2])

    async def request(self, subject: str, payload: bytes, n: int) -> bytes:
        inbox = f"_R.{n}"
        fut = asyncio.get_running_loop().create_future()
        self.waiting[inbox] = fut
        self.w.write(f"PUB {subject} {inbox} {len(payload)}\r\n".encode() + payload + b"\r\n")
        await self.w.drain()
        return await asyncio.wait_for(fut, 30)

    def close(self) -> None:
        self.task.cancel()
        self.w.close()


async def _run(port: int, rate: float, seconds: float, size: int) -> list[float]:
    c = await _Client.connect(port)
    try:
        cfg = {"name": "LAT", "subjects": ["lat.>"], "storage": "file", "retention": "limits"}
        reply = json.loads(await c.request("$JS.API.STREAM.CREATE.LAT",
                                           json.dumps(cfg).encode(), 0))
        if "error" in reply:
            raise RuntimeError(f"stream: {reply['error']}")
        payload = os.urandom(size // 2).hex().encode()[:size]
        total = max(int(rate * seconds), 1)
        lat: list[float] = []

        async def one(n: int) -> None:
            t0 = time.perf_counter()
            ack = json.loads(await c.request("lat.x", payload, n))
            if "error" in ack:
                raise RuntimeError(f"publish: {ack['error']}")
            lat.append((time.perf_counter() - t0) * 1000)

        start = time.perf_counter()
        tasks = []
        for n in range(1, total + 1):
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
        return lat
    finally:
        c.close()


def measure(nats_server: str, logdir: Path, rate: float, seconds: float = 10.0,
            size: int = 2048) -> dict:
    """PubAck latency percentiles (ms) of `size`-byte publishes at `rate`/s, synced and not."""
    out = {"rate": rate, "size": size}
    for name, conf in (("synced", NATS_DURABLE), ("unsynced", NATS_UNSYNCED)):
        root = Path(tempfile.mkdtemp(prefix=f"pwbench-synclat-{name}-",
                                     dir=os.environ.get("BENCH_STORAGE_DIR")))
        (root / "nats.conf").write_text(conf)
        port = free_port()
        nats = Proc(f"nats-synclat-{name}", [nats_server, "-c", str(root / "nats.conf"), "-js",
                                             "-a", "127.0.0.1", "-p", str(port),
                                             "-sd", str(root / "store")], logdir)
        try:
            wait_port(port, 15, "nats-server", nats)
            lat = sorted(asyncio.run(_run(port, rate, seconds, size)))
            q = statistics.quantiles(lat, n=100, method="inclusive")
            out[name] = {"n": len(lat), "p50_ms": q[49], "p90_ms": q[89], "p99_ms": q[98],
                         "max_ms": lat[-1]}
        finally:
            nats.stop()
            shutil.rmtree(root, ignore_errors=True)
    return out
