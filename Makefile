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

.PHONY: help tools build run plugins test test-rust test-py soak compose-check fmt lint fuzz bench clean

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

# --- plugins: built to plugins/build/*.wasm, each only when its sources changed -------------
PLUGINS_OUT := plugins/build
RUST_PLUGINS := slack redact route misbehave
PY_PLUGINS := triage
JS_PLUGINS := digest
C_PLUGINS := stamp
# Test plugins in other languages (plugins/tests/<name>/app.py or plugin.js).
PY_TEST_PLUGINS := noisy-py
JS_TEST_PLUGINS := noisy-js
PLUGIN_FILES := $(foreach p,$(RUST_PLUGINS) $(PY_PLUGINS) $(JS_PLUGINS) $(C_PLUGINS) $(PY_TEST_PLUGINS) $(JS_TEST_PLUGINS),$(PLUGINS_OUT)/$(p).wasm)
WIT := $(wildcard guest-sdk/wit/*.wit)
RUST_PLUGIN_SRC := $(WIT) plugins/Cargo.toml plugins/Cargo.lock guest-sdk/Cargo.toml \
	$(shell find guest-sdk/src plugins/rust plugins/tests -name '*.rs' -o -name Cargo.toml)
COMPONENTIZE_PY := $(TOOLS)/componentize-py/bin/componentize-py
COMPONENTIZE_JS := $(TOOLS)/componentize-js/node_modules/.bin/componentize-js
WIT_BINDGEN := $(TOOLS)/cargo/bin/wit-bindgen
JCO := $(TOOLS)/componentize-js/node_modules/.bin/jco

plugins: tools $(PLUGIN_FILES) ## build the example and test plugins (Rust, Python, JS, C) to plugins/build

$(PLUGINS_OUT)/.rust.stamp: $(RUST_PLUGIN_SRC)
	cargo build --offline --locked --manifest-path plugins/Cargo.toml --target wasm32-wasip2 --profile plugin
	mkdir -p $(PLUGINS_OUT)
	for p in $(RUST_PLUGINS); do cp $(CARGO_TARGET_DIR)/wasm32-wasip2/plugin/$$p.wasm $(PLUGINS_OUT)/$$p.wasm; done
	touch $@

$(foreach p,$(RUST_PLUGINS),$(PLUGINS_OUT)/$(p).wasm): $(PLUGINS_OUT)/.rust.stamp ;

# Python plugins keep their WASI imports (no --stub-wasi): the host links WASI with nothing
# granted, and print() and tracebacks reach the log instead of trapping.
$(PLUGINS_OUT)/%.wasm: plugins/python/%/app.py $(WIT)
	mkdir -p $(PLUGINS_OUT)
	$(COMPONENTIZE_PY) -d guest-sdk/wit -w plugin componentize -p plugins/python/$* app -o $@.tmp
	mv $@.tmp $@

$(PLUGINS_OUT)/%.wasm: plugins/tests/%/app.py $(WIT)
	mkdir -p $(PLUGINS_OUT)
	$(COMPONENTIZE_PY) -d guest-sdk/wit -w plugin componentize -p plugins/tests/$* app -o $@.tmp
	mv $@.tmp $@

$(PLUGINS_OUT)/%.wasm: plugins/js/%/plugin.js $(WIT)
	mkdir -p $(PLUGINS_OUT)
	$(COMPONENTIZE_JS) $< --wit guest-sdk/wit --world-name plugin --disable http fetch-event -o $@.tmp.wasm
	mv $@.tmp.wasm $@

# C plugins: bindings from the WIT (wit-bindgen c), clang for wasm32-wasi (a reactor: no
# main), then a component with the WASI preview 1 adapter (jco new --wasi-reactor).
$(PLUGINS_OUT)/%.wasm: plugins/c/%/transform.c $(WIT)
	rm -rf $(PLUGINS_OUT)/c-$* && mkdir -p $(PLUGINS_OUT)/c-$*
	$(WIT_BINDGEN) c guest-sdk/wit --world plugin --out-dir $(PLUGINS_OUT)/c-$* >/dev/null
	clang-16 --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Werror -I $(PLUGINS_OUT)/c-$* \
		$< $(PLUGINS_OUT)/c-$*/plugin.c $(PLUGINS_OUT)/c-$*/plugin_component_type.o \
		-o $(PLUGINS_OUT)/c-$*/core.wasm
	$(JCO) new $(PLUGINS_OUT)/c-$*/core.wasm --wasi-reactor -o $@.tmp.wasm
	mv $@.tmp.wasm $@

$(PLUGINS_OUT)/%.wasm: plugins/tests/%/plugin.js $(WIT)
	mkdir -p $(PLUGINS_OUT)
	$(COMPONENTIZE_JS) $< --wit guest-sdk/wit --world-name plugin --disable http fetch-event -o $@.tmp.wasm
	mv $@.tmp.wasm $@

test: tools plugins ## build, then run cargo test and the Python end-to-end suite in parallel
	# One build of everything, the binary included, with the features the tests unify (a
	# separate `cargo build -p postwire` would rebuild wasmtime and others a second time).
	cargo build --workspace --all-targets
	@scripts/test.sh

test-rust: plugins ## only cargo test --workspace
	cargo test --workspace

test-py: tools ## only the Python end-to-end suite (builds the binary first)
	cargo build --workspace --all-targets
	python -m pytest tests/py

bench: tools plugins ## benchmarks vs Haraka, aiosmtpd, Postfix -> docs/benchmarks.md (BENCH_* vars: bench/run.py)
	@bench/setup.sh
	cargo build --release -p postwire -p postwire-bench-plugins
	$(TOOLS)/bench-venv/bin/python bench/run.py

soak: tools ## soak and chaos on a 3-node cluster for POSTWIRE_SOAK_SECS (default 600; 60 s in make test); prints a report
	cargo build --workspace --all-targets
	POSTWIRE_SOAK_SECS=$${POSTWIRE_SOAK_SECS:-600} python -m pytest tests/py/test_soak.py -s

fuzz: ## run each fuzz target for FUZZ_SECS seconds (default 60); installs cargo-fuzz
	@scripts/fuzz.sh

compose-check: tools ## validate compose.yaml with Docker Compose v2 (no Docker needed; also in make test)
	@scripts/compose.sh config -q
	@echo "compose.yaml is valid"

fmt: ## format the Rust code (plugins and guest SDK included)
	cargo fmt --all
	cargo fmt --manifest-path plugins/Cargo.toml --all

lint: ## clippy on every target, the guest SDK and the Rust plugins included
	cargo clippy --workspace --all-targets
	cargo clippy --offline --locked --manifest-path plugins/Cargo.toml --target wasm32-wasip2 --profile plugin

clean: ## remove build output and ./data (keeps the tools)
	cargo clean
	rm -rf data tests/py/__pycache__ tests/py/.pytest_cache $(PLUGINS_OUT)
