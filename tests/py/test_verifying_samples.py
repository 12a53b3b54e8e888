"""The verifier samples of docs/verifying/<language>/ are what docs/verifying.md shows, and
each of them, run by its language's own toolchain, accepts real postwire deliveries and
refuses changed ones.

One postwire run delivers a mail to two endpoints: `hook` signs Standard Webhooks v1 (secret)
and v1a (Ed25519 `whpk_` key) and RFC 9421 (Ed25519, keyid in DNS); `cav` signs draft-cavage
(RSA, keyid in DNS). The keys are published on a real DNS server on loopback. Every sample
then gets, per scheme: the delivery as received (verified), its body changed, a clock 10
minutes later (stale), and the wrong key (another secret, or another DNS server publishing
another key under the same name) — each of the last three refused.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from dns_server import DnsServer
from signing import generate, postwire as run_postwire
from support import REPO, SECRET, child_env, dev_config, free_port, send_mail, start_dev

SAMPLES = REPO / "docs" / "verifying"
DOC = REPO / "docs" / "verifying.md"
DOMAIN = "acme.example"
OTHER_SECRET = "whsec_" + base64.b64encode(b"another secret, 32 bytes long!!!").decode()


def tools_dir() -> Path:
    return Path(os.environ.get("POSTWIRE_TOOLS") or
                Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "postwire")


def runner(language: str, tmp: Path) -> list[str]:
    """The command running `language`'s sample as a script (case JSON on stdin)."""
    folder = SAMPLES / language
    need = lambda tool: shutil.which(tool) or pytest.fail(f"{tool} is missing: `make tools` installs it")  # noqa: E731
    if language == "python":
        return [sys.executable, str(folder / "verify.py")]
    if language == "node":
        return [need("node"), str(folder / "verify.js")]
    if language == "ruby":
        return [need("ruby"), str(folder / "verify.rb")]
    if language == "php":
        return [need("php"), str(folder / "verify.php")]
    if language == "go":
        binary = tmp / "verify-go"
        env = child_env(GOCACHE=str(tools_dir() / "go-cache"), GOFLAGS="-mod=mod", GO111MODULE="off")
        r = subprocess.run([need("go"), "build", "-o", str(binary), str(folder / "verify.go")],
                           capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 0, r.stderr
        return [str(binary)]
    if language == "rust":
        target = os.environ.get("CARGO_TARGET_DIR") or str(tools_dir() / "target")
        binary = Path(target) / "debug" / "examples" / "verify_webhook"
        assert binary.exists(), f"{binary} missing: `cargo build --workspace --all-targets` builds it"
        return [str(binary)]
    raise AssertionError(language)


LANGUAGES = ["python", "node", "go", "ruby", "php", "rust"]
SAMPLE_FILES = {"python": "python/verify.py", "node": "node/verify.js", "go": "go/verify.go",
                "ruby": "ruby/verify.rb", "php": "php/verify.php",
                "rust": "../../sign/examples/verify_webhook.rs"}


class Deliveries:
    """What one postwire run delivered, and the keys to check it."""

    def __init__(self, hook, cav, public_key: str, good_dns: DnsServer, bad_dns: DnsServer,
                 published: dict):
        self.hook, self.cav, self.public_key = hook, cav, public_key
        self.good_dns, self.bad_dns = good_dns, bad_dns
        # DNS server address -> {name: TXT text}: for PHP, whose dns_get_record() cannot be
        # pointed at a test server.
        self.published = published


_CAPTURED: dict[str, Deliveries] = {}


@pytest.fixture(scope="module")
def dns_servers():
    good, bad = DnsServer(), DnsServer()
    yield good, bad
    good.close()
    bad.close()


@pytest.fixture
def deliveries(request, tmp_path, nats, receiver, dns_servers) -> Deliveries:
    """Captured once per module (the first test's nats-server and receiver)."""
    if "d" in _CAPTURED:
        return _CAPTURED["d"]
    good, bad = dns_servers
    # The endpoint's secret (dev_config's `secret`) signs v1; the Ed25519 key v1a and RFC 9421.
    ed_private, _ = generate(tmp_path, "s1", "ed25519")
    other_ed, _ = generate(tmp_path, "s1-other", "ed25519")
    # 2048-bit RSA keys: their DNS answer fits in 512 bytes, all Ruby's resolver reads over
    # UDP (the test's DNS server has no TCP to fall back to).
    rsa_private, other_rsa = tmp_path / "r1.pem", tmp_path / "r1-other.pem"
    for path in (rsa_private, other_rsa):
        run_postwire("keys", "generate", "--alg", "rsa", "--bits", "2048", "--out", path)

    published: dict[str, dict[str, str]] = {good.address: {}, bad.address: {}}

    def publish(server: DnsServer, key: Path, selector: str) -> None:
        line = run_postwire("keys", "dns-record", "--key", key, "--selector", selector,
                            "--domain", DOMAIN).stdout
        text = "".join(re.findall(r'"([^"]*)"', line))
        server.txt(f"{selector}._postwire.{DOMAIN}", text)
        published[server.address][f"{selector}._postwire.{DOMAIN}"] = text

    publish(good, ed_private, "s1")
    publish(good, rsa_private, "r1")
    publish(bad, other_ed, "s1")
    publish(bad, other_rsa, "r1")
    from cryptography.hazmat.primitives import serialization

    raw = serialization.load_pem_private_key(ed_private.read_bytes(), None).public_key() \
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    whpk = "whpk_" + base64.b64encode(raw).decode()

    port = free_port()
    config = dev_config(nats.url, port, receiver.url("/hooks/acme?via=postwire"))
    config = config.replace('endpoints = ["hook"]', 'endpoints = ["hook", "cav"]', 1) + f"""
[[tenants.acme.endpoints.hook.signing]]
scheme = "standard-webhooks"
key_file = "{ed_private}"

[[tenants.acme.endpoints.hook.signing]]
scheme = "rfc9421"
alg = "ed25519"
keyid = "s1._postwire.{DOMAIN}"
key_file = "{ed_private}"

[tenants.acme.endpoints.cav]
url = "{receiver.url('/hooks/cavage')}"
allow_http = true

[[tenants.acme.endpoints.cav.signing]]
scheme = "cavage"
keyid = "r1._postwire.{DOMAIN}"
key_file = "{rsa_private}"
"""
    dev = start_dev(request, tmp_path, config, port)
    try:
        send_mail(port, "support@acme.test",
                  "Subject: verify me\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                  "Grüße from the samples\r\n".encode())
        got = receiver.wait_for(2)
    finally:
        dev.stop(signal.SIGINT)
    by_path = {r.path.split("?")[0]: r for r in got}
    _CAPTURED["d"] = Deliveries(by_path["/hooks/acme"], by_path["/hooks/cavage"], whpk, good, bad,
                                published)
    return _CAPTURED["d"]


def capture(received, receiver_port: int) -> dict:
    return {"method": received.method,
            "url": f"http://127.0.0.1:{receiver_port}{received.path}",
            "headers": [[k, v] for k, v in received.headers.items()],
            "body_base64": base64.b64encode(received.body).decode()}


def cases(d: Deliveries) -> list[tuple[str, dict, bool]]:
    """(name, case, expect verified) for every scheme."""
    port = int(d.hook.headers["host"].rsplit(":", 1)[1])
    out = []
    for scheme, received in (("v1", d.hook), ("v1a", d.hook), ("rfc9421", d.hook), ("cavage", d.cav)):
        if scheme == "cavage":
            sent = int(parsedate_to_datetime(received.headers["date"]).timestamp())
        elif scheme == "rfc9421":
            sent = int(re.search(r";created=(\d+)", received.headers["signature-input"]).group(1))
        else:
            sent = int(received.headers["webhook-timestamp"])
        base = {"scheme": scheme, "request": capture(received, port), "now": sent + 1,
                "secret": SECRET, "public_key": d.public_key,
                "dns_server": d.good_dns.address, "domain": DOMAIN}
        out.append((f"{scheme} as delivered", base, True))
        tampered = json.loads(json.dumps(base))
        body = received.body.replace(b"verify me", b"verify us")
        assert body != received.body
        tampered["request"]["body_base64"] = base64.b64encode(body).decode()
        out.append((f"{scheme} with a changed body", tampered, False))
        out.append((f"{scheme} 10 minutes later", dict(base, now=sent + 600), False))
        wrong = {"v1": {"secret": OTHER_SECRET},
                 "v1a": {"public_key": "whpk_" + base64.b64encode(b"\x01" * 32).decode()},
                 "rfc9421": {"dns_server": d.bad_dns.address},
                 "cavage": {"dns_server": d.bad_dns.address}}[scheme]
        out.append((f"{scheme} with the wrong key", dict(base, **wrong), False))
    for _, case, _ in out:
        case["txt"] = d.published[case["dns_server"]]
    return out


@pytest.mark.timeout(300)  # 16 cases, each a fresh interpreter (and a DNS lookup)
@pytest.mark.parametrize("language", LANGUAGES)
def test_sample_accepts_deliveries_and_refuses_changed_ones(language, deliveries, tmp_path):
    command = runner(language, tmp_path)
    wrong = []
    for name, case, expected in cases(deliveries):
        r = subprocess.run(command, input=json.dumps(case), capture_output=True, text=True,
                           timeout=60)
        if os.environ.get("PW_SAMPLES_DEBUG"):
            print(name, r.returncode, r.stdout.strip(), r.stderr.strip()[-300:])
        verified = r.returncode == 0 and r.stdout.strip() == "verified"
        refused = r.returncode == 1 and r.stdout.startswith("refused")
        if (expected and not verified) or (not expected and not refused):
            wrong.append(f"{name}: exit {r.returncode}, {r.stdout.strip()!r} {r.stderr.strip()[-600:]!r}")
    assert not wrong, f"{language}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_doc_shows_the_sample_file_verbatim(language):
    text = (SAMPLES / SAMPLE_FILES[language]).read_text()
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```$", DOC.read_text(), re.S | re.M)
    assert text in blocks, (
        f"docs/verifying.md does not show docs/verifying/{SAMPLE_FILES[language]} verbatim: "
        "run scripts/embed-samples.py")
