#!/usr/bin/env bash
# `make run`: everything on a laptop in one terminal.
#
#   1. installs the tools (scripts/tools.sh) and builds the postwire binary,
#   2. starts nats-server with deploy/nats/dev.conf: JetStream on 127.0.0.1:4222, monitoring
#      on 127.0.0.1:8222, every write synced to disk before it is acknowledged, storing under
#      ./data/nats (its log goes to ./data/nats.log),
#   3. runs `postwire dev --config ${POSTWIRE_CONFIG:-postwire.example.toml}` until Ctrl-C.
#
# Ctrl-C (or SIGTERM to this script) stops postwire, then nats-server, and waits for both:
# nothing is left running.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

NATS_PORT=4222
NATS_MONITOR_PORT=8222  # both as in deploy/nats/dev.conf
CONFIG=${POSTWIRE_CONFIG:-postwire.example.toml}
TOOLS=${POSTWIRE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/postwire}
export POSTWIRE_TOOLS=$TOOLS
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TOOLS/target}
NATS_SERVER=${POSTWIRE_NATS_SERVER:-$TOOLS/venv/bin/nats-server}
POSTWIRE=${POSTWIRE_BIN:-$CARGO_TARGET_DIR/debug/postwire}

say() { printf 'run-dev: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

[[ -f $CONFIG ]] || { say "config file $CONFIG not found (set POSTWIRE_CONFIG)"; exit 2; }

if port_open "$NATS_PORT"; then
    say "port $NATS_PORT on 127.0.0.1 is already in use: is another nats-server (or 'make run')"
    say "running? Stop it first ('ss -ltnp' shows which process holds the port)."
    exit 2
fi
if port_open "$NATS_MONITOR_PORT"; then
    say "port $NATS_MONITOR_PORT on 127.0.0.1 (NATS monitoring) is already in use; stop what holds it"
    exit 2
fi

scripts/tools.sh
cargo build -p postwire

# Job control puts each background job in its own process group, so a Ctrl-C in the
# terminal reaches only this script, which then stops the children in order: postwire
# first (it drains while NATS is still up), then nats-server.
set -m

nats_pid=
dev_pid=

# The two functions below run from the traps (shellcheck cannot see that).
# shellcheck disable=SC2317

# stop PID NAME SIGNAL: send SIGNAL, wait up to 10 s, then SIGKILL.
stop() {
    local pid=$1 name=$2 sig=$3 i
    if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
        return 0
    fi
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name did not stop within 10 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317
cleanup() {
    local status=$?
    trap - INT TERM EXIT
    stop "$dev_pid" postwire INT
    stop "$nats_pid" nats-server TERM
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p data/nats
say "starting nats-server on 127.0.0.1:$NATS_PORT (deploy/nats/dev.conf: JetStream store ./data/nats, log ./data/nats.log)"
"$NATS_SERVER" -c deploy/nats/dev.conf >>data/nats.log 2>&1 &
nats_pid=$!

for ((i = 0; i < 100; i++)); do
    port_open "$NATS_PORT" && break
    if ! kill -0 "$nats_pid" 2>/dev/null; then
        say "nats-server exited at start; the end of data/nats.log:"
        tail -n 20 data/nats.log >&2
        exit 1
    fi
    sleep 0.1
done
port_open "$NATS_PORT" || { say "nats-server did not open port $NATS_PORT within 10 s"; exit 1; }

# The dashboard and admin API need a token: made once, kept in ./data/admin-token (0600).
if [[ -z ${POSTWIRE_ADMIN_TOKEN:-} ]]; then
    if [[ ! -s data/admin-token ]]; then
        (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >data/admin-token)
    fi
    POSTWIRE_ADMIN_TOKEN=$(cat data/admin-token)
    export POSTWIRE_ADMIN_TOKEN
fi
say "dashboard: http://127.0.0.1:8026/ui  token: $POSTWIRE_ADMIN_TOKEN (from ./data/admin-token)"

say "starting postwire dev --config $CONFIG (Ctrl-C stops everything)"
"$POSTWIRE" dev --config "$CONFIG" &
dev_pid=$!
status=0
wait "$dev_pid" || status=$?
dev_pid=
exit "$status"
