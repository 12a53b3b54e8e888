"""The suite's own rules: with `CI` set a skipped test fails the run (conftest.py), so a tool
that scripts/tools.sh failed to install cannot hide behind a skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

SKIPPING = '''
import pytest

def test_needs_a_missing_tool():
    pytest.skip("needs a tool that is not installed")

@pytest.mark.xfail(reason="an expected failure is not a skip")
def test_expected_failure():
    assert False
'''


def run_pytest(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_skips.py").write_text(SKIPPING)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    env["PYTHONPATH"] = str(HERE)
    # The suite's conftest.py loaded as a plugin, against a test file outside the suite.
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", os.devnull, "-ra", str(tmp_path / "test_skips.py")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)


def test_a_skip_fails_the_run_when_ci_is_set(tmp_path):
    r = run_pytest(tmp_path, ci=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "skipped while CI is set" in r.stdout, r.stdout
    assert "needs a tool that is not installed" in r.stdout, r.stdout
    assert "1 failed, 1 xfailed" in r.stdout, r.stdout


def test_a_skip_is_only_reported_without_ci(tmp_path):
    r = run_pytest(tmp_path, ci=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 skipped, 1 xfailed" in r.stdout, r.stdout
