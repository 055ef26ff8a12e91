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

.PHONY: run test test-fast bench lambda-zip system-deps clean

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

lambda-zip: $(RUNTIME)
	$(PY) lambda/build_zip.py

clean:
	rm -rf $(VENV) build dist .lambda-build test-artifacts
