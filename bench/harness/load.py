"""The load: the benchmark messages (DKIM-signed by sender.test, so verification passes),
Postfix's smtp-source for throughput, and a paced client that timestamps the end of DATA of
each message it sends, for latency.

Every message carries the same DKIM signature; a paced message adds an unsigned header
`X-Bench-Probe: PWBENCH-<n>` on top, which every system passes on to the receiver (postwire
in the payload's `headers`, the peers in the raw message), where nginx logs <n>.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

SENDER_DOMAIN = "sender.test"
MAIL_FROM = "bench@sender.test"
RCPT = "support@acme.test"
HELO = "mx.sender.test"
SELECTOR = "bench"

WORDS = ("the quick brown fox jumps over a lazy dog while postwire turns inbound mail into "
         "signed webhooks and the benchmark measures how fast and how cheaply it does so").split()


@dataclass
class Keys:
    private_pem: bytes
    public_b64: str  # the p= of the DKIM record


def dkim_keys(workdir: Path) -> Keys:
    key = workdir / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return Keys(key.read_bytes(), base64.b64encode(der).decode())


def zone(dns, keys: Keys) -> None:
    """The DNS records that make the benchmark mail pass SPF, DKIM, DMARC and iprev."""
    dns.txt(SENDER_DOMAIN, "v=spf1 ip4:127.0.0.1 -all")
    dns.txt(HELO, "v=spf1 ip4:127.0.0.1 -all")
    dns.a(HELO, "127.0.0.1")
    dns.ptr("127.0.0.1", HELO)
    dns.txt(f"{SELECTOR}._domainkey.{SENDER_DOMAIN}", f"v=DKIM1; k=rsa; p={keys.public_b64}")
    dns.txt(f"_dmarc.{SENDER_DOMAIN}", "v=DMARC1; p=reject")


def _text(size: int) -> bytes:
    lines, total, i = [], 0, 0
    while total < size:
        words = []
        while sum(len(w) + 1 for w in words) < 72:
            words.append(WORDS[i % len(WORDS)])
            i += 1
        line = " ".join(words).encode() + b"\r\n"
        lines.append(line)
        total += len(line)
    return b"".join(lines)


def message(size: int, keys: Keys, attachment_bytes: int = 0) -> bytes:
    """A DKIM-signed message of about `size` bytes of text, optionally with a binary
    attachment of `attachment_bytes` (base64, so ~1.37x that on the wire)."""
    import dkim

    headers = (
        f"From: Bench Sender <{MAIL_FROM}>\r\n"
        f"To: Support <{RCPT}>\r\n"
        f"Subject: postwire benchmark message\r\n"
        f"Date: {formatdate(localtime=False)}\r\n"
        f"Message-ID: <bench-{size}-{attachment_bytes}@{SENDER_DOMAIN}>\r\n"
        f"MIME-Version: 1.0\r\n"
    ).encode()
    head_len = len(headers) + 600  # the DKIM-Signature header
    text = _text(max(size - head_len, 64))
    if attachment_bytes:
        blob = base64.encodebytes(bytes(range(256)) * (attachment_bytes // 256 + 1))
        blob = blob[: (attachment_bytes * 4 // 3)].replace(b"\n", b"\r\n")
        body = (b"Content-Type: multipart/mixed; boundary=BENCH\r\n\r\n"
                b"--BENCH\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text +
                b"--BENCH\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Disposition: attachment; filename=\"blob.bin\"\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n" + blob + b"\r\n--BENCH--\r\n")
    else:
        body = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
    msg = headers + body
    sig = dkim.sign(msg, SELECTOR.encode(), SENDER_DOMAIN.encode(), keys.private_pem,
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return sig.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n") + msg


def smtp_source(port: int, msg_file: Path, count: int, sessions: int) -> subprocess.CompletedProcess:
    """Postfix's smtp-source: `count` copies of `msg_file` over `sessions` parallel sessions.
    `-N` numbers the recipients (1support@acme.test, 2support@…): postwire's ingest drops a
    message identical to one stored before (same envelope and content: a client's retry)."""
    return subprocess.run(
        ["/usr/sbin/smtp-source", "-N", "-s", str(sessions), "-m", str(count), "-F", str(msg_file),
         "-f", MAIL_FROM, "-t", RCPT, "-M", HELO, f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=3600)


# --- the paced, timestamping client -----------------------------------------------------------

@dataclass
class Sent:
    n: int
    end_of_data: float  # time.time() right before the final "." was written
    replied: float      # the reply to DATA arrived
    code: int


async def _reply(reader: asyncio.StreamReader) -> int:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return int(line[:3])


async def _session(port: int, queue: asyncio.Queue, base: bytes, out: list[Sent]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await _reply(reader)
        writer.write(f"EHLO {HELO}\r\n".encode())
        await _reply(reader)
        while True:
            n = await queue.get()
            if n is None:
                break
            for cmd in (f"MAIL FROM:<{MAIL_FROM}>", f"RCPT TO:<{RCPT}>", "DATA"):
                writer.write(cmd.encode() + b"\r\n")
                code = await _reply(reader)
                if code >= 400:
                    break
            if code != 354:
                writer.write(b"RSET\r\n")
                await _reply(reader)
                out.append(Sent(n, time.time(), time.time(), code))
                continue
            writer.write(b"X-Bench-Probe: PWBENCH-%d\r\n" % n + base)
            await writer.drain()
            t = time.time()
            writer.write(b".\r\n")
            code = await _reply(reader)
            out.append(Sent(n, t, time.time(), code))
        writer.write(b"QUIT\r\n")
        await writer.drain()
    finally:
        writer.close()


async def _paced(port: int, rate: float, seconds: float, sessions: int, base: bytes,
                 first: int) -> list[Sent]:
    queue: asyncio.Queue = asyncio.Queue()
    out: list[Sent] = []
    tasks = [asyncio.create_task(_session(port, queue, base, out)) for _ in range(sessions)]
    start = time.monotonic()
    total = int(rate * seconds)
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(first + i)
    for _ in tasks:
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    return out


def paced(port: int, rate: float, seconds: float, sessions: int, base: bytes,
          first: int = 0) -> list[Sent]:
    """Sends `rate` messages per second for `seconds` over up to `sessions` connections,
    each numbered from `first`; returns when all were answered."""
    return asyncio.run(_paced(port, rate, seconds, sessions, base, first))
