#!/usr/bin/env python3
"""An SMTP-to-webhook relay on aiosmtpd and aiohttp, as a Python user would write one: accept
mail for one domain, POST the raw message to a URL, answer 250 only after a 2xx (451
otherwise). No parsing, no verification, no signing. One event loop per process; `--procs`
processes share the port (SO_REUSEPORT), one per CPU by default.

usage: aiosmtpd_relay.py --listen 127.0.0.1:2525 --url http://127.0.0.1:8080/hook [--procs N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

import aiohttp
from aiosmtpd.smtp import SMTP


class Relay:
    def __init__(self, url: str, domain: str) -> None:
        self.url = url
        self.domain = "@" + domain
        self.http: aiohttp.ClientSession | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if not address.lower().endswith(self.domain):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.http is None:
            self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        headers = {"Content-Type": "message/rfc822", "X-Mail-From": envelope.mail_from or "",
                   "X-Rcpt-To": ",".join(envelope.rcpt_tos)}
        try:
            async with self.http.post(self.url, data=envelope.original_content,
                                      headers=headers) as r:
                await r.read()
                if 200 <= r.status < 300:
                    return "250 2.0.0 OK"
                return f"451 4.3.0 webhook answered {r.status}"
        except aiohttp.ClientError as e:
            return f"451 4.3.0 webhook failed: {e}"


async def serve(host: str, port: int, url: str, domain: str) -> None:
    loop = asyncio.get_running_loop()
    relay = Relay(url, domain)
    server = await loop.create_server(lambda: SMTP(relay, hostname="aiosmtpd.bench.test"),
                                      host, port, reuse_port=True, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--domain", default="acme.test")
    p.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    a = p.parse_args()
    host, port = a.listen.rsplit(":", 1)
    children = []
    for _ in range(a.procs - 1):
        pid = os.fork()
        if pid == 0:
            asyncio.run(serve(host, int(port), a.url, a.domain))
            os._exit(0)
        children.append(pid)

    def forward(sig, _frame):
        for c in children:
            os.kill(c, sig)
    signal.signal(signal.SIGTERM, forward)
    asyncio.run(serve(host, int(port), a.url, a.domain))
    for c in children:
        try:
            os.kill(c, signal.SIGTERM)
        except ProcessLookupError:
            pass
        os.waitpid(c, 0)


if __name__ == "__main__":
    main()
