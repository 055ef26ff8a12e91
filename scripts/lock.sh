#!/usr/bin/env bash
# `make lock`: resolve pyproject.toml (and requirements/*.in) into hashed requirement files.
#
#   requirements-dev.lock     all extras: tests, benchmarks, tools  -> make test, make bench
#   requirements-app.lock     the web app's runtime                 -> make run, Dockerfile
#   requirements-lambda.lock  the processor zip, Lambda's runtime   -> lambda/build_zip.py
#
# The dev lock is resolved first; the other two take it as constraints, so a package has one
# version everywhere (tests/unit/test_lock.py checks that, and that the locks satisfy pyproject.toml).
# Pins already in a lock are kept unless pyproject.toml needs another version: pass
# `--upgrade` (make lock LOCK_ARGS=--upgrade) to take the newest versions allowed.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
common=(--quiet --generate-hashes --python-version 3.11 "$@")
"$uv" pip compile pyproject.toml requirements/build.in requirements/tools.in --all-extras --universal \
  "${common[@]}" -o requirements-dev.lock
"$uv" pip compile pyproject.toml requirements/build.in --universal \
  "${common[@]}" -c requirements-dev.lock -o requirements-app.lock
# The deployed function: Python 3.12 on arm64 (infrastructure/processor.yaml, lambda/build_zip.py).
"$uv" pip compile requirements/lambda.in --generate-hashes --quiet --python-version 3.12 \
  --python-platform aarch64-manylinux_2_28 "$@" -c requirements-dev.lock -o requirements-lambda.lock
