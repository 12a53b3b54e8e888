"""`plugin-bench` (bench/plugin-host) measures what the process worker does (issue 17): the
event the worker builds from a raw mail (`--eml`, through its own parse code), the worker's
engine settings (fuel on, as `[plugin_host]` defaults), and the CPU a plugin adds per mail
through the transform stage itself, not only `Transformer::call`."""

import json
import subprocess
from pathlib import Path

from support import REPO, postwire_path


def test_plugin_bench_measures_the_workers_event_settings_and_stage(tmp_path):
    bench = Path(postwire_path()).with_name("plugin-bench")
    assert bench.exists(), f"{bench} missing: cargo build --workspace --all-targets builds it"
    text = "".join(f"Line {i}: call me on +44 20 7946 0958 about invoice {i}.\r\n" for i in range(30))
    eml = tmp_path / "mail.eml"
    eml.write_bytes(
        b"From: Bench Sender <bench@sender.test>\r\nTo: Support <support@acme.test>\r\n"
        b"Subject: postwire benchmark message\r\nMessage-ID: <b-1@sender.test>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + text.encode()
    )
    out = tmp_path / "wasm.json"
    run = subprocess.run(
        [str(bench), "--cache-dir", str(tmp_path / "cache"), "--eml", str(eml),
         "--calls", "5", "--pipeline-mails", "100", "--loads", "1", "--json", str(out),
         f"{REPO}/plugins/build/redact.wasm:rust"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    [p] = json.loads(out.read_text())["plugins"]
    assert p["plugin"] == "redact" and p["calls"] == 5
    # The whole parsed mail crossed the boundary (text, headers, verdicts), as in the worker.
    assert p["event_bytes"] > len(text) + 500, p
    assert p["fuel"] == 500_000_000, p
    assert p["pipeline_mails"] == 100
    assert p["stage_cpu_with_us"] > p["stage_cpu_without_us"] > 0, p
    assert p["added_cpu_per_mail_us"] > 0, p
    assert "+worker µs" in run.stdout
