"""The dashboard (`/ui`, docs/api.md) in a real headless Chromium against the real binary: a
wrong token shows the API's 401 and no data; with the admin token a failed delivery shows in
the dead letters, and once the receiver answers 200 again, Replay gets it delivered. The
browser is Debian's chromium driven by playwright-core (tests/js/dashboard.js; both installed
by scripts/tools.sh). A screenshot of the dashboard is kept under the test logs."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import signal
import smtplib
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from support import REPO, Process, attach_logs, child_env, dev_config, free_port, postwire_path

CHROMIUM = "/usr/bin/chromium"
TOKEN = "dashboard-admin-token-0123456789"
MAIL = (
    b"From: Ann <sender@example.com>\r\nTo: support@acme.test\r\nSubject: dashboard\r\n"
    b"Message-ID: <dashboard-1@example.com>\r\n\r\nhello\r\n"
)


def tools() -> Path:
    return Path(os.environ.get("POSTWIRE_TOOLS") or REPO / ".tools")


def artefacts() -> Path:
    """scripts/test.sh's log folder (POSTWIRE_TEST_LOGS), or the same default it uses."""
    logs = os.environ.get("POSTWIRE_TEST_LOGS")
    if not logs:
        checkout = hashlib.sha256(str(REPO).encode()).hexdigest()[:8]
        logs = tools() / "logs" / f"{REPO.name}-{checkout}"
    path = Path(logs) / "artefacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def browser_tools() -> tuple[str, Path]:
    modules = tools() / "node" / "node_modules"
    node = shutil.which("node")
    if node is None or not (modules / "playwright-core").is_dir():
        pytest.fail(f"node or {modules}/playwright-core missing: run `make tools`")
    if not os.path.exists(CHROMIUM):
        if (tools() / ".chromium-unavailable").exists():
            pytest.skip("needs Debian's chromium, which `make tools` could not install (not root)")
        pytest.fail(f"{CHROMIUM} missing: run `make tools`")
    return node, modules


def get(url: str, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def wait_for_dead_letter(base: str, delivery_id: str) -> dict:
    deadline = time.monotonic() + 20
    body = None
    while time.monotonic() < deadline:
        try:
            _, _, raw = get(f"{base}/api/v1/dlq?tenant=acme")
        except urllib.error.HTTPError as e:
            pytest.fail(f"GET /api/v1/dlq answered {e.code}: {e.read()[:300]!r}")
        body = json.loads(raw)
        for dead in body.get("dead_letters", []):
            if dead["delivery_id"] == delivery_id:
                return dead
        time.sleep(0.2)
    pytest.fail(f"the dead letter of {delivery_id} is not listed by the API: {body}")


def lines_of(stream, out: queue.Queue) -> None:
    for line in stream:
        out.put(line)
    out.put(None)


def next_event(lines: queue.Queue, timeout: float) -> dict | None:
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        return None
    return None if line is None else json.loads(line)


@pytest.mark.timeout(180)
def test_dashboard_replays_a_dead_letter_in_chromium(request, capsys, tmp_path, nats, receiver):
    node, modules = browser_tools()
    smtp_port, admin_port = free_port(), free_port()
    config = tmp_path / "postwire.toml"
    config.write_text(dev_config(nats.url, smtp_port, receiver.url(), admin_port=admin_port))
    base = f"http://127.0.0.1:{admin_port}"
    receiver.status = 500
    dev = Process("dev", [postwire_path(), "dev", "--config", str(config), "--no-sink"], tmp_path,
                  env=child_env(RUST_LOG="info", POSTWIRE_ADMIN_TOKEN=TOKEN))
    attach_logs(request, dev)
    browser = None
    try:
        dev.wait_for_port(smtp_port)
        dev.wait_for_port(admin_port)

        # The page is served without a token; the API wants one.
        try:
            status, ctype, page = get(f"{base}/ui", token=None)
        except urllib.error.HTTPError as e:
            pytest.fail(f"GET /ui answered {e.code}: the dashboard is not served")
        assert status == 200 and ctype.startswith("text/html") and b"/ui/app.js" in page
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(f"{base}/api/v1/whoami", token="wrong-token-0123456789")
        assert refused.value.code == 401

        # A delivery that fails three times (500) and is dead-lettered.
        with smtplib.SMTP("127.0.0.1", smtp_port, local_hostname="client.test", timeout=20) as client:
            assert client.sendmail("sender@example.com", ["support@acme.test"], MAIL) == {}
        delivery_id = receiver.wait_for(3, timeout=30)[0].headers["webhook-id"]
        wait_for_dead_letter(base, delivery_id)

        screenshot = artefacts() / "dashboard.png"
        screenshot.unlink(missing_ok=True)
        stderr_path = tmp_path / "dashboard-js.stderr"
        with open(stderr_path, "wb") as stderr:
            browser = subprocess.Popen(
                [node, str(REPO / "tests" / "js" / "dashboard.js"), base, TOKEN, delivery_id,
                 str(screenshot)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
                env={**os.environ, "NODE_PATH": str(modules)},
            )
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lines_of, args=(browser.stdout, lines), daemon=True).start()

        def failed(what: str) -> str:
            code = browser.poll()
            return f"{what} (dashboard.js exit {code})\n{stderr_path.read_text(errors='replace')}"

        seen = next_event(lines, timeout=60)
        assert seen and seen["event"] == "dlq-seen", failed(f"the browser did not see the dead letter: {seen}")

        # The receiver is fixed; the browser presses Replay.
        receiver.status = 200
        browser.stdin.write("go\n")
        browser.stdin.flush()
        done = next_event(lines, timeout=100)
        assert done and done["event"] == "done", failed(f"the replay was not seen delivered: {done}")
        assert browser.wait(timeout=20) == 0, failed("dashboard.js failed")

        replayed = receiver.wait_for(4, timeout=5)[3]
        assert replayed.headers["webhook-id"] == delivery_id
        assert len(receiver.requests) == 4, "replayed exactly once"
        assert screenshot.stat().st_size > 10_000, "the screenshot is empty"
        with capsys.disabled():
            print(f"\ndashboard screenshot: {screenshot}")
    finally:
        if browser is not None and browser.poll() is None:
            browser.kill()
            browser.wait()
        dev.stop(signal.SIGINT)
