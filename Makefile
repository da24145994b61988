# scim-edge. The two commands a user needs: `make run` and `make test`. Both install what they use.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
TOOLS  := .tools
# The filter's Rust target (also FILTER_TARGET in envoy/local_stack.py): no WASI libc; the filter
# reads the VM's environment through the wasi crate's bindings (src/proxy/host.rs).
# What Cargo builds, and the filter Envoy loads: Cargo's module after wasm-opt.
FILTER_TARGET := wasm32-unknown-unknown
RAW_WASM := target/$(FILTER_TARGET)/release/scim_edge.wasm
WASM   := target/filter/scim_edge.wasm
# wasm-bindgen-test-runner must match the wasm-bindgen crate that Cargo.lock resolved.
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ { getline; gsub(/"/, "", $$3); print $$3 }' Cargo.lock)
WASM_TEST_RUNNER := $(TOOLS)/bin/wasm-bindgen-test-runner
# Binaryen's wasm-opt (npm build, run by Node), pinned; the features are the ones rustc enables for
# wasm32, which the stripped module no longer lists.
BINARYEN_VERSION := 132.0.0
WASM_OPT := $(TOOLS)/binaryen/node_modules/.bin/wasm-opt
WASM_OPT_INSTALLED := $(TOOLS)/binaryen/.installed-$(BINARYEN_VERSION)
WASM_FEATURES := --enable-bulk-memory --enable-bulk-memory-opt --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-multivalue --enable-reference-types
WASM_OPT_FLAGS := -Oz $(WASM_FEATURES)
WASM_METADCE := $(TOOLS)/binaryen/node_modules/.bin/wasm-metadce
# The exports Envoy needs from the filter: the SDK exports every proxy-wasm callback, and the
# filter implements these (the same callbacks as the capability lists in envoy/*.yaml;
# tests/test_shipped_configs.py holds them together). wasm-metadce drops the other exports and
# the SDK code only they reach, so Envoy never calls them and V8 never compiles them.
FILTER_EXPORTS := memory _initialize malloc proxy_abi_version_0_2_1 proxy_on_vm_start proxy_on_configure \
  proxy_on_context_create proxy_on_request_headers proxy_on_request_body proxy_on_request_trailers \
  proxy_on_http_call_response proxy_on_log proxy_on_tick proxy_on_delete

.PHONY: help setup toolchain venv build filter optimise run test lint unit wasm-test e2e compliance soak bench microbench fuzz clean image

help:
	@echo "make run    start scim2-server and Envoy with the scim-edge filter (Ctrl-C stops them)"
	@echo "make test   lint, native unit tests, the same tests in wasm under Node, Envoy end to end"
	@echo "make build  build the filter ($(WASM)) and print its size"
	@echo "make compliance  scim2-tester and scim-sanity, directly against scim2-server and through the gateway"
	@echo "make soak   SOAK_SECONDS (600) of Entra-shaped load through Envoy with wrk"
	@echo "make bench  plain Envoy vs a minimal wasm filter vs scim-edge (as shipped and built for speed) under wrk, then make microbench"
	@echo "make microbench  the core pipeline on the same request mix, natively (criterion, allocations) and under V8"
	@echo "make fuzz   every cargo-fuzz target for FUZZ_SECONDS (180) each"
	@echo "make image  the filter as an OCI image (compat variant) under $(IMAGE_DIR)/, and its digest"
	@echo "make cli   build the operator's command, target/release/scim-edge (docs/cli.md)"
	@echo "make setup  install the Rust targets, the project venv, the wasm test runner and wasm-opt"

setup: toolchain venv $(WASM_TEST_RUNNER) $(WASM_OPT_INSTALLED)

toolchain:
	@rustup target add wasm32-wasip1 wasm32-unknown-unknown >/dev/null
	@rustup component add clippy rustfmt >/dev/null 2>&1 || true

venv: $(VENV)/.installed
$(VENV)/.installed: tests/requirements.txt tests/compliance-requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt -r tests/compliance-requirements.txt
	@touch $@

$(WASM_TEST_RUNNER): Cargo.lock
	@test -n "$(WASM_BINDGEN_VERSION)" || { echo "wasm-bindgen not found in Cargo.lock"; exit 1; }
	@if [ ! -x $@ ] || [ "$$($@ --version | awk '{print $$2}')" != "$(WASM_BINDGEN_VERSION)" ]; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) into $(TOOLS)/ (about 2 minutes, once)"; \
	  cargo install --quiet wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --root $(TOOLS); \
	fi
	@touch $@

$(WASM_OPT_INSTALLED):
	@command -v npm >/dev/null || { echo "npm is required to install Binaryen's wasm-opt (make build)"; exit 1; }
	@echo "installing binaryen $(BINARYEN_VERSION) (wasm-opt) into $(TOOLS)/binaryen"
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/binaryen binaryen@$(BINARYEN_VERSION)
	@touch $@

# Cargo's module, then wasm-metadce (only FILTER_EXPORTS stay) and wasm-opt -Oz (docs/performance.md:
# V8 compiles every byte of the module when Envoy starts). Optimised again only when Cargo rebuilt it.
build: toolchain $(WASM_OPT_INSTALLED)
	cargo build --release --target $(FILTER_TARGET)
	@$(MAKE) --no-print-directory filter
	@echo "scim_edge.wasm: $$(stat -c %s $(WASM)) bytes ($(WASM)); before wasm-opt $$(stat -c %s $(RAW_WASM))"

filter: $(WASM)
	@:

$(WASM): $(RAW_WASM) | $(WASM_OPT_INSTALLED)
	@$(MAKE) --no-print-directory optimise IN=$< OUT=$@

# One Cargo module made into the filter Envoy loads (make bench uses it for its other builds too).
optimise: | $(WASM_OPT_INSTALLED)
	@test -n "$(IN)" -a -n "$(OUT)" || { echo "usage: make optimise IN=<cargo's .wasm> OUT=<filter .wasm>"; exit 2; }
	@mkdir -p $(dir $(OUT))
	@printf '[%s]' "$$(for e in $(FILTER_EXPORTS); do printf '{"name":"%s","export":"%s","root":true},' $$e $$e; done | sed 's/,$$//')" > $(OUT).graph.json
	$(WASM_METADCE) $(WASM_FEATURES) --graph-file $(OUT).graph.json $(IN) -o $(OUT).dce >/dev/null
	$(WASM_OPT) $(WASM_OPT_FLAGS) $(OUT).dce -o $(OUT).tmp
	@rm -f $(OUT).dce $(OUT).graph.json
	@mv $(OUT).tmp $(OUT)

run: build venv
	@$(PY) envoy/local_stack.py

test: lint unit wasm-test e2e

# The operator's command line (docs/cli.md), native only: `token new`, `check`, `explain`.
# `cargo install --path .` installs the same binary into ~/.cargo/bin.
.PHONY: cli
cli:
	cargo build --release --bin scim-edge
	@echo "scim-edge: target/release/scim-edge (docs/cli.md)"

lint: toolchain
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --release --target $(FILTER_TARGET) --lib -- -D warnings

unit:
	cargo test

wasm-test: toolchain $(WASM_TEST_RUNNER)
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=$(abspath $(WASM_TEST_RUNNER)) \
	  cargo test --target wasm32-unknown-unknown --lib

e2e: build venv
	$(PY) -m pytest tests

# SCIM checkers (scim2-tester, scim-sanity) directly against scim2-server and through the gateway.
compliance: build venv
	$(PY) tests/compliance.py

# Load: Entra-shaped traffic through Envoy with wrk for SOAK_SECONDS (600), results in .run/soak/.
# Not part of `make test`. docs/robustness.md has the measured figures.
soak: build venv
	@command -v wrk >/dev/null || { echo "installing wrk (Debian)"; apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(PY) bench/soak.py

# Performance (docs/performance.md): (a) Envoy routing straight to the upstream, (b) a minimal
# token-check-and-callout wasm filter, (c) scim-edge, (d) scim-edge built with opt-level 2, side by
# side on one fast upstream stand-in
# with the soak's Entra-shaped wrk mix (bench/bench.py: BENCH_SECONDS 10, BENCH_ROUNDS 3,
# BENCH_CONNECTIONS 4,16,64), then the native micro-benchmark. Results in .run/bench/, the plot in
# docs/performance.png. Not part of `make test`.
bench: build venv
	@command -v wrk >/dev/null || { echo "installing wrk (Debian)"; apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(PY) bench/bench.py
	$(MAKE) --no-print-directory microbench

# The pipeline micro-benchmark twice: natively (criterion, allocations) and compiled to
# wasm32-wasip1 under Node's V8 with TurboFan only, as Envoy runs the filter (no host calls).
# The native run in its own target directory and without fat LTO: Cargo also builds the operator's
# command for a benchmark, and that link failed beside the release build's artefacts under fat LTO
# (rust-lld: undefined serde_json symbols). The wasm run keeps the release profile, as the filter.
microbench: toolchain
	CARGO_PROFILE_BENCH_LTO=false cargo bench --target-dir target/microbench --bench pipeline
	@wasm=$$(cargo bench --quiet --no-run --target wasm32-wasip1 --bench pipeline --message-format=json \
	    | python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("executable")][-1])'); \
	  echo "pipeline under V8 (node --no-liftoff): $$wasm"; \
	  node --no-liftoff --no-warnings bench/wasm-pipeline.mjs "$$wasm" --bench

# Fuzzing: every cargo-fuzz target in fuzz/ for FUZZ_SECONDS (180) each, two at a time; prints
# execs, exec/s and coverage per target. Not part of `make test`, which runs the fuzz corpus and
# regressions natively (tests/fuzz_regressions.rs). Options: fuzz/run.sh, fuzz/README.md.
FUZZ_SECONDS ?= 180
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

# The filter as an OCI image in the "compat" variant Istio and Envoy Gateway pull, built with umoci
# (no container daemon): an OCI layout and an oci-archive under $(IMAGE_DIR)/; prints the digest.
# Pushing and pinning it: docs/deploy.md.
IMAGE_DIR := target/image
IMAGE_TAG := $(shell awk -F'"' '/^version = / { print $$2; exit }' Cargo.toml)
image: build
	@command -v umoci >/dev/null && command -v skopeo >/dev/null || { echo "installing umoci and skopeo (Debian)"; \
	  apt-get update -qq && apt-get install -y -qq umoci skopeo >/dev/null; }
	@deploy/oci-image.sh $(WASM) $(IMAGE_DIR) $(IMAGE_TAG)

clean:
	cargo clean
	rm -rf $(VENV) $(TOOLS) .run
