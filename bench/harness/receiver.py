"""The webhook receiver: nginx answering 200, logging when each request arrived ($msec)
and the probe marker (`PWBENCH-<n>`) found in its body, if any.

nginx only reads a request body into `$request_body` when it proxies it, so the public server
proxies to a second server on a unix socket that answers 200 (keep-alive on both sides).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from .procs import Proc, free_port, wait_port

CONF = """\
daemon off;
master_process on;
worker_processes {workers};
user root root;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    client_max_body_size 128m;
    client_body_buffer_size 1m;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    map $request_body $probe {{
        "~PWBENCH-(?<n>[0-9]+)" $n;
        default "-";
    }}
    # The mail's number: smtp-source -N numbers the recipients (<n>support@acme.test); the
    # peers name them in X-Rcpt-To, postwire in the payload's envelope.
    map $request_body $body_rcpt {{
        '~"(?<r>[0-9]+)support@acme[.]test"' $r;
        default "-";
    }}
    map $http_x_rcpt_to $rcpt {{
        "~^(?<h>[0-9]+)support@" $h;
        default $body_rcpt;
    }}
    log_format bench '$msec $request_time $status $request_length $probe $rcpt';
    upstream ok {{
        server unix:{root}/ok.sock;
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        access_log {root}/access.log bench buffer=256k flush=200ms;
        location / {{
            proxy_pass http://ok;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
    server {{
        listen unix:{root}/ok.sock;
        access_log off;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""

LINE = re.compile(r"^(\d+\.\d+) (\S+) (\d+) (\d+) (\S+) (\S+)$")


@dataclass
class Hit:
    at: float          # $msec: the request was received (and answered)
    status: int
    size: int
    probe: int | None  # the PWBENCH number, if the body held one
    rcpt: int | None   # smtp-source's recipient number, if the request named one


class Nginx:
    def __init__(self, root: Path, logdir: Path, workers: int = 1) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        (root / "nginx.conf").write_text(CONF.format(root=root, port=self.port, workers=workers))
        self.proc = Proc("nginx", ["nginx", "-c", str(root / "nginx.conf"), "-p", str(root)],
                         logdir)
        wait_port(self.port, 10, "nginx", self.proc)
        self.access = root / "access.log"
        self._offset = 0
        self.hits: list[Hit] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def poll(self) -> list[Hit]:
        """Reads the access log lines written since the last call."""
        if not self.access.exists():
            return []
        with open(self.access, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        new = []
        for line in data[:end].decode(errors="replace").splitlines():
            m = LINE.match(line)
            if m:
                probe, rcpt = m.group(5), m.group(6)
                new.append(Hit(float(m.group(1)), int(m.group(3)), int(m.group(4)),
                               int(probe) if probe.isdigit() else None,
                               int(rcpt) if rcpt.isdigit() else None))
        self.hits.extend(new)
        return new

    def mark(self) -> int:
        """Index of the next hit, to count the hits of one phase."""
        self.poll()
        return len(self.hits)

    def wait_for(self, start: int, n: int, timeout: float, idle: float = 0) -> list[Hit]:
        """Waits until `n` hits arrived after index `start` (or `timeout` passed, or nothing
        arrived for `idle` seconds when idle > 0); returns the hits after `start`."""
        deadline = time.monotonic() + timeout
        last_change, seen = time.monotonic(), -1
        while True:
            self.poll()
            got = len(self.hits) - start
            if got >= n or time.monotonic() > deadline:
                break
            if got != seen:
                seen, last_change = got, time.monotonic()
            elif idle and time.monotonic() - last_change > idle:
                break
            time.sleep(0.1)
        time.sleep(0.3)  # the log buffer is flushed every 200 ms
        self.poll()
        return self.hits[start:]

    def stop(self) -> None:
        self.proc.stop()
