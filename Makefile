# One entry point for people and CI. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HASH := $(shell sha1sum pyproject.toml | cut -c1-12)
RUNTIME := $(VENV)/.runtime-$(HASH)
TESTDEPS := $(VENV)/.test-$(HASH)
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test test-fast bench bench-api lambda-zip system-deps clean

$(RUNTIME): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@rm -f $(VENV)/.runtime-*; touch $@

$(TESTDEPS): $(RUNTIME)
	$(PY) -m pip install --quiet -e ".[test,lambda]"
	@rm -f $(VENV)/.test-*; touch $@

run: $(RUNTIME)
	IMAGESERVICE_DATA_DIR=$${IMAGESERVICE_DATA_DIR:-./data} $(VENV)/bin/imageservice serve --host $(HOST) --port $(PORT)

system-deps:
	@bash scripts/system-deps.sh

test: $(TESTDEPS) system-deps
	$(PY) -m pytest -n 2 --dist loadfile -p no:cacheprovider $(PYTEST_ARGS)

# The business rules on fakes, imaging and templates: seconds, not minutes (no corpus, no fuzzing).
test-fast: $(TESTDEPS)
	$(PY) -m pytest -q -p no:cacheprovider tests/unit -m "not corpus and not fuzz" $(PYTEST_ARGS)

bench: $(RUNTIME)
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) bench/bench_pipeline.py
	$(PY) bench/bench_ready.py
	$(PY) bench/bench_attacks.py

# The request path beside a bare Flask app, and the catalog at 100 000 records (bench/bench_api.py);
# BENCH_API_ARGS=--strict exits non-zero when a target is missed. wrk comes from Debian.
bench-api: $(RUNTIME)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || { echo "install wrk (apt-get install wrk)"; exit 2; }
	$(PY) bench/bench_api.py $(BENCH_API_ARGS)

lambda-zip: $(RUNTIME)
	$(PY) lambda/build_zip.py

clean:
	rm -rf $(VENV) build dist .lambda-build test-artifacts
