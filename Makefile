# postwire developer commands. `make` alone lists them.
#
# Tools, the Python venv and cargo's target folder live in one per-machine folder outside the
# repository, so a fresh clone on the same machine reuses them (override with POSTWIRE_TOOLS;
# the repository gets a `.tools` symlink to it).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

POSTWIRE_TOOLS ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/postwire
TOOLS := $(POSTWIRE_TOOLS)
CARGO_TARGET_DIR ?= $(TOOLS)/target
POSTWIRE_NATS_SERVER ?= $(TOOLS)/venv/bin/nats-server
POSTWIRE_BIN ?= $(CARGO_TARGET_DIR)/debug/postwire
PATH := $(TOOLS)/venv/bin:$(PATH)
export POSTWIRE_TOOLS CARGO_TARGET_DIR POSTWIRE_NATS_SERVER POSTWIRE_BIN PATH

.PHONY: help tools build run test test-rust test-py compose-check fmt lint fuzz clean

help: ## list the targets
	@echo "postwire: make <target>"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  \1\t/' | expand -t 17
	@echo "tools, venv and cargo target folder: $(TOOLS) (linked as .tools)"

tools: ## install nats-server, the Python test tools and swaks (idempotent, fast when done)
	@scripts/tools.sh

build: ## build the workspace (debug)
	cargo build --workspace

run: ## start nats-server and `postwire dev` with postwire.example.toml; Ctrl-C stops all
	@scripts/run-dev.sh

test: tools ## build, then run cargo test and the Python end-to-end suite in parallel
	cargo test --workspace --no-run
	cargo build -p postwire
	@scripts/test.sh

test-rust: ## only cargo test --workspace
	cargo test --workspace

test-py: tools ## only the Python end-to-end suite (builds the binary first)
	cargo build -p postwire
	python -m pytest tests/py

fuzz: ## run each fuzz target for FUZZ_SECS seconds (default 60); installs cargo-fuzz
	@scripts/fuzz.sh

compose-check: tools ## validate compose.yaml with Docker Compose v2 (no Docker needed; also in make test)
	@scripts/compose.sh config -q
	@echo "compose.yaml is valid"

fmt: ## format the Rust code
	cargo fmt --all

lint: ## clippy on every target
	cargo clippy --workspace --all-targets

clean: ## remove build output and ./data (keeps the tools)
	cargo clean
	rm -rf data tests/py/__pycache__ tests/py/.pytest_cache
