"""Real deliveries from the deliver worker carry every configured scheme at once, and
third-party verifiers accept them: Standard Webhooks v1 (`standardwebhooks`) and RFC 9421
with Content-Digest (`http-message-signatures`); a retry is signed afresh over the same
body and digest."""

from __future__ import annotations

import signal
import smtplib

from http_message_signatures import HTTPMessageVerifier, MappingKeyResolver, algorithms
from standardwebhooks import Webhook

from signing import ALL_COMPONENTS, generate
from support import SECRET, Process, attach_logs, child_env, dev_config, free_port, postwire_path

KEYID = "s1._postwire.acme.test"


class Req:
    def __init__(self, r, url):
        self.method, self.url, self.headers = "POST", url, r.headers


def test_deliveries_are_signed_with_every_configured_scheme(request, tmp_path, nats, receiver):
    private, public = generate(tmp_path, "k", "ed25519")
    port = free_port()
    url = receiver.url("/hook?src=postwire")
    cfg = dev_config(nats.url, port, url) + f"""
[[tenants.acme.endpoints.hook.signing]]
scheme = "rfc9421"
alg = "ed25519"
keyid = "{KEYID}"
key_file = "{private}"
"""
    (tmp_path / "postwire.toml").write_text(cfg)
    receiver.status = 503  # the first attempt fails: the retry must be signed afresh
    dev = Process("dev", [postwire_path(), "dev", "--config", str(tmp_path / "postwire.toml"), "--no-sink"],
                  tmp_path, env=child_env(RUST_LOG="info"))
    attach_logs(request, dev)
    try:
        dev.wait_for_port(port)
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.sendmail("a@example.com", ["support@acme.test"], b"Subject: signed\r\n\r\nbody\r\n")
        receiver.wait_for(1)
        receiver.status = 204
        first, second = receiver.wait_for(2)[:2]
    finally:
        dev.stop(signal.SIGINT)
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519,
                                   key_resolver=MappingKeyResolver(public_keys={KEYID: public.read_bytes()}, private_keys={}))
    for r in (first, second):
        Webhook(SECRET).verify(r.body, r.headers)
        [result] = verifier.verify(Req(r, url), require_components=ALL_COMPONENTS, expect_tag="postwire", body=r.body)
        assert result.parameters["keyid"] == KEYID
    assert first.body == second.body and first.headers["content-digest"] == second.headers["content-digest"]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.headers["signature"] != second.headers["signature"], "signed again at each attempt"
    tampered = first.body.replace(b"signed", b"forged")
    try:
        verifier.verify(Req(first, url), require_components=ALL_COMPONENTS, expect_tag="postwire", body=tampered)
        raise AssertionError("a changed body must not verify")
    except AssertionError:
        raise
    except Exception:
        pass


def test_jwks_serves_the_keyring_after_rotation(request, tmp_path, nats, receiver):
    import json
    import subprocess
    import urllib.request

    keyring = tmp_path / "keys"
    rotate = lambda sel: subprocess.run(  # noqa: E731
        [postwire_path(), "keys", "rotate", "--keyring", str(keyring), "--domain", "acme.test",
         "--selector", sel], check=True, capture_output=True, text=True)
    rotate("s1")
    rotate("s2")
    port, admin = free_port(), free_port()
    cfg = dev_config(nats.url, port, receiver.url(), admin_port=admin) + f"""
[[tenants.acme.endpoints.hook.signing]]
scheme = "rfc9421"
alg = "ed25519"
keyring = "{keyring}"
"""
    (tmp_path / "postwire.toml").write_text(cfg)
    dev = Process("dev", [postwire_path(), "dev", "--config", str(tmp_path / "postwire.toml"), "--no-sink"],
                  tmp_path, env=child_env(RUST_LOG="info", POSTWIRE_ADMIN_TOKEN="t" * 24))
    attach_logs(request, dev)
    try:
        dev.wait_for_port(port)
        dev.wait_for_port(admin)
        doc = json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin}/.well-known/postwire-keys.json", timeout=10))
        kids = sorted(k["kid"] for k in doc["keys"])
        assert kids == ["s1._postwire.acme.test", "s2._postwire.acme.test"], doc
        assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and "d" not in k for k in doc["keys"])
        with smtplib.SMTP("127.0.0.1", port) as c:
            c.sendmail("a@example.com", ["support@acme.test"], b"Subject: rotated\r\n\r\nx\r\n")
        r = receiver.wait_for(1)[0]
        assert 's1._postwire.acme.test' in r.headers["signature-input"] and 's2._postwire.acme.test' in r.headers["signature-input"], \
            "during the overlap both selectors sign"
    finally:
        dev.stop(signal.SIGINT)
