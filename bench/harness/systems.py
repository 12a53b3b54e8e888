"""The systems under test. Each starts fresh, listens for SMTP on `port`, relays every mail
for acme.test to the receiver's URL, says which processes to charge CPU to (`groups`), and
stops. postwire runs as separate role processes (ingest, N process workers, deliver) plus its
nats-server, so the CPU of each stage is measured apart."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import json
import time
import urllib.request
from pathlib import Path

from .procs import Proc, free_port, wait_port

BENCH = Path(__file__).resolve().parents[1]
PEERS = BENCH / "peers"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# Stored objects of every postwire run, deleted only when the whole benchmark is done: ext4
# allocates inodes more slowly for minutes after many were freed (`recently_deleted`), so
# deleting one run's thousands of files would slow down the next run's store stage.
BLOB_DIRS: list[Path] = []


def remove_blob_dirs() -> None:
    while BLOB_DIRS:
        shutil.rmtree(BLOB_DIRS.pop(), ignore_errors=True)


class System:
    name = "?"
    port = 0

    def groups(self) -> dict[str, list[int]]:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


# --- postwire ---------------------------------------------------------------------------------

POSTWIRE_CONFIG = """\
[nats]
url = "nats://127.0.0.1:{nats_port}"
monitor_url = "http://127.0.0.1:{monitor_port}"
allow_unsynced = {allow_unsynced}

[smtp]
listen = "127.0.0.1:{port}"
hostname = "mx.acme.test"

[delivery]
ssrf_allow = ["127.0.0.1"]
inline_attempt_ms = {inline_ms}

[verify]
enabled = true
dns_servers = ["{dns}"]

{storage}

[plugin_host]
cache_dir = "{plugin_cache}"
deadline_ms = 5000  # a call preempted on a busy machine must not fail the run

[tenants.acme]
domains = ["acme.test"]
auth = {{ policy = "tag" }}
attachments = "store"
plugins = [{plugins}]

[[tenants.acme.routes]]
name = "support"
recipients = ["*@acme.test"]  # smtp-source -N: <n>support@acme.test
endpoints = ["hook"]

[tenants.acme.endpoints.hook]
url = "{url}"
allow_http = true
secret = "{secret}"
"""


# One process (`postwire dev`): the filesystem store, whose URLs that process serves.
STORAGE_FS = """[storage]
backend = "fs"
path = "{blobs}"
listen = "127.0.0.1:{blob_port}"
public_url = "http://127.0.0.1:{blob_port}"
"""
# Separate role processes: an S3 server (s3s-fs, as MinIO in compose.yaml).
STORAGE_S3 = """[storage]
backend = "s3"
bucket = "postwire"
region = "us-east-1"
endpoint = "http://127.0.0.1:{s3_port}"
path_style = true
"""
S3_KEY, S3_SECRET = "bench-access-key", "bench-secret-key-0123456789"

# nats-server's JetStream settings: as shipped (every write fsynced before the PubAck), and
# nats-server's default (a sync every two minutes), which postwire only accepts with
# nats.allow_unsynced; the pair shows what durability costs (docs/operations.md).
NATS_DURABLE = "jetstream {\n    sync_interval: always\n}\n"
NATS_UNSYNCED = "jetstream {}\n"


class Postwire(System):
    """nats-server + `postwire ingest` + `workers` x `postwire worker` + `postwire deliver`,
    storing in s3s-fs; or, `single`, nats-server + one `postwire dev --no-sink` (every role in
    one process, the filesystem store). `durable=False`: nats-server with its default sync
    timer (the comparison run)."""

    def __init__(self, binary: Path, nats_server: str, url: str, dns: str, logdir: Path,
                 workers: int = 1, plugins: list[Path] = (), plugin_cache: Path | None = None,
                 log_level: str = "warn", durable: bool = True, single: bool = False,
                 s3s_fs: Path | None = None, wrap=None, threads: int = 0,
                 inline_ms: int = 1000, env_extra: dict | None = None) -> None:
        self.name = ("postwire" if durable else "postwire (unsynced)") + (
            " (one process)" if single else "") + (
            "" if inline_ms else " (every delivery through OUTBOX)") + (
            f" ({threads} runtime thread{'s' if threads > 1 else ''} per role)" if threads else "")
        self.root = Path(tempfile.mkdtemp(prefix="pwbench-postwire-"))
        self.port = free_port()
        nats_port, monitor_port = free_port(), free_port()
        self.monitor = f"http://127.0.0.1:{monitor_port}"
        (self.root / "nats").mkdir()
        conf = self.root / "nats.conf"
        conf.write_text(NATS_DURABLE if durable else NATS_UNSYNCED)
        self.procs: dict[str, list[Proc]] = {}
        self.nats = Proc("nats-server", [nats_server, "-c", str(conf), "-js", "-a", "127.0.0.1",
                                         "-p", str(nats_port), "-m", str(monitor_port),
                                         "-sd", str(self.root / "nats")], logdir)
        wait_port(nats_port, 15, "nats-server", self.nats)
        wait_port(monitor_port, 15, "nats-server monitoring", self.nats)
        # Stored objects: in the temp folder, or under BENCH_STORAGE_DIR.
        self.blobs = Path(tempfile.mkdtemp(prefix="pwbench-blobs-",
                                           dir=os.environ.get("BENCH_STORAGE_DIR")))
        BLOB_DIRS.append(self.blobs)
        self.s3 = None
        s3_port = free_port()
        if not single:
            (self.blobs / "postwire").mkdir()
            self.s3 = Proc("s3s-fs", [str(s3s_fs), "--host", "127.0.0.1", "--port", str(s3_port),
                                      "--access-key", S3_KEY, "--secret-key", S3_SECRET,
                                      str(self.blobs)], logdir)
            wait_port(s3_port, 15, "s3s-fs", self.s3)
        storage = (STORAGE_FS if single else STORAGE_S3).format(
            blobs=self.blobs, blob_port=free_port(), s3_port=s3_port)
        config = self.root / "postwire.toml"
        config.write_text(POSTWIRE_CONFIG.format(
            nats_port=nats_port, monitor_port=monitor_port,
            allow_unsynced="false" if durable else "true", port=self.port, dns=dns,
            storage=storage, inline_ms=inline_ms,
            plugin_cache=plugin_cache or self.root / "plugin-cache", url=url, secret=SECRET,
            plugins=", ".join(f'{{ path = "{p}" }}' for p in plugins)))
        env = {"POSTWIRE_BLOB_KEY": "bench-url-signing-key-0123456789abcdef",
               "RUST_LOG": f"{log_level},postwire=info,postwire_stages=info"
                           if log_level == "info" else log_level,
               "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
        env.update(env_extra or {})
        if threads:
            # tokio's worker threads (default: one per CPU), read by the runtime at start.
            env["TOKIO_WORKER_THREADS"] = str(threads)

        # `wrap(role)`: a command line to run the role under (valgrind), slower to start.
        prefix = wrap or (lambda _role: [])
        self.start_timeout = 300 if wrap else 30

        def role(name: str, cmd: str) -> Proc:
            return Proc(name, prefix(cmd) + [str(binary), cmd, "--config", str(config)], logdir,
                        env=env)

        if single:
            one = Proc("postwire", [str(binary), "dev", "--no-sink", "--config", str(config)],
                       logdir, env=env)
            self.procs["postwire (one process)"] = [one]
            wait_port(self.port, 30, "postwire dev", one)
            return
        # The first worker creates the streams and consumers; the others start after it.
        first = role("postwire-worker-1", "worker")
        self.procs["process"] = [first]
        self._wait_running(first, logdir)
        self.procs["process"] += [role(f"postwire-worker-{i}", "worker")
                                  for i in range(2, workers + 1)]
        self.procs["deliver"] = [role("postwire-deliver", "deliver")]
        ingest = role("postwire-ingest", "ingest")
        self.procs["ingest"] = [ingest]
        wait_port(self.port, self.start_timeout, "postwire ingest", ingest)

    def _wait_running(self, proc: Proc, logdir: Path) -> None:
        # With RUST_LOG=warn there is no "running" line: wait for the streams instead.
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
            if any((self.root / "nats").rglob("process*")) or "is running" in proc.tail():
                time.sleep(0.5)
                return
            time.sleep(0.1)
        time.sleep(1)

    def nats_counters(self) -> dict:
        """What nats-server counted: messages received from clients (every publish, ack,
        KV or API request and pull request is one), and each stream's last sequence (the
        writes into it, KV buckets included)."""
        def get(path: str) -> dict:
            with urllib.request.urlopen(self.monitor + path, timeout=10) as r:
                return json.load(r)
        varz = get("/varz")
        streams = {}
        for acc in get("/jsz?streams=true").get("account_details", []):
            for st in acc.get("stream_detail", []):
                streams[st["name"]] = st["state"]["last_seq"]
        return {"in_msgs": varz["in_msgs"], "streams": streams}

    def groups(self) -> dict[str, list[int]]:
        """The CPU charged to postwire: its processes and nats-server. The S3 server is
        storage infrastructure, like the receiver: measured, reported apart."""
        g = {stage: [p.pid for p in ps] for stage, ps in self.procs.items()}
        g["nats-server"] = [self.nats.pid]
        if self.s3:
            g["storage (s3s-fs)"] = [self.s3.pid]
        return g

    def pids(self) -> dict[str, int]:
        out = {p.name: p.pid for ps in self.procs.values() for p in ps}
        out["nats-server"] = self.nats.pid
        return out

    def stop(self) -> None:
        for ps in self.procs.values():
            for p in ps:
                p.stop()
        self.nats.stop()
        if self.s3:
            self.s3.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# --- Postfix smtpd + pipe(8) + curl -----------------------------------------------------------

def _run_tty(*args: str) -> str:
    # Postfix commands report to stderr only when it is a terminal; `script` gives them one.
    return subprocess.run(["script", "-qc", " ".join(args), "/dev/null"], capture_output=True,
                          text=True, timeout=60).stdout


class PostfixPipe(System):
    """A private Postfix instance (does not touch the system one): smtpd, then pipe(8)
    runs `curl --data-binary @-` for each message (bench/peers/postfix)."""

    def __init__(self, url: str, logdir: Path) -> None:
        self.name = "postfix+pipe+curl"
        # Postfix daemons run as the postfix user: the folders must be reachable by it.
        self.root = Path(tempfile.mkdtemp(prefix="pwbench-postfix-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.etc, spool, data = self.root / "etc", self.root / "spool", self.root / "data"
        for d in (self.etc, spool, data):
            d.mkdir()
        shutil.chown(data, user="postfix")
        self.port = free_port()
        (self.etc / "main.cf").write_text((PEERS / "postfix/main.cf").read_text().format(
            spool=spool, data=data, root=self.root))
        shutil.copy("/etc/postfix/master.cf", self.etc / "master.cf")
        for line in (PEERS / "postfix/master.cf.add").read_text().splitlines():
            if line.strip():
                key, value = (s.strip() for s in line.split("=", 1))
                subprocess.run(["postconf", "-c", str(self.etc), "-M",
                                f"{key}={value.format(port=self.port, url=url)}"], check=True)
        subprocess.run(["postconf", "-c", str(self.etc), "-F", "*/*/chroot = n"], check=True)
        out = _run_tty("/usr/sbin/postfix", "-c", str(self.etc), "start")
        try:
            wait_port(self.port, 30, "postfix")
        except RuntimeError as e:
            raise RuntimeError(f"{e}: {out}\n{self.log()}") from None
        self.master = int((spool / "pid/master.pid").read_text().split()[0])

    def log(self) -> str:
        f = self.root / "maillog"
        return f.read_text(errors="replace")[-3000:] if f.exists() else ""

    def groups(self) -> dict[str, list[int]]:
        return {"postfix": [self.master]}

    def stop(self) -> None:
        _run_tty("/usr/sbin/postfix", "-c", str(self.etc), "abort")
        time.sleep(0.5)
        shutil.rmtree(self.root, ignore_errors=True)


# --- Haraka -----------------------------------------------------------------------------------

class Haraka(System):
    """Haraka (npm, version in bench/peers/haraka/package.json) with rcpt_to.in_host_list
    and the http_forward queue plugin; one worker process per CPU."""

    def __init__(self, haraka_bin: Path, url: str, logdir: Path) -> None:
        self.name = "haraka"
        self.root = Path(tempfile.mkdtemp(prefix="pwbench-haraka-"))
        self.port = free_port()
        # Haraka's own defaults (connection.ini …), then ours over them.
        shutil.copytree(haraka_bin.resolve().parents[1] / "config", self.root / "config")
        shutil.copytree(PEERS / "haraka/config", self.root / "config", dirs_exist_ok=True)
        shutil.copytree(PEERS / "haraka/plugins", self.root / "plugins")
        for ours in (PEERS / "haraka/config").iterdir():
            f = self.root / "config" / ours.name
            f.write_text(f.read_text().replace("{port}", str(self.port)).replace("{url}", url))
        self.proc = Proc("haraka", [str(haraka_bin), "-c", str(self.root)], logdir)
        wait_port(self.port, 60, "haraka", self.proc)
        time.sleep(1)  # the other cluster workers

    def groups(self) -> dict[str, list[int]]:
        return {"haraka": [self.proc.pid]}

    def stop(self) -> None:
        self.proc.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# --- aiosmtpd + aiohttp -----------------------------------------------------------------------

class Aiosmtpd(System):
    """bench/peers/aiosmtpd_relay.py: one asyncio process per CPU on one port."""

    def __init__(self, python: Path, url: str, logdir: Path) -> None:
        self.name = "aiosmtpd+aiohttp"
        self.port = free_port()
        self.proc = Proc("aiosmtpd", [str(python), str(PEERS / "aiosmtpd_relay.py"),
                                      "--listen", f"127.0.0.1:{self.port}", "--url", url],
                         logdir)
        wait_port(self.port, 30, "aiosmtpd", self.proc)
        time.sleep(0.5)

    def groups(self) -> dict[str, list[int]]:
        return {"aiosmtpd": [self.proc.pid]}

    def stop(self) -> None:
        self.proc.stop()
