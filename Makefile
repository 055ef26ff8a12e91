# One entry point for people and CI. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test test-fast bench lambda-zip system-deps clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,lambda]"
	@rm -f $(VENV)/.installed-*; touch $@

run: $(STAMP)
	IMAGESERVICE_DATA_DIR=$${IMAGESERVICE_DATA_DIR:-./data} $(VENV)/bin/imageservice serve --host $(HOST) --port $(PORT)

system-deps:
	@bash scripts/system-deps.sh

test: $(STAMP) system-deps
	$(PY) -m pytest -n 2 --dist loadfile -p no:cacheprovider $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/unit $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) bench/bench_pipeline.py

lambda-zip: $(STAMP)
	$(PY) lambda/build_zip.py

clean:
	rm -rf $(VENV) build dist .lambda-build test-artifacts
