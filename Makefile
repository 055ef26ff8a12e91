# One entry point for people and CI. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Installs come from the hashed locks requirements-*.lock (scripts/lock.sh, `make lock`), never
# from whatever the index serves that day; a marker per lock content re-installs when it changes.
APP_LOCK := requirements-app.lock
DEV_LOCK := requirements-dev.lock
RUNTIME := $(VENV)/.runtime-$(shell cat $(APP_LOCK) pyproject.toml | sha1sum | cut -c1-12)
TESTDEPS := $(VENV)/.test-$(shell cat $(DEV_LOCK) pyproject.toml | sha1sum | cut -c1-12)
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
LOCK_ARGS ?=

.PHONY: run test test-fast bench bench-api lambda-zip lock system-deps clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# The project itself goes in last, editable, without touching the pinned set (--no-deps) and
# built by the locked setuptools (--no-build-isolation).
$(RUNTIME): $(APP_LOCK) pyproject.toml | $(VENV)/bin/python
	$(PIP_INSTALL) --require-hashes -r $(APP_LOCK)
	$(PIP_INSTALL) --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.runtime-*; touch $@

$(TESTDEPS): $(DEV_LOCK) pyproject.toml | $(VENV)/bin/python
	$(PIP_INSTALL) --require-hashes -r $(DEV_LOCK)
	$(PIP_INSTALL) --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.test-*; touch $@

run: $(RUNTIME)
	IMAGESERVICE_DATA_DIR=$${IMAGESERVICE_DATA_DIR:-./data} $(VENV)/bin/imageservice serve --host $(HOST) --port $(PORT)

system-deps:
	@bash scripts/system-deps.sh

test: $(TESTDEPS) system-deps
	$(PY) -m pytest -n 2 --dist loadfile -p no:cacheprovider $(PYTEST_ARGS)

# The business rules on fakes, imaging and templates: seconds, not minutes (no corpus, no fuzzing).
# The unit tier on both cores (pytest-xdist), without the plugins the unit tests never use
# (their loading alone took 1.8 s).
test-fast: $(TESTDEPS)
	PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 $(PY) -m pytest -q -p no:cacheprovider -p xdist -n 2 tests/unit \
		-m "not corpus and not fuzz" $(PYTEST_ARGS)

bench: $(TESTDEPS) system-deps
	$(PY) bench/bench_pipeline.py
	$(PY) bench/bench_ready.py
	$(PY) bench/bench_pickup.py
	$(PY) bench/bench_attacks.py
	$(PY) bench/bench_zip.py
	$(PY) bench/bench_renditions.py
	$(PY) bench/bench_batch.py

# The request path beside a bare Flask app, and the catalog at 100 000 records (bench/bench_api.py);
# BENCH_API_ARGS=--strict exits non-zero when a target is missed. wrk comes from Debian.
bench-api: $(RUNTIME)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || { echo "install wrk (apt-get install wrk)"; exit 2; }
	$(PY) bench/bench_api.py $(BENCH_API_ARGS)

lambda-zip: $(RUNTIME)
	$(PY) lambda/build_zip.py

# Re-resolve the locks after a change to pyproject.toml or requirements/*.in (LOCK_ARGS=--upgrade:
# newest allowed versions); tests/unit/test_lock.py fails while they disagree.
lock: $(TESTDEPS)
	UV=$(VENV)/bin/uv bash scripts/lock.sh $(LOCK_ARGS)

clean:
	rm -rf $(VENV) build dist .lambda-build test-artifacts
