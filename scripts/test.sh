#!/usr/bin/env bash
# The second half of `make test`: runs `cargo test --workspace` and the Python end-to-end
# suite (tests/py) at the same time, each into its own log, then prints both logs whole and
# a summary. Fails when either fails. Expects the Makefile's environment (CARGO_TARGET_DIR,
# POSTWIRE_BIN, POSTWIRE_NATS_SERVER) and that `make test` already built everything.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

TOOLS=${POSTWIRE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/postwire}
PYTHON=$TOOLS/venv/bin/python
# One log folder per checkout: several clones or worktrees on one machine share $TOOLS, and
# their runs must not write into each other's logs (POSTWIRE_TEST_LOGS overrides).
LOGS=${POSTWIRE_TEST_LOGS:-$TOOLS/logs/$(basename "$ROOT")-$(printf '%s' "$ROOT" | sha256sum | cut -c1-8)}
mkdir -p "$LOGS"
# Tests keep their artefacts (the dashboard's screenshot) under $LOGS/artefacts.
export POSTWIRE_TEST_LOGS=$LOGS
cargo_log=$LOGS/cargo-test.log
pytest_log=$LOGS/pytest.log

# Job control gives each run its own process group: a Ctrl-C reaches only this script, which
# then interrupts both groups (pytest tears its fixtures down on SIGINT, stopping the
# nats-server and postwire processes it started) and kills what is left after 15 s.
set -m
cargo_pid=
pytest_pid=
# shellcheck disable=SC2317  # runs from the traps
stop_children() {
    local pid i alive
    for pid in $cargo_pid $pytest_pid; do
        kill -INT -- "-$pid" 2>/dev/null || true
    done
    for ((i = 0; i < 150; i++)); do
        alive=
        for pid in $cargo_pid $pytest_pid; do
            kill -0 -- "-$pid" 2>/dev/null && alive=yes
        done
        [[ -n $alive ]] || break
        sleep 0.1
    done
    for pid in $cargo_pid $pytest_pid; do
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap 'stop_children; exit 130' INT
trap 'stop_children; exit 143' TERM

printf 'test: running cargo test and pytest in parallel (logs in %s)\n' "$LOGS"

cargo test --workspace --no-fail-fast >"$cargo_log" 2>&1 &
cargo_pid=$!
"$PYTHON" -m pytest tests/py "$@" >"$pytest_log" 2>&1 &
pytest_pid=$!

cargo_status=0
wait "$cargo_pid" || cargo_status=$?
cargo_pid=
pytest_status=0
wait "$pytest_pid" || pytest_status=$?
pytest_pid=

verdict() { if [[ $1 == 0 ]]; then echo ok; else echo "FAILED (exit $1)"; fi; }

printf '\n===== cargo test --workspace: %s =====\n' "$(verdict "$cargo_status")"
cat "$cargo_log"
printf '\n===== pytest tests/py: %s =====\n' "$(verdict "$pytest_status")"
cat "$pytest_log"
# Totals over both runners: cargo's "test result: ok. 3 passed; 0 failed; ..." lines and
# pytest's closing "=== 5 passed, 1 failed, 2 errors in 3.1s ===" line.
count() { # count WORD FILE...: sums "<n> WORD" over the summary lines
    local word=$1
    shift
    { grep -hE '^test result: |^=+ .* in [0-9.]+s' "$@" || true; } \
        | { grep -oE "[0-9]+ $word" || true; } | awk '{ n += $1 } END { print n + 0 }'
}
passed=$(count passed "$cargo_log" "$pytest_log")
failed=$(( $(count failed "$cargo_log" "$pytest_log") + $(count 'errors?' "$pytest_log") ))
# cargo's `#[ignore]`d tests and pytest's skips are both tests that did not run.
skipped=$(( $(count ignored "$cargo_log") + $(count skipped "$pytest_log") ))

printf '\ntest: cargo test %s; pytest %s\n' "$(verdict "$cargo_status")" "$(verdict "$pytest_status")"
printf 'total: %d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"

# With CI set a test that did not run fails the run (pytest's skips already fail through
# tests/py/conftest.py; this catches `#[ignore]` on the Rust side).
if [[ -n ${CI:-} && $skipped != 0 ]]; then
    printf 'test: %d test(s) skipped or ignored while CI is set: that fails the run\n' "$skipped"
    exit 1
fi

[[ $cargo_status == 0 && $pytest_status == 0 ]]
