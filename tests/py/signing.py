"""Helpers for the signature tests: run `postwire keys`/`sign-request`/`verify`, run the Node
interop script (tests/js/cavage.js), and serve key records from a real DNS server (dnslib) on
127.0.0.1:<free port>.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSServer

from support import REPO, child_env, postwire_path

ALL_COMPONENTS = ("@method", "@target-uri", "content-digest", "content-type", "webhook-id")


def postwire(*args, check: int | None = 0, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Runs the postwire binary; asserts the exit code unless `check` is None."""
    proc = subprocess.run(
        [postwire_path(), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=child_env(),
        timeout=30,
    )
    if check is not None:
        assert proc.returncode == check, (
            f"postwire {' '.join(map(str, args))} exited {proc.returncode}, expected {check}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def generate(tmp: Path, name: str, alg: str = "ed25519") -> tuple[Path, Path]:
    """`postwire keys generate`: (private key file, public key file)."""
    private = tmp / f"{name}.pem"
    public = tmp / f"{name}.pub.pem"
    public.write_text(postwire("keys", "generate", "--alg", alg, "--out", private).stdout)
    return private, public


def sign_request(tmp: Path, signing_toml: str, url: str, body: bytes, now: int | None = None,
                 webhook_id: str = "msg_test") -> dict:
    """Signs with `[[signing]]` entries via the hidden `postwire sign-request`; returns the
    JSON capture."""
    config = tmp / "signing.toml"
    config.write_text(signing_toml)
    body_file = tmp / "body.json"
    body_file.write_bytes(body)
    args = ["sign-request", "--config", config, "--url", url, "--body-file", body_file,
            "--webhook-id", webhook_id]
    if now is not None:
        args += ["--now", now]
    return json.loads(postwire(*args).stdout)


def write_capture(tmp: Path, capture: dict, name: str = "request.json") -> Path:
    path = tmp / name
    path.write_text(json.dumps(capture))
    return path


def body_of(capture: dict) -> bytes:
    return base64.b64decode(capture["body_base64"])


def headers_of(capture: dict) -> dict:
    """Lower-case header names; repeated names joined with ', '."""
    out: dict = {}
    for name, value in capture["headers"]:
        name = name.lower()
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


# --- Node (tests/js) ----------------------------------------------------------------------


def node(*args) -> subprocess.CompletedProcess:
    """Runs tests/js/cavage.js with the packages scripts/tools.sh installed."""
    tools = Path(os.environ.get("POSTWIRE_TOOLS") or REPO / ".tools")
    modules = tools / "node" / "node_modules"
    if shutil.which("node") is None or not (modules / "http-signature").is_dir():
        pytest.fail(f"node or {modules}/http-signature missing: run `make tools`")
    return subprocess.run(
        ["node", str(REPO / "tests" / "js" / "cavage.js"), *map(str, args)],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "NODE_PATH": str(modules)},
    )


# --- DNS ------------------------------------------------------------------------------------


class Zone(BaseResolver):
    """TXT records by name; other names answer NXDOMAIN. Change `records` at any time."""

    def __init__(self):
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self.lock = threading.Lock()

    def set(self, name: str, txt: str) -> None:
        with self.lock:
            self.records[name.lower().rstrip(".") + "."] = [txt[i:i + 255] for i in range(0, len(txt), 255)]

    def remove(self, name: str) -> None:
        with self.lock:
            self.records.pop(name.lower().rstrip(".") + ".", None)

    def publish(self, dns_record_output: str) -> list[str]:
        """Serves the lines `postwire keys dns-record` printed; returns their names."""
        names = []
        for line in dns_record_output.strip().splitlines():
            name, rest = line.split(" TXT ", 1)
            txt = "".join(part.strip('"') for part in rest.split('" "'))
            self.set(name, txt)
            names.append(name.rstrip("."))
        return names

    def resolve(self, request, handler):
        reply = request.reply()
        qname = str(request.q.qname).lower()
        with self.lock:
            self.queries.append(qname)
            strings = self.records.get(qname)
        if strings is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            reply.add_answer(RR(qname, QTYPE.TXT, rdata=TXT(strings), ttl=1))
        return reply


class Dns:
    def __init__(self):
        self.zone = Zone()
        self.server = DNSServer(self.zone, address="127.0.0.1", port=0)
        self.port = self.server.server.server_address[1]
        self.server.start_thread()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop()
        self.server.server.server_close()
