"""Helpers shared by the end-to-end tests: where the binaries are, free ports, child
processes with their output in files, the one test configuration (`dev_config`), and the
JetStream state read from nats-server's monitoring port (`wait_idle`) that tests check
instead of sleeping.

The binaries come from the environment the Makefile sets up:
  POSTWIRE_NATS_SERVER  path of nats-server   (default: .tools/venv/bin/nats-server, PATH)
  POSTWIRE_BIN          path of postwire      (default: $CARGO_TARGET_DIR/debug/postwire,
                                               .tools/target/debug/postwire, target/debug/postwire)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The Standard Webhooks secret used throughout (the same as in postwire.example.toml).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# How long a process gets to stop after SIGINT / SIGTERM.
STOP_TIMEOUT = 10.0


# --- binaries -------------------------------------------------------------------------------


def _first_executable(candidates) -> str | None:
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def nats_server_path() -> str:
    path = _first_executable(
        [
            os.environ.get("POSTWIRE_NATS_SERVER"),
            REPO / ".tools" / "venv" / "bin" / "nats-server",
            shutil.which("nats-server"),
        ]
    )
    if path is None:
        pytest.fail("nats-server not found: run `make tools` or set POSTWIRE_NATS_SERVER")
    return path


def postwire_path() -> str:
    target = os.environ.get("CARGO_TARGET_DIR")
    path = _first_executable(
        [
            os.environ.get("POSTWIRE_BIN"),
            target and os.path.join(target, "debug", "postwire"),
            REPO / ".tools" / "target" / "debug" / "postwire",
            REPO / "target" / "debug" / "postwire",
        ]
    )
    if path is None:
        pytest.fail("postwire binary not found: run `make build` or set POSTWIRE_BIN")
    return path


# --- nats-server as deployed ------------------------------------------------------------------

# Every nats-server the tests start syncs each write before acknowledging it, as the configs
# postwire ships do (docs/operations.md, "Durability"): `postwire ingest` and `dev` refuse a
# server that does not, reading its monitoring endpoint (`-m <port>`) at start.
NATS_DURABLE_CONF = "jetstream {\n    sync_interval: always\n}\n"

# nats URL -> its monitoring URL, filled by whoever starts a server; dev_config() and the
# tests' own configs take `nats.monitor_url` from here.
_MONITORS: dict[str, str] = {}


def nats_conf(directory: Path, text: str = NATS_DURABLE_CONF) -> Path:
    """Writes a nats-server config file (for `-c`, beside the command-line flags). Never
    rewrites it in place: a server started a moment ago may be reading it."""
    path = directory / "nats-durable.conf"
    if not path.exists() or path.read_text() != text:
        tmp = directory / f".nats-durable.conf.{os.getpid()}"
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def register_monitor(nats_url: str, monitor_url: str) -> None:
    _MONITORS[nats_url] = monitor_url


def monitor_urls_for(nats_urls: str) -> str:
    """The monitoring URLs (comma separated) of the known servers among `nats_urls`."""
    found = [_MONITORS[u.strip()] for u in nats_urls.split(",") if u.strip() in _MONITORS]
    return ",".join(found)


# --- small helpers ----------------------------------------------------------------------------


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago and that this process has not
    handed out before (the kernel may give a released port again at once, and a test that
    asks for three ports would then get one twice)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def tail(path: Path, limit: int = 20_000) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        return f"<cannot read {path}: {err}>"
    text = data[-limit:].decode("utf-8", errors="replace")
    return text if len(data) <= limit else "...\n" + text


class Process:
    """A child process whose stdout and stderr go to files under the test's tmp dir."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict | None = None):
        self.name = name
        self.argv = argv
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        self._stdout = open(self.stdout_path, "wb")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
            env=env,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stdout(self) -> str:
        return self.stdout_path.read_bytes().decode("utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_bytes().decode("utf-8", errors="replace")

    def logs(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\n"
            f"--- {self.name} stdout ---\n{tail(self.stdout_path)}\n"
            f"--- {self.name} stderr ---\n{tail(self.stderr_path)}"
        )

    def wait_for_port(self, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                pytest.fail(
                    f"{self.name} exited with {self.proc.returncode} before port {port} "
                    f"opened\n{self.logs()}"
                )
            if port_open(port):
                return
            time.sleep(0.05)
        pytest.fail(f"{self.name} did not open port {port} within {timeout} s\n{self.logs()}")

    def wait_for_output(self, needle: str, timeout: float = 10.0) -> str:
        """Waits until stdout contains `needle`; returns the whole stdout."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.stdout()
            if needle in out:
                return out
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} did not print {needle!r} within {timeout} s\n{self.logs()}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int | None:
        """Sends `sig` and waits. Returns the exit code, or None when it had to be killed."""
        code = self.proc.poll()
        if code is None:
            self.proc.send_signal(sig)
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                code = None
        self._stdout.close()
        self._stderr.close()
        return code


def attach_logs(request, process: Process) -> None:
    """Makes conftest's report hook show this process's output when the test fails."""
    procs = getattr(request.node, "_postwire_processes", None)
    if procs is None:
        procs = []
        request.node._postwire_processes = procs
    procs.append(process)


def start_dev(request, tmp_path: Path, config: str, *ports: int, **env: str) -> Process:
    """`postwire dev --no-sink` on `config` (written to tmp_path/postwire.toml), its logs shown
    when the test fails, once each of `ports` is open. `env`: extra variables (RUST_LOG=info
    unless given). Stop it with `.stop(signal.SIGINT)`."""
    path = tmp_path / "postwire.toml"
    path.write_text(config)
    dev = Process("dev", [postwire_path(), "dev", "--config", str(path), "--no-sink"], tmp_path,
                  env=child_env(**{"RUST_LOG": "info", **env}))
    attach_logs(request, dev)
    try:
        for port in ports:
            dev.wait_for_port(port)
    except BaseException:
        dev.stop(signal.SIGKILL)
        raise
    return dev


def send_mail(port: int, to: str, raw: bytes, mail_from: str = "a@example.com",
              helo: str | None = None) -> None:
    """One mail through SMTP on 127.0.0.1:`port`; fails unless every recipient was accepted."""
    import smtplib
    with smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=20) as c:
        assert c.sendmail(mail_from, [to], raw) == {}


def poll(fn, timeout: float = 20.0, interval: float = 0.1):
    """Calls `fn` until it returns something true or `timeout` seconds pass; returns the last
    value (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def wait_until(check, timeout: float, what: str, interval: float = 0.1) -> None:
    """Fails the test with `what` unless `check()` becomes true within `timeout` seconds."""
    if not poll(check, timeout, interval):
        pytest.fail(f"{what} within {timeout} s")


def child_env(**extra: str) -> dict:
    """The environment for postwire children: ours without postwire overrides, no colours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTWIRE_")}
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


# --- the test configuration ------------------------------------------------------------------


def dev_config(nats_url: str, smtp_port: int, hook_url: str, secret: str = SECRET,
               extra_delivery: str = "", admin_port: int = 0,
               verify: str = "[verify]\nenabled = false\n", auth_policy: str = "tag", *,
               retry_schedule=("200ms", "1s"), allow_http: bool = True, extra_nats: str = "",
               extra_smtp: str = "", extra_tenant: str = "", extra: str = "") -> str:
    """The configuration every test starts from: tenant `acme` (domain acme.test), route
    `support` for support@acme.test to endpoint `hook` at `hook_url`, short retries.

    `verify` is the whole `[verify]` section (off by default: the auth tests turn it on
    against their own DNS server). The `extra_*` lines go into their section (`extra_tenant`
    into `[tenants.acme]`); `extra` is appended (more sections)."""
    admin = f'[admin]\nlisten = "127.0.0.1:{admin_port}"\n' if admin_port else ""
    schedule = ", ".join(f'"{d}"' for d in retry_schedule)
    return f"""\
{admin}[nats]
url = "{nats_url}"
monitor_url = "{monitor_urls_for(nats_url)}"
{extra_nats}

[smtp]
listen = "127.0.0.1:{smtp_port}"
hostname = "mx.test"
{extra_smtp}

{verify}

[delivery]
retry_schedule = [{schedule}]
ssrf_allow = ["127.0.0.1"]
{extra_delivery}

[tenants.acme]
domains = ["acme.test"]
auth = {{ policy = "{auth_policy}" }}
{extra_tenant}

[[tenants.acme.routes]]
name = "support"
recipients = ["support@acme.test"]
endpoints = ["hook"]

[tenants.acme.endpoints.hook]
url = "{hook_url}"
allow_http = {str(allow_http).lower()}
secret = "{secret}"
{extra}"""


# --- JetStream state, instead of sleeping ----------------------------------------------------


def monitor(port: int, path: str):
    """GET on a nats-server monitoring port; the parsed JSON, or None when unreachable."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return json.load(r)
    except (OSError, ValueError):
        return None


def streams(monitor_port: int) -> dict:
    """Stream name → {"state": {...}, "consumers": {name: consumer info}}, from /jsz."""
    jsz = monitor(monitor_port, "/jsz?accounts=true&streams=true&consumers=true") or {}
    out = {}
    for account in jsz.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            out[stream["name"]] = {
                "state": stream.get("state") or {},
                "consumers": {c["name"]: c for c in stream.get("consumer_detail") or []},
            }
    return out


# MAIL and OUTBOX are work queues; a worker acks its input only after its output was
# acknowledged (the deliver worker after the HTTP response).
PIPELINE = (("MAIL", "process"), ("OUTBOX", "deliver"))


def idle(state: dict) -> bool:
    """Whether the pipeline holds no work: both work queues are empty and their consumers
    exist with nothing pending and nothing awaiting an ack."""
    for stream, consumer in PIPELINE:
        s = state.get(stream)
        c = s and s["consumers"].get(consumer)
        if not c or s["state"].get("messages", 0) != 0:
            return False
        if c.get("num_pending", 0) != 0 or c.get("num_ack_pending", 0) != 0:
            return False
    return True


def wait_idle(monitor_ports, timeout: float = 30.0) -> dict:
    """Waits until the pipeline is idle as every server in `monitor_ports` (one port or
    several, for a cluster) reports it. Once it is, every request the pipeline will make for
    the mail accepted so far has been made: a count checked then cannot grow later. Returns
    the state (of the first server)."""
    ports = [monitor_ports] if isinstance(monitor_ports, int) else list(monitor_ports)
    deadline = time.monotonic() + timeout
    while True:
        states = [streams(p) for p in ports]
        if all(idle(s) for s in states):
            return states[0]
        if time.monotonic() > deadline:
            pytest.fail(f"the pipeline was not idle within {timeout} s: {states!r}")
        time.sleep(0.05)


def deliveries(state: dict, consumer: str = "deliver", stream: str = "OUTBOX") -> tuple:
    """(messages handed to the consumer, deliveries in all including redeliveries, acked up to)
    as stream sequences and counts."""
    c = state[stream]["consumers"][consumer]
    return (c["delivered"]["stream_seq"], c["delivered"]["consumer_seq"],
            c["ack_floor"]["stream_seq"])
