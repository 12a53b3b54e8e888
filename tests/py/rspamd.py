"""A real rspamd for the spam tests: Debian's package, started in the foreground with the
package's rules but a configuration of our own in a temporary folder — one normal worker on
a free port, no controller or proxy, DNS pointed at a closed local port (offline: nothing is
looked up or downloaded), hyperscan off (its cache would be compiled at every start), and the
host-name checks that only mean "no DNS here" switched off. Also a TCP forwarder, to bring an
rspamd "back" on the port a postwire was configured with."""

from __future__ import annotations

import shutil
import signal
import socket
import threading
import time
import urllib.request
from pathlib import Path

from support import Process

RSPAMD = shutil.which("rspamd") or "/usr/bin/rspamd"

# The GTUBE test string, put together here so this file itself is not spam to a scanner.
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE" + "-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

CONF = """\
.include "$CONFDIR/common.conf"
options {
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    dns { nameserver = ["127.0.0.1:9"]; timeout = 0.2s; retransmits = 1; }
    local_addrs = [];
    disable_hyperscan = true;
}
logging { type = "file"; filename = "$LOGDIR/rspamd.log"; level = "warning"; }
worker "normal" {
    bind_socket = "127.0.0.1:%(port)d";
    .include "$CONFDIR/worker-normal.inc"
    count = 1;
}
"""


class Rspamd:
    """rspamd's normal worker on 127.0.0.1:<port> (`/checkv2`)."""

    def __init__(self, directory: Path, port: int):
        self.dir, self.port = directory, port
        self.url = f"http://127.0.0.1:{port}"
        local = directory / "local" / "local.d"
        local.mkdir(parents=True, exist_ok=True)
        for d in ("db", "run", "log"):
            (directory / d).mkdir(exist_ok=True)
        # Offline, every sender's host name "does not resolve": not a spam signal here.
        (local / "hfilter.conf").write_text("enabled = false;\n")
        for module in ("rbl", "fuzzy_check", "surbl", "emails", "asn", "dcc", "replies"):
            (local / f"{module}.conf").write_text("enabled = false;\n")
        (directory / "rspamd.conf").write_text(CONF % {"port": port})
        self.process: Process | None = None

    def start(self, timeout: float = 300.0) -> None:
        argv = [RSPAMD, "-f", "-i", "-c", str(self.dir / "rspamd.conf")]
        for key, sub in (("LOCAL_CONFDIR", "local"), ("DBDIR", "db"), ("RUNDIR", "run"), ("LOGDIR", "log")):
            argv.append(f"--var={key}={self.dir / sub}")
        self.process = Process("rspamd", argv, self.dir)
        # Loading rspamd's rules takes a while on a busy machine; /ping answers once a
        # worker is up.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.alive(), f"rspamd exited\n{self.logs()}"
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=2) as r:
                    if r.read().strip() == b"pong":
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"rspamd did not answer /ping within {timeout} s\n{self.logs()}")

    def logs(self) -> str:
        log = self.dir / "log" / "rspamd.log"
        text = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        return (self.process.logs() if self.process else "") + "\n--- rspamd.log ---\n" + text

    def stop(self) -> None:
        if self.process:
            self.process.stop(signal.SIGTERM)
            self.process = None


class Forwarder:
    """Accepts on 127.0.0.1:<port> and relays each connection to `target` (a real rspamd)."""

    def __init__(self, port: int, target: int):
        self.target = target
        self.sock = socket.create_server(("127.0.0.1", port))
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.stopped = True
        self.sock.close()
