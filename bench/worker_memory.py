#!/usr/bin/env python3
"""Peak memory of each role for one large mail (issue #17): starts its own nats-server and the
roles as separate processes (`postwire ingest`, `worker`, `deliver`; S3 storage on s3s-fs,
which `make tools` builds; a local HTTP receiver), sends a warm-up mail, resets each process's peak (VmHWM), sends one mail
of SIZE MiB decoded attachment (base64, plus some text), waits for its delivery, and prints per
role the peak RSS growth (VmHWM after - VmRSS before) and the worker's RSS while idle again.
Memory, not time: repeatable on a loaded machine.

usage: worker_memory.py [POSTWIRE_BIN] [ATTACHMENT_MIB] [VERIFY]
       VERIFY = 1 turns [verify] on (DKIM over the whole body; no DNS answers, so the verdicts
       are temperror/none, but the body hash is computed)
       (nats-server from $POSTWIRE_NATS_SERVER or PATH)
"""
import base64, hashlib, json, os, shutil, smtplib, socket, subprocess, sys, tempfile, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

postwire = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("POSTWIRE_BIN", "postwire")
att_mib = int(sys.argv[2]) if len(sys.argv) > 2 else 30
verify = len(sys.argv) > 3 and sys.argv[3] == "1"
nats_bin = os.environ.get("POSTWIRE_NATS_SERVER") or shutil.which("nats-server")
tools = os.environ.get("POSTWIRE_TOOLS") or os.path.expanduser("~/.cache/postwire")
s3s_bin = os.path.join(tools, "cargo", "bin", "s3s-fs")
AK, SK = "postwiretestkey", "postwire-test-secret-key-0123456789"
MIB = 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, log=None):
    for _ in range(1200):
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}" + (open(log).read()[-3000:] if log else ""))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not open port {port}")


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def big_mail():
    blob = hashlib.sha256(b"postwire").digest() * (att_mib * MIB // 32)
    b64 = base64.encodebytes(blob).replace(b"\n", b"\r\n")
    text = b"A large attachment follows.\r\n" * 200
    return (b"From: Big Sender <big@example.com>\r\nTo: support@acme.test\r\n"
            b"Subject: a large mail\r\nMessage-ID: <big@example.com>\r\nMIME-Version: 1.0\r\n"
            b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;"
            b" h=from:to:subject; bh=AAAA; b=AAAA\r\n"
            b"Content-Type: multipart/mixed; boundary=BIG\r\n\r\n"
            b"--BIG\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text +
            b"--BIG\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename=\"big.bin\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--BIG--\r\n")


class Receiver(BaseHTTPRequestHandler):
    bodies = []
    cond = threading.Condition()

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with Receiver.cond:
            Receiver.bodies.append(body)
            Receiver.cond.notify_all()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def wait_deliveries(n, logs, timeout=600):
    with Receiver.cond:
        if not Receiver.cond.wait_for(lambda: len(Receiver.bodies) >= n, timeout=timeout):
            tails = "".join(f"\n--- {p}\n" + open(p).read()[-2000:] for p in logs)
            sys.exit(f"only {len(Receiver.bodies)} of {n} deliveries arrived{tails}")
        return list(Receiver.bodies)


with tempfile.TemporaryDirectory(prefix="postwire-wmem-") as tmp:
    nats_port, smtp_port, s3_port = free_port(), free_port(), free_port()
    os.makedirs(f"{tmp}/s3/mail")
    s3 = subprocess.Popen([s3s_bin, "--host", "127.0.0.1", "--port", str(s3_port), "--access-key",
                           AK, "--secret-key", SK, f"{tmp}/s3"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    http = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    nats = subprocess.Popen([nats_bin, "-js", "-a", "127.0.0.1", "-p", str(nats_port),
                             "-sd", f"{tmp}/nats"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = f"""[nats]
url = "nats://127.0.0.1:{nats_port}"
allow_unsynced = true
[smtp]
listen = "127.0.0.1:{smtp_port}"
hostname = "mx.bench"
[storage]
backend = "s3"
bucket = "mail"
region = "us-east-1"
endpoint = "http://127.0.0.1:{s3_port}"
path_style = true
[verify]
enabled = {str(verify).lower()}
[delivery]
ssrf_allow = ["127.0.0.1"]
[tenants.acme]
domains = ["acme.test"]
[[tenants.acme.routes]]
name = "support"
recipients = ["support@acme.test"]
endpoints = ["hook"]
[tenants.acme.endpoints.hook]
url = "http://127.0.0.1:{http.server_address[1]}/hook"
allow_http = true
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""
    with open(f"{tmp}/postwire.toml", "w") as f:
        f.write(cfg)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": AK, "AWS_SECRET_ACCESS_KEY": SK, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
    roles = {}
    try:
        wait_port(nats_port, nats, "nats-server")
        wait_port(s3_port, s3, "s3s-fs")
        for role in ("ingest", "worker", "deliver"):
            roles[role] = subprocess.Popen([postwire, role, "--config", f"{tmp}/postwire.toml"],
                                           stdout=subprocess.DEVNULL,
                                           stderr=open(f"{tmp}/{role}.log", "w"), env=env)
        logs = [f"{tmp}/{r}.log" for r in roles]
        wait_port(smtp_port, roles["ingest"], "postwire ingest", f"{tmp}/ingest.log")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=60) as c:
            c.sendmail("big@example.com", ["support@acme.test"], b"Subject: warm up\r\n\r\nhi\r\n")
        wait_deliveries(1, logs, timeout=60)
        mail = big_mail()
        before = {}
        for role, p in roles.items():
            with open(f"/proc/{p.pid}/clear_refs", "w") as f:
                f.write("5")
            before[role] = status_kib(p.pid, "VmRSS")
        t0 = time.time()
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=600) as c:
            c.sendmail("big@example.com", ["support@acme.test"], mail)
        event = json.loads(wait_deliveries(2, logs)[1])
        took = time.time() - t0
        time.sleep(1)
        growth = {r: (status_kib(p.pid, "VmHWM") - before[r]) / 1024 for r, p in roles.items()}
        att = event["message"]["attachments"][0]
        ok = att["sha256"] == hashlib.sha256(
            hashlib.sha256(b"postwire").digest() * (att_mib * MIB // 32)).hexdigest()
        print(json.dumps({
            "mail_mib": round(len(mail) / MIB, 1),
            "attachment_mib": att_mib,
            "verify": verify,
            "attachment_intact": ok,
            "peak_growth_mib": {r: round(g, 1) for r, g in growth.items()},
            "peak_growth_mib_total": round(sum(growth.values()), 1),
            "rss_before_mib": {r: round(v / 1024, 1) for r, v in before.items()},
            "worker_rss_after_mib": round(status_kib(roles["worker"].pid, "VmRSS") / 1024, 1),
            "seconds": round(took, 1),
            "loadavg": os.getloadavg(),
        }, indent=1))
    finally:
        for p in [*roles.values(), nats, s3]:
            p.terminate()
            p.wait(timeout=20)
        http.shutdown()
