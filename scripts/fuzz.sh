#!/usr/bin/env bash
# `make fuzz`: installs cargo-fuzz into the tools folder (idempotent) and runs every fuzz
# target for FUZZ_SECS seconds each (default 60). Crashes land in fuzz/artifacts/<target>/;
# turn each into a regression test (tests/fixtures/parse/ for parse_sanitize, a unit test
# in ingest/src/smtp/ for smtp_command).
#
# cargo-fuzz needs nightly features; this machine has only a stable rustc, so
# RUSTC_BOOTSTRAP=1 unlocks them. The sanitizer is off (-s none): libFuzzer's coverage
# guidance and Rust's own checks find panics; ASan would rebuild every dependency slower.
# parse_sanitize runs as shipped (-O, no debug assertions): mail-parser has debug_assert!s
# that malformed MIME reaches (see docs/decisions.md); smtp_command keeps them on.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${POSTWIRE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/postwire}
FUZZ_SECS=${FUZZ_SECS:-60}
CARGO_FUZZ_VERSION=0.13.2

say() { printf 'fuzz: %s\n' "$*" >&2; }

mkdir -p "$TOOLS/bin"
if ! "$TOOLS/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS/bin"
    env -u CARGO_TARGET_DIR cargo install --quiet --locked --root "$TOOLS" --version "$CARGO_FUZZ_VERSION" cargo-fuzz
fi
export PATH=$TOOLS/bin:$PATH
export RUSTC_BOOTSTRAP=1
# A target folder of its own (FUZZ_TARGET_DIR): the fuzz build flags differ from the
# workspace's. The two build modes (-O, and debug assertions on) are two builds of every
# dependency (cargo keeps both, keyed by RUSTFLAGS); a cold one takes about an hour here.
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$TOOLS/fuzz-target}

cd "$ROOT"
status=0
for target in parse_sanitize smtp_command admin_input; do
    corpus=$ROOT/fuzz/corpus/$target
    mkdir -p "$corpus"
    if [[ $target == parse_sanitize ]]; then
        cp -n "$ROOT"/tests/fixtures/parse/*.eml "$corpus"/ 2>/dev/null || true
    fi
    # Hand-written starting points (a tenant document, captured requests, times, URLs).
    if [[ -d $ROOT/fuzz/seeds/$target ]]; then
        cp -n "$ROOT"/fuzz/seeds/"$target"/* "$corpus"/ 2>/dev/null || true
    fi
    say "running $target for ${FUZZ_SECS}s"
    mode=()
    [[ $target == parse_sanitize ]] && mode=(-O)
    if ! cargo fuzz run -s none "${mode[@]}" "$target" "$corpus" -- \
        -max_total_time="$FUZZ_SECS" -max_len=262144 -timeout=20 -rss_limit_mb=2048; then
        say "$target found a crash: see fuzz/artifacts/$target/"
        status=1
    fi
done
exit $status
