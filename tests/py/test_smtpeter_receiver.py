"""SMTPeter/Copernica receivers accept postwire's draft-cavage deliveries unchanged.

tests/php/smtpeter_receiver.php checks requests under PHP's built-in server by the rules of
Copernica's PHP library (CopernicaRequest, Digest, DkimKey, Verifier; each check there names
its rule). postwire delivers to it with `profile = "smtpeter"`, a 2048-bit key from
`postwire keys generate --bits 2048` and the record `postwire keys dns-record --form smtpeter`
prints. The valid delivery is accepted (204, so postwire counts it delivered); replays of it
with a changed body, an old Date, the wrong key, an upper-case digest name or the record in
the spaced DKIM form are refused, each for the reason its rule gives.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from support import REPO, Process, attach_logs, child_env, dev_config, free_port, postwire_path, send_mail, start_dev

RECEIVER = REPO / "tests" / "php" / "smtpeter_receiver.php"
DOMAIN = "acme.example"
ACCOUNT = "4711"


def postwire(*args: str) -> str:
    r = subprocess.run([postwire_path(), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def txt_of(zone_line: str) -> str:
    """The TXT text as PHP's dns_get_record() gives it: the quoted strings joined."""
    return "".join(re.findall(r'"([^"]*)"', zone_line))


class PhpReceiver:
    def __init__(self, request, tmp_path: Path, dkim_txt: str):
        php = shutil.which("php")
        if php is None:
            pytest.fail("php is missing: `make tools` installs php-cli")
        self.port = free_port()
        self.log = tmp_path / "php-requests.jsonl"
        self.config_path = tmp_path / "receiver.json"
        self.config = {"dkim_txt": dkim_txt, "account_id": ACCOUNT,
                       "keyid_suffix": f"._postwire.{DOMAIN}", "clock_offset": 0,
                       "log": str(self.log)}
        self.write()
        self.process = Process("php", [php, "-S", f"127.0.0.1:{self.port}", str(RECEIVER)],
                               tmp_path, env=child_env(PW_CONFIG=str(self.config_path)))
        attach_logs(request, self.process)
        # Stopped when the test ends, whatever happens in it (PHP's server outlives pytest).
        request.addfinalizer(self.process.stop)
        self.process.wait_for_port(self.port, timeout=15)

    def write(self, **changes) -> None:
        self.config.update(changes)
        self.config_path.write_text(json.dumps(self.config))

    def results(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def wait_for(self, n: int, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.results()) < n:
            assert time.monotonic() < deadline, f"the PHP receiver got {self.results()}"
            time.sleep(0.05)
        return self.results()

    def replay(self, original: dict, body: bytes | None = None, **headers: str) -> dict:
        """Sends `original` again, with `body` and headers changed; returns the verdict."""
        sent = dict(original["headers"])
        for name, value in headers.items():
            name = name.replace("_", "-")
            sent = {k: v for k, v in sent.items() if k.lower() != name.lower()}
            sent[name] = value
        data = base64.b64decode(original["body_b64"]) if body is None else body
        if body is not None:
            sent = {k: v for k, v in sent.items() if k.lower() != "content-length"}
            sent["Content-Length"] = str(len(data))
        before = len(self.results())
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.putrequest(original["method"], original["uri"], skip_host=True,
                        skip_accept_encoding=True)
        for name, value in sent.items():
            conn.putheader(name, value)
        conn.endheaders(data)
        status = conn.getresponse().status
        conn.close()
        verdict = self.wait_for(before + 1)[-1]
        assert (status == 204) == verdict["ok"], (status, verdict)
        return verdict


def test_an_smtpeter_style_receiver_accepts_the_smtpeter_profile(request, tmp_path, nats):
    key = tmp_path / "r1.pem"
    postwire("keys", "generate", "--alg", "rsa", "--bits", "2048", "--out", str(key))
    record = postwire("keys", "dns-record", "--key", str(key), "--selector", "r1",
                      "--domain", DOMAIN, "--form", "smtpeter").strip()
    assert record.startswith(f'r1._postwire.{DOMAIN}. TXT "v=DKIM1;k=rsa;p='), record
    php = PhpReceiver(request, tmp_path, txt_of(record))

    port = free_port()
    config = dev_config(nats.url, port, f"http://127.0.0.1:{php.port}/webhooks/smtpeter?x=1") + f"""
[[tenants.acme.endpoints.hook.signing]]
scheme = "cavage"
profile = "smtpeter"
keyid = "r1._postwire.{DOMAIN}"
key_file = "{key}"
account_id = "{ACCOUNT}"
"""
    dev = start_dev(request, tmp_path, config, port)
    try:
        send_mail(port, "support@acme.test", b"Subject: to smtpeter\r\n\r\nbody\r\n")
        [delivered] = php.wait_for(1)
    finally:
        dev.stop(signal.SIGINT)
    assert delivered["ok"], delivered["reason"]
    headers = {k.lower(): v for k, v in delivered["headers"].items()}
    assert headers["digest"].startswith("sha-256="), "Digest: lower-case algorithm name"
    assert headers["x-copernica-id"] == ACCOUNT

    # The same request again is still accepted (the receiver is deterministic) ...
    assert php.replay(delivered)["ok"]
    # ... Digest: a changed body no longer matches the digest.
    body = base64.b64decode(delivered["body_b64"]).replace(b"to smtpeter", b"to somebody")
    assert php.replay(delivered, body=body)["reason"] == "Digest header does not match body data"
    # Digest: the table knows lower-case names only (postwire's default profile sends SHA-256=).
    upper = headers["digest"].replace("sha-256=", "SHA-256=")
    assert php.replay(delivered, Digest=upper)["reason"] == "Invalid hashing algorithm SHA-256"
    # CopernicaRequest: a request whose Date is more than a minute old.
    php.write(clock_offset=120)
    assert php.replay(delivered)["reason"] == "request older than 1 minute"
    php.write(clock_offset=0)
    # CopernicaRequest: x-copernica-id must carry the receiver's own account id.
    php.write(account_id="1234")
    assert "x-copernica-id" in php.replay(delivered)["reason"]
    php.write(account_id=ACCOUNT)
    # Verifier: the signature does not verify with another key published under the keyId.
    other = tmp_path / "other.pem"
    postwire("keys", "generate", "--alg", "rsa", "--bits", "2048", "--out", str(other))
    php.write(dkim_txt=txt_of(postwire("keys", "dns-record", "--key", str(other), "--selector",
                                       "r1", "--domain", DOMAIN, "--form", "smtpeter")))
    assert php.replay(delivered)["reason"] == "signature is invalid"
    # DkimKey: tags split on '=' without trimming, so the spaced DKIM form loses p=.
    spaced = txt_of(postwire("keys", "dns-record", "--key", str(key), "--selector", "r1",
                             "--domain", DOMAIN))
    assert spaced.startswith("v=DKIM1; k=rsa; p=")
    php.write(dkim_txt=spaced)
    assert php.replay(delivered)["reason"] == "the DNS key does not parse"
    php.write(dkim_txt=txt_of(record))
    assert php.replay(delivered)["ok"]


def test_the_smtpeter_record_form_refuses_keys_their_parser_cannot_read(tmp_path):
    key = tmp_path / "r3072.pem"
    postwire("keys", "generate", "--alg", "rsa", "--out", str(key))  # 3072 bits
    r = subprocess.run([postwire_path(), "keys", "dns-record", "--key", str(key), "--selector",
                        "r1", "--domain", DOMAIN, "--form", "smtpeter"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--bits 2048" in r.stderr, r.stderr
