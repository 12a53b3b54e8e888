"""Verifying postwire webhooks in Python: Standard Webhooks v1 (standardwebhooks), v1a and
draft-cavage (cryptography), RFC 9421 with Content-Digest (http-message-signatures), keys
from DNS (dnspython).

Run as a script it reads a test case as JSON on stdin (docs/verifying.md, "The samples").
"""
import base64
import datetime
import hashlib
import json
import sys

import dns.resolver
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import HTTPMessageVerifier, HTTPSignatureKeyResolver, algorithms
from standardwebhooks import Webhook

TOLERANCE = 300  # seconds, either way
COMPONENTS = ("@method", "@target-uri", "content-digest", "content-type", "webhook-id")


def dns_key(keyid, domain, nameserver=None):
    """(k=, p= bytes) of the DKIM-style TXT record named `keyid`, only under `domain`."""
    if not keyid.endswith("._postwire." + domain):
        raise ValueError(f"keyid {keyid} is not under {domain}")
    resolver = dns.resolver.Resolver(configure=nameserver is None)
    if nameserver:
        resolver.nameservers, resolver.port = [nameserver[0]], nameserver[1]
    answer = resolver.resolve(keyid, "TXT")
    record = b"".join(b"".join(r.strings) for r in answer).decode()
    tags = dict(t.strip().split("=", 1) for t in record.split(";") if "=" in t)
    return tags.get("k", "rsa"), base64.b64decode(tags["p"])


def verify_v1(body, headers, secret, now):
    """Standard Webhooks v1 (HMAC-SHA256); `headers` with lower-case names."""
    Webhook(secret).verify(body, headers)  # the library checks its own clock as well
    if abs(now - int(headers["webhook-timestamp"])) > TOLERANCE:
        raise ValueError("timestamp outside the tolerance")


def verify_v1a(body, headers, public_key, now):
    """Standard Webhooks v1a (Ed25519); `public_key` is the endpoint's `whpk_…` key."""
    ts = int(headers["webhook-timestamp"])
    if abs(now - ts) > TOLERANCE:
        raise ValueError("timestamp outside the tolerance")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    signed = f"{headers['webhook-id']}.{ts}.".encode() + body
    for sig in headers["webhook-signature"].split():
        version, _, value = sig.partition(",")
        if version == "v1a":
            try:
                return key.verify(base64.b64decode(value), signed)
            except InvalidSignature:
                continue
    raise ValueError("no valid v1a signature")


def verify_rfc9421(method, url, headers, body, domain, now, nameserver=None):
    """RFC 9421 with an Ed25519 key from DNS, Content-Digest checked against the body."""

    class Keys(HTTPSignatureKeyResolver):
        def resolve_public_key(self, key_id):
            k, p = dns_key(key_id, domain, nameserver)
            if k != "ed25519":  # the key decides the algorithm, not the request
                raise ValueError("not an Ed25519 key")
            return Ed25519PublicKey.from_public_bytes(p)

    class Request:
        def __init__(self):
            self.method, self.url, self.headers = method, url, headers

    created = int(headers["signature-input"].split(";created=")[1].split(";")[0])
    if abs(now - created) > TOLERANCE:
        raise ValueError("created outside the tolerance")
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=Keys())
    # body= makes the library check Content-Digest against the body.
    verifier.verify(Request(), require_components=COMPONENTS, expect_tag="postwire", body=body)


def verify_cavage(method, url, headers, body, domain, now, nameserver=None):
    """draft-cavage rsa-sha256 with the RSA key from DNS and the RFC 3230 Digest."""
    params = dict(p.split("=", 1) for p in headers["signature"].split(","))
    params = {k.strip(): v.strip().strip('"') for k, v in params.items()}
    names = params["headers"].split()
    for required in ("(request-target)", "host", "date", "digest"):
        if required not in names:
            raise ValueError(f"{required} is not signed")
    date = datetime.datetime.strptime(headers["date"], "%a, %d %b %Y %H:%M:%S GMT")
    if abs(now - date.replace(tzinfo=datetime.timezone.utc).timestamp()) > TOLERANCE:
        raise ValueError("date outside the tolerance")
    alg, _, digest = headers["digest"].partition("=")
    if alg.lower() != "sha-256" or base64.b64decode(digest) != hashlib.sha256(body).digest():
        raise ValueError("digest mismatch")
    k, p = dns_key(params["keyId"], domain, nameserver)
    if k != "rsa":
        raise ValueError("not an RSA key")
    path = url.split("://", 1)[1]
    target = path[path.index("/"):] if "/" in path else "/"
    values = dict(headers, **{"(request-target)": f"{method.lower()} {target}"})
    signed = "\n".join(f"{n}: {values[n]}" for n in names).encode()
    key = serialization.load_der_public_key(p)
    key.verify(base64.b64decode(params["signature"]), signed, padding.PKCS1v15(), hashes.SHA256())


def main():
    case = json.load(sys.stdin)
    req = case["request"]
    headers = {}
    for name, value in req["headers"]:
        headers[name.lower()] = value
    body = base64.b64decode(req["body_base64"])
    ns = case.get("dns_server")
    ns = (ns.rsplit(":", 1)[0], int(ns.rsplit(":", 1)[1])) if ns else None
    try:
        if case["scheme"] == "v1":
            verify_v1(body, headers, case["secret"], case["now"])
        elif case["scheme"] == "v1a":
            verify_v1a(body, headers, case["public_key"], case["now"])
        elif case["scheme"] == "rfc9421":
            verify_rfc9421(req["method"], req["url"], headers, body, case["domain"], case["now"], ns)
        else:
            verify_cavage(req["method"], req["url"], headers, body, case["domain"], case["now"], ns)
    except Exception as e:  # every failure is a refusal
        print(f"refused: {type(e).__name__}: {e}")
        sys.exit(1)
    print("verified")


if __name__ == "__main__":
    main()
