#!/usr/bin/env bash
# Installs what `make bench` needs beyond `make tools`, idempotently (a second run with
# nothing to do prints nothing):
#   nginx                       the webhook receiver (apt-get, Debian's nginx-light)
#   $TOOLS/bench-venv/          aiosmtpd, aiohttp, dnslib, dkimpy, matplotlib (bench/requirements.txt)
#   $TOOLS/haraka/              Haraka from npm (bench/peers/haraka/package.json, pinned)
# Postfix (smtp-source, and the Postfix peer) comes from `make tools`; perf is optional (the
# profile part of the benchmark is skipped without it).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${POSTWIRE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/postwire}
say() { printf 'bench setup: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
mkdir -p "$TOOLS"

# --- nginx ---------------------------------------------------------------------------------
if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
    sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo -n)
    say "installing nginx-light with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends nginx-light >/dev/null 2>&1 \
        || { "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 \
             && "${sudo[@]}" apt-get install -y -qq --no-install-recommends nginx-light >/dev/null; } \
        || die "cannot install nginx (needs apt-get as root); install it and run again"
fi
[[ -x /usr/sbin/smtp-source ]] || die "smtp-source is missing: run make tools (Debian's postfix package)"

# --- Python venv ---------------------------------------------------------------------------
VENV=$TOOLS/bench-venv
want=$(sha256sum "$ROOT/bench/requirements.txt" | cut -d' ' -f1)
if [[ $want != "$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)" ]]; then
    say "installing bench/requirements.txt into $VENV"
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" || die "python3 -m venv failed"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --requirement "$ROOT/bench/requirements.txt" || die "pip install failed"
    printf '%s\n' "$want" >"$VENV/.requirements.sha256"
fi

# --- Haraka --------------------------------------------------------------------------------
HARAKA=$TOOLS/haraka
want=$(sha256sum "$ROOT/bench/peers/haraka/package.json" | cut -d' ' -f1)
if [[ $want != "$(cat "$HARAKA/.package.sha256" 2>/dev/null || true)" || ! -x $HARAKA/node_modules/.bin/haraka ]]; then
    command -v npm >/dev/null 2>&1 || die "npm is needed for Haraka (Node.js 18 or newer)"
    say "installing Haraka into $HARAKA"
    mkdir -p "$HARAKA"
    cp "$ROOT/bench/peers/haraka/package.json" "$HARAKA/"
    (cd "$HARAKA" && npm install --omit=dev --no-audit --no-fund --loglevel=error >/dev/null) \
        || die "npm install Haraka failed"
    printf '%s\n' "$want" >"$HARAKA/.package.sha256"
fi
