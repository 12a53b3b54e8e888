"""Accepted means on disk (docs/operations.md, "Durability").

Every nats-server configuration postwire ships syncs each write before acknowledging it
(`sync_interval: always`), which each test here proves by starting a real nats-server with that
file and reading its `/varz`. The real `postwire` binary refuses to run ingest against a server
that does not (exit code 2, unless `nats.allow_unsynced`), and `postwire doctor` says whether
the deployment is durable (exit 0) or not (exit 1).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from conftest import dev_config
from support import (
    REPO,
    Process,
    attach_logs,
    child_env,
    free_port,
    nats_server_path,
    postwire_path,
    register_monitor,
)

DEPLOY_NATS = REPO / "deploy" / "nats" / "nats.conf"
DEV_NATS = REPO / "deploy" / "nats" / "dev.conf"
OPERATIONS = REPO / "docs" / "operations.md"


def varz(monitor: str) -> dict:
    with urllib.request.urlopen(f"{monitor}/varz", timeout=5) as r:
        return json.load(r)


def start_nats(request, tmp_path, name: str, conf: Path | None, *extra: str):
    """nats-server with `conf` (if any; its store_dir moved into tmp_path), on free local
    ports."""
    port, mport = free_port(), free_port()
    store = tmp_path / f"{name}-store"
    store.mkdir()
    argv = [nats_server_path()]
    if conf is None:
        argv += ["-sd", str(store)]
    else:
        text, n = re.subn(r"store_dir:\s*\S+", f'store_dir: "{store}"', conf.read_text())
        assert n == 1, f"{conf} sets no store_dir"
        local = tmp_path / f"{name}.conf"
        local.write_text(text)
        argv += ["-c", str(local)]
    argv += ["-js", "-a", "127.0.0.1", "-p", str(port), "-m", str(mport), *extra]
    process = Process(name, argv, tmp_path)
    attach_logs(request, process)
    process.wait_for_port(port, timeout=15)
    process.wait_for_port(mport, timeout=15)
    url, monitor = f"nats://127.0.0.1:{port}", f"http://127.0.0.1:{mport}"
    register_monitor(url, monitor)
    return process, url, monitor


def cluster_confs() -> list[str]:
    blocks, current = [], None
    for line in OPERATIONS.read_text().splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    confs = [b for b in blocks if "cluster {" in b]
    assert confs, "docs/operations.md shows no nats-server cluster config"
    return confs


@pytest.mark.parametrize("conf", [DEPLOY_NATS, DEV_NATS], ids=["compose", "make-run"])
def test_shipped_nats_configs_sync_every_write(request, tmp_path, conf):
    process, _, monitor = start_nats(request, tmp_path, "nats", conf)
    try:
        js = varz(monitor)["jetstream"]["config"]
        assert js.get("sync_always") is True, js
    finally:
        process.stop()


def test_documented_cluster_config_syncs_every_write(request, tmp_path):
    conf = tmp_path / "cluster.conf"
    conf.write_text(cluster_confs()[0])
    # Its own route port on loopback; the documented routes point at hosts that do not
    # exist here, which the server only logs.
    process, _, monitor = start_nats(request, tmp_path, "nats-cluster", conf,
                                     "--cluster", f"nats://127.0.0.1:{free_port()}")
    try:
        v = varz(monitor)
        assert v["jetstream"]["config"].get("sync_always") is True, v["jetstream"]
        assert v["cluster"]["name"] == "postwire"
    finally:
        process.stop()


def run_postwire(tmp_path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([postwire_path(), *args], capture_output=True, text=True,
                          timeout=timeout, env=child_env(), cwd=tmp_path)


def test_ingest_refuses_a_server_that_acknowledges_unsynced_writes(request, tmp_path, receiver):
    # nats-server's defaults: JetStream syncs on a two-minute timer.
    process, url, _ = start_nats(request, tmp_path, "nats-default", None)
    try:
        config = tmp_path / "postwire.toml"
        config.write_text(dev_config(url, free_port(), receiver.url()))
        result = run_postwire(tmp_path, "ingest", "--config", str(config))
        assert result.returncode == 2, result.stderr
        assert "acknowledges writes before they are on disk" in result.stderr, result.stderr
        assert "sync_interval: always" in result.stderr, result.stderr

        doctor = run_postwire(tmp_path, "doctor", "--config", str(config))
        assert doctor.returncode == 1, doctor.stdout + doctor.stderr
        assert "syncs every 120 s" in doctor.stdout, doctor.stdout
        assert "NOT durable" in doctor.stdout, doctor.stdout

        # Said on purpose, the operator may take the risk: ingest starts and listens.
        smtp_port = free_port()
        relaxed = tmp_path / "relaxed.toml"
        relaxed.write_text(dev_config(url, smtp_port, receiver.url()).replace(
            "[nats]\n", "[nats]\nallow_unsynced = true\n", 1))
        ingest = Process("postwire-ingest", [postwire_path(), "ingest", "--config", str(relaxed)],
                         tmp_path, env=child_env(RUST_LOG="info"))
        attach_logs(request, ingest)
        try:
            ingest.wait_for_port(smtp_port, timeout=30)
            assert "nats.allow_unsynced is set" in ingest.stdout() + ingest.stderr()
        finally:
            assert ingest.stop(signal.SIGTERM) is not None
    finally:
        process.stop()


def test_ingest_refuses_when_the_setting_cannot_be_read(tmp_path, nats, receiver):
    config = tmp_path / "postwire.toml"
    dead = f"http://127.0.0.1:{free_port()}"
    config.write_text(dev_config(nats.url, free_port(), receiver.url()).replace(
        f'monitor_url = "{nats.monitor_url}"', f'monitor_url = "{dead}"', 1))
    result = run_postwire(tmp_path, "ingest", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert f"cannot read the JetStream settings of nats-server at {dead}/varz" in result.stderr


def test_doctor_reports_a_durable_deployment(postwire_dev):
    # postwire dev has created the streams on the durable test server.
    result = run_postwire(postwire_dev.config_path.parent, "doctor", "--config",
                          str(postwire_dev.config_path))
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "sync_interval always" in out, out
    assert re.search(r"ok +MAIL +file R1 synced", out), out
    assert re.search(r"ok +OUTBOX +file R1 synced", out), out
    assert re.search(r"ok +AUDIT +file R1 async", out), out
    assert "Durable: a mail answered 250 is on disk." in out, out
