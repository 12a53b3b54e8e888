"""TLS material for tests: a private CA and server certificates made with the openssl CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_ca_and_cert(d: Path, name: str = "srv"):
    """A private CA and a server certificate for 127.0.0.1 / localhost signed by it, made
    with the openssl CLI. Returns (ca.pem, cert.pem, key.pem)."""
    def run(*a):
        subprocess.run(a, check=True, capture_output=True, cwd=d)
    if not (d / "ca.pem").exists():
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=postwire test CA", "-keyout", "ca.key", "-out", "ca.pem")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", f"{name}.key", "-out", f"{name}.csr")
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf", "-out", f"{name}.pem")
    return d / "ca.pem", d / f"{name}.pem", d / f"{name}.key"
