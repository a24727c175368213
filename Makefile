# tidstream: every target sets up what it needs (a fresh machine only needs python3,
# cargo and network access to PyPI / crates.io).
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
BUILD_PROFILE ?= --release
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.created:
	@$(PYTHON) -c 'import sys; v=sys.version_info[:2]; assert (3,10) <= v < (3,13), f"tidstream needs CPython 3.10-3.12 (Bytewax 0.21.1 wheels), found {v}"'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "maturin>=1.7,<2"
	touch $@

.PHONY: install
install: $(VENV)/.created ## create .venv, install dependencies and build the Rust extension
	$(VENV)/bin/maturin develop $(BUILD_PROFILE) --extras dev
	@$(PY) -c 'import tidstream, sys; print("tidstream", tidstream.__version__, "build", tidstream._core.build_profile, "python", sys.version.split()[0])'

.PHONY: build-dev
build-dev: BUILD_PROFILE=
build-dev: install ## debug build of the extension (faster to compile, slow to run)

.PHONY: test-rust
test-rust: ## cargo test of the pure Rust core (no Python needed)
	cargo test -p tidstream-core --quiet

.PHONY: test-python
test-python: install ## pytest (unit, property, integration; benches once as correctness tests)
	$(PY) -m pytest -q

.PHONY: test
test: test-rust test-python ## everything CI runs

.PHONY: demo
demo: install ## end-to-end demo on an embedded NATS server (simulated PMA fleet -> readings -> Parquet)
	$(VENV)/bin/tidstream demo --out out/demo

.PHONY: schemas
schemas: install ## regenerate schemas/*.json from tidstream.schema
	$(PY) tools/gen_schemas.py

.PHONY: bench
bench: install ## release build, then benchmarks for real; rewrites benches/RESULTS.md
	$(PY) benches/run.py

.PHONY: chaos
chaos: install ## long chaos run: ingest, alerts, export SIGKILLed at random, exact outputs checked (CHAOS_ARGS=...)
	$(VENV)/bin/tidstream chaos --out out/chaos $(CHAOS_ARGS)

SOAK_SECONDS ?= 3600
SOAK_RATE ?= 50
.PHONY: soak
soak: install ## soak run: simulator -> NATS -> ingest, export, alerts at SOAK_RATE/s for SOAK_SECONDS (default 1 h); out/soak/
	$(PY) benches/soak.py --seconds $(SOAK_SECONDS) --rate $(SOAK_RATE) --out out/soak
	$(PY) benches/soak.py --backlog 200000 --out out/soak-backlog

.PHONY: lint
lint: install ## ruff, clippy, rustfmt check, stub check against the built module
	$(VENV)/bin/ruff check python tests benches dataflows tools
	$(VENV)/bin/ruff format --check python tests benches dataflows tools
	cargo fmt --all -- --check
	cargo clippy -p tidstream-core --all-targets --features python -- -D warnings
	$(PY) -m mypy.stubtest tidstream._core --allowlist stubtest-allowlist.txt

.PHONY: format
format: $(VENV)/.created ## apply ruff and rustfmt
	$(VENV)/bin/ruff check --fix python tests benches dataflows tools || true
	$(VENV)/bin/ruff format python tests benches dataflows tools
	cargo fmt --all

.PHONY: layouts
layouts: ## regenerate the generated layout files
	$(PYTHON) tools/gen_milesight_layouts.py

.PHONY: clean
clean: ## remove build products and the venv
	rm -rf $(VENV) target python/tidstream/*.so .pytest_cache .hypothesis .benchmarks

FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= decode decode_uplinks
.PHONY: fuzz
fuzz: install ## fuzz the Rust codecs and envelope parser (cargo-fuzz; FUZZ_SECONDS per target, default 60)
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	$(PY) tools/fuzz_seeds.py
	@mkdir -p out
	@set -e; cd fuzz; for t in $(FUZZ_TARGETS); do \
	  echo "== $$t: $(FUZZ_SECONDS) s"; \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$t -O -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    > ../out/fuzz-$$t.log 2>&1 || { tail -40 ../out/fuzz-$$t.log; echo "$$t: CRASH, input in fuzz/artifacts/$$t/"; exit 1; }; \
	  grep -E "^Done|number_of_executed_units|new_units_added" ../out/fuzz-$$t.log; \
	done
