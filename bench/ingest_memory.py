#!/usr/bin/env python3
"""Peak memory of the ingest role while it receives large messages: starts its own
nats-server and `postwire ingest` (filesystem storage, no worker), sends C parallel
messages of SIZE MiB (several large attachments each), and prints ingest's peak RSS
(VmHWM) and the time until every message was accepted.

usage: ingest_memory.py [POSTWIRE_BIN] [SIZE_MIB] [C]
       (nats-server from $POSTWIRE_NATS_SERVER or PATH)
"""
import hashlib, os, shutil, smtplib, socket, subprocess, sys, tempfile, threading, time
from email.message import EmailMessage

postwire = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("POSTWIRE_BIN", "postwire")
size_mib = int(sys.argv[2]) if len(sys.argv) > 2 else 40
conns = int(sys.argv[3]) if len(sys.argv) > 3 else 1
nats_bin = os.environ.get("POSTWIRE_NATS_SERVER") or shutil.which("nats-server")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not open port {port}")


def hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def message(i):
    parts = max(1, size_mib // 10)
    per = size_mib * 1024 * 1024 * 3 // 4 // parts  # base64 grows by 4/3
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "bench@example.com", "support@acme.test", f"big {i}"
    m.set_content("large attachments")
    for k in range(parts):
        seed = hashlib.sha256(f"{i}-{k}".encode()).digest()
        m.add_attachment(seed * (per // 32), maintype="application", subtype="octet-stream",
                         filename=f"part{k}.bin")
    return m.as_bytes()


with tempfile.TemporaryDirectory(prefix="postwire-bench-") as tmp:
    nats_port, smtp_port = free_port(), free_port()
    nats = subprocess.Popen([nats_bin, "-js", "-a", "127.0.0.1", "-p", str(nats_port),
                             "-sd", f"{tmp}/nats"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = f"""[nats]
url = "nats://127.0.0.1:{nats_port}"
[smtp]
listen = "127.0.0.1:{smtp_port}"
hostname = "mx.bench"
[storage]
backend = "fs"
path = "{tmp}/blobs"
[verify]
enabled = false
[tenants.acme]
domains = ["acme.test"]
[[tenants.acme.routes]]
name = "support"
recipients = ["support@acme.test"]
endpoints = ["hook"]
[tenants.acme.endpoints.hook]
url = "http://127.0.0.1:9/hook"
allow_http = true
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""
    with open(f"{tmp}/postwire.toml", "w") as f:
        f.write(cfg)
    ingest = None
    try:
        wait_port(nats_port, nats, "nats-server")
        ingest = subprocess.Popen([postwire, "ingest", "--config", f"{tmp}/postwire.toml"],
                                  stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/ingest.log", "w"),
                                  env={**os.environ, "POSTWIRE_BLOB_KEY": "b" * 40, "RUST_LOG": "warn"})
        wait_port(smtp_port, ingest, "postwire ingest")
        mails = [message(i) for i in range(conns)]
        before = hwm_kib(ingest.pid)
        t0 = time.time()

        def send(raw):
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=300) as c:
                c.sendmail("bench@example.com", ["support@acme.test"], raw)

        threads = [threading.Thread(target=send, args=(m,)) for m in mails]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.time() - t0
        peak = hwm_kib(ingest.pid)
        print(f"{conns} x {len(mails[0]) / 2**20:.1f} MiB accepted in {took:.2f}s; "
              f"ingest peak RSS {peak / 1024:.1f} MiB (idle before: {before / 1024:.1f} MiB)")
    finally:
        for p in (ingest, nats):
            if p:
                p.terminate()
                p.wait(timeout=10)
