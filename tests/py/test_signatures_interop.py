"""Interop both ways between postwire's signatures and the receivers' libraries:
Python `standardwebhooks` (v1), `cryptography` (v1a, which standardwebhooks does not
implement), Python `http-message-signatures` (RFC 9421) and npm `http-signature` (Joyent
draft-cavage). Requests are produced by the real binary (`postwire sign-request`) and checked by
`postwire verify`.
"""

from __future__ import annotations

import base64
import datetime
import secrets
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier, MappingKeyResolver, algorithms
from standardwebhooks import Webhook

from signing import (
    ALL_COMPONENTS, body_of, generate, headers_of, node, postwire, sign_request, write_capture,
)
from support import SECRET

URL = "https://hooks.acme.test/in?src=postwire"
BODY = b'{"schema":"postwire.email.v1","id":"msg_test","subject":"caf\xc3\xa9"}'
KEYID = "s1._postwire.acme.test"


class Message:
    """The request shape http-message-signatures reads and writes."""

    def __init__(self, capture: dict):
        self.method = capture["method"]
        self.url = capture["url"]
        self.headers = headers_of(capture)


# --- Standard Webhooks ------------------------------------------------------------------------


def test_standardwebhooks_verifies_our_v1(tmp_path):
    cap = sign_request(tmp_path, f'[[signing]]\nscheme = "standard-webhooks"\nsecret = "{SECRET}"\n', URL, BODY)
    payload = Webhook(SECRET).verify(body_of(cap), headers_of(cap))
    assert payload["id"] == "msg_test"
    with pytest.raises(Exception):
        Webhook(SECRET).verify(body_of(cap) + b" ", headers_of(cap))


def test_we_verify_standardwebhooks_signatures(tmp_path):
    ts = datetime.datetime.now(tz=datetime.timezone.utc)
    sig = Webhook(SECRET).sign("msg_py", ts, BODY.decode())
    cap = {"method": "POST", "url": URL, "body": BODY.decode(), "headers": [
        ["webhook-id", "msg_py"], ["webhook-timestamp", str(int(ts.timestamp()))],
        ["webhook-signature", sig], ["content-type", "application/json"]]}
    out = postwire("verify", write_capture(tmp_path, cap), "--secret", SECRET).stdout
    assert "verified (standard-webhooks)" in out
    postwire("verify", write_capture(tmp_path, cap), "--secret", "whsec_" + "A" * 32, check=1)


def test_v1a_verifies_with_cryptography(tmp_path):
    private, _ = generate(tmp_path, "ed")
    cap = sign_request(tmp_path, f'[[signing]]\nscheme = "standard-webhooks"\nkey_file = "{private}"\n', URL, BODY)
    h = headers_of(cap)
    key = serialization.load_pem_private_key(private.read_bytes(), password=None).public_key()
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body_of(cap)
    versions = dict(s.split(",", 1) for s in h["webhook-signature"].split())
    key.verify(base64.b64decode(versions["v1a"]), signed)  # raises when wrong


# --- RFC 9421 ---------------------------------------------------------------------------------


def _ours(tmp_path, alg: str):
    """(signing toml, key for MappingKeyResolver, http-message-signatures algorithm)."""
    if alg == "hmac-sha256":
        return (f'[[signing]]\nscheme = "rfc9421"\nalg = "hmac-sha256"\nkeyid = "{KEYID}"\nsecret = "{SECRET}"\n',
                base64.b64decode(SECRET.removeprefix("whsec_")), algorithms.HMAC_SHA256)
    private, public = generate(tmp_path, "k", "rsa" if alg == "rsa-pss-sha512" else "ed25519")
    algo = algorithms.RSA_PSS_SHA512 if alg == "rsa-pss-sha512" else algorithms.ED25519
    return (f'[[signing]]\nscheme = "rfc9421"\nalg = "{alg}"\nkeyid = "{KEYID}"\nkey_file = "{private}"\n',
            public.read_bytes(), algo)


@pytest.mark.parametrize("alg", ["ed25519", "hmac-sha256", "rsa-pss-sha512"])
def test_http_message_signatures_verifies_ours(tmp_path, alg):
    toml, key, algo = _ours(tmp_path, alg)
    cap = sign_request(tmp_path, toml, URL, BODY)
    verifier = HTTPMessageVerifier(signature_algorithm=algo,
                                   key_resolver=MappingKeyResolver(public_keys={KEYID: key}, private_keys={}))
    [result] = verifier.verify(Message(cap), require_components=ALL_COMPONENTS, expect_tag="postwire",
                               body=body_of(cap))
    assert result.parameters["keyid"] == KEYID
    assert result.body == body_of(cap)
    tampered = dict(cap, body_base64=base64.b64encode(b"{}").decode())
    with pytest.raises(Exception):
        verifier.verify(Message(tampered), require_components=ALL_COMPONENTS, expect_tag="postwire", body=b"{}")


def _theirs(tmp_path, alg: str):
    """(private key for their signer, postwire verify key arguments, algorithm)."""
    if alg == "hmac-sha256":
        raw = secrets.token_bytes(32)
        return raw, ["--hmac-secret", f"{KEYID}=whsec_{base64.b64encode(raw).decode()}"], algorithms.HMAC_SHA256
    if alg == "ed25519":
        key, algo = ed25519.Ed25519PrivateKey.generate(), algorithms.ED25519
    else:
        key, algo = rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithms.RSA_PSS_SHA512
    pub = tmp_path / "their.pub.pem"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return key, ["--public-key", f"{KEYID}={pub}"], algo


@pytest.mark.parametrize("alg", ["ed25519", "hmac-sha256", "rsa-pss-sha512"])
def test_we_verify_http_message_signatures_requests(tmp_path, alg):
    key, args, algo = _theirs(tmp_path, alg)
    cap = {"method": "POST", "url": URL, "body_base64": base64.b64encode(BODY).decode(),
           "headers": [["content-type", "application/json"], ["webhook-id", "msg_theirs"]]}
    msg = Message(cap)
    signer = HTTPMessageSigner(signature_algorithm=algo,
                               key_resolver=MappingKeyResolver(public_keys={}, private_keys={KEYID: key}))
    signer.sign(msg, key_id=KEYID, nonce=secrets.token_hex(8), tag="postwire", label="theirs",
                covered_component_ids=ALL_COMPONENTS, body=BODY,
                expires=datetime.datetime.now() + datetime.timedelta(minutes=5))
    sent = {k.lower(): v for k, v in msg.headers.items()}
    assert "alg=" in sent["signature-input"]  # they send alg: it must match the key
    assert sent["content-digest"].startswith("sha-256=")
    cap["headers"] = list(msg.headers.items())
    path = write_capture(tmp_path, cap)
    out = postwire("verify", path, *args).stdout
    assert f"verified (rfc9421, keyid {KEYID})" in out
    # The same request again is a replay (nonce), within one verifier run.
    out = postwire("verify", path, path, *args, check=1).stdout
    assert "REJECTED: the request was already seen" in out
    # A changed body fails the digest.
    cap["body_base64"] = base64.b64encode(BODY + b" ").decode()
    out = postwire("verify", write_capture(tmp_path, cap, "tampered.json"), *args, check=1).stdout
    assert "does not match its digest" in out


# --- draft-cavage (npm http-signature) ----------------------------------------------------------


def test_http_signature_npm_verifies_our_cavage(tmp_path):
    private, public = generate(tmp_path, "r", "rsa")
    toml = (f'[[signing]]\nscheme = "cavage"\nkeyid = "{KEYID}"\nkey_file = "{private}"\n'
            f'account_id = "4711"\n')
    cap = sign_request(tmp_path, toml, "https://hooks.acme.test:8443/in?x=1", BODY)
    assert headers_of(cap)["x-account-id"] == "4711"
    res = node("verify", write_capture(tmp_path, cap), public)
    assert res.returncode == 0, res.stdout + res.stderr
    assert '"signatureOk":true' in res.stdout
    # A stale request fails their clock-skew check too.
    old = sign_request(tmp_path, toml, URL, BODY, now=int(time.time()) - 3600)
    res = node("verify", write_capture(tmp_path, old, "old.json"), public)
    assert res.returncode != 0


def test_we_verify_http_signature_npm_requests(tmp_path):
    private, public = generate(tmp_path, "r", "rsa")
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    res = node("sign", URL, body, private, KEYID)
    assert res.returncode == 0, res.stderr
    path = tmp_path / "joyent.json"
    path.write_text(res.stdout)
    out = postwire("verify", path, "--public-key", f"{KEYID}={public}").stdout
    assert f"verified (cavage, keyid {KEYID})" in out
    other_private, other_public = generate(tmp_path, "other", "rsa")
    postwire("verify", path, "--public-key", f"{KEYID}={other_public}", check=1)


# --- the command line --------------------------------------------------------------------------


def test_verify_reads_raw_http_and_reports_exit_codes(tmp_path):
    cap = sign_request(tmp_path, f'[[signing]]\nscheme = "standard-webhooks"\nsecret = "{SECRET}"\n', URL, BODY)
    raw = b"POST /in?src=postwire HTTP/1.1\r\nHost: hooks.acme.test\r\n"
    raw += b"".join(f"{n}: {v}\r\n".encode() for n, v in cap["headers"])
    raw += f"Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY
    (tmp_path / "req.http").write_bytes(raw)
    assert "verified" in postwire("verify", tmp_path / "req.http", "--secret", SECRET).stdout
    postwire("verify", tmp_path / "req.http", "--secret", "whsec_" + "B" * 32, check=1)
    postwire("verify", tmp_path / "missing.json", "--secret", SECRET, check=2)
    postwire("verify", "--no-such-flag", check=2)
    assert "Example: postwire verify" in postwire("verify", "--help").stdout
